"""Public mode's rules, as a visitor would try to bend them: only the deployment's backends, no
visitor string reaches a URL, path or command, a token cap per run, a rate limit per visitor."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from startui.ui.deployment import Choice, Deployment, NotAllowed, RateLimiter, visitor_key
from startui.ui.studio import RunSettings

PUBLIC = Deployment(public=True, max_tokens=1024, choices=[
    Choice("Qwen 1.5B (CPU)", "llamacpp"),
    Choice("Qwen 7B (vLLM)", "openai", "Qwen/Qwen2.5-7B-Instruct", "http://127.0.0.1:8000/v1")])


def test_a_visitor_picks_a_choice_and_gets_its_model_and_server():
    s = PUBLIC.resolve(RunSettings(backend="Qwen 7B (vLLM)", max_tokens=8000))
    assert (s.backend, s.model, s.base_url, s.max_tokens) == (
        "openai", "Qwen/Qwen2.5-7B-Instruct", "http://127.0.0.1:8000/v1", 1024)
    assert PUBLIC.resolve(RunSettings(backend="llamacpp")).backend == "llamacpp"


@pytest.mark.parametrize("attempt", [
    RunSettings(backend="vllm", model="Qwen/Qwen2.5-7B-Instruct"),  # starts `vllm serve`
    RunSettings(backend="transformers", model="/etc"),  # loads any path
    RunSettings(backend="openai", base_url="http://169.254.169.254/latest"),  # any URL
    RunSettings(backend="Qwen 7B (vLLM)", base_url="http://127.0.0.1:9/v1"),  # a label + a URL
    RunSettings(backend="llamacpp", model="/root/.ssh/id_rsa"),  # a label + a path
    RunSettings(backend="scripted", model="script.json"),
])
def test_nothing_else_reaches_a_backend(attempt):
    with pytest.raises(NotAllowed, match="offers|chooses"):
        PUBLIC.resolve(attempt)


def test_a_private_deployment_takes_what_it_is_given():
    s = RunSettings(backend="openai", base_url="http://127.0.0.1:8000/v1", max_tokens=9000)
    assert Deployment().resolve(s) == s


def test_the_environment_sets_public_mode(monkeypatch):
    monkeypatch.setenv("STARTUI_PUBLIC", "1")
    monkeypatch.delenv("STARTUI_CHOICES", raising=False)
    monkeypatch.delenv("STARTUI_MAX_TOKENS", raising=False)
    d = Deployment.from_env(RunSettings(backend="llamacpp"))
    assert d.public and [c.backend for c in d.choices] == ["llamacpp"]
    assert d.max_tokens == 4096 and d.runs_per_minute == 6
    monkeypatch.setenv("STARTUI_CHOICES", json.dumps(
        [{"label": "big", "backend": "openai", "model": "m", "base_url": "http://127.0.0.1:1"}]))
    assert Deployment.from_env().labels == ["big"]
    monkeypatch.setenv("STARTUI_CHOICES", "not json")
    with pytest.raises(ValueError, match="STARTUI_CHOICES"):
        Deployment.from_env()


def test_the_rate_limit_is_per_visitor_and_says_when_to_retry():
    limit = RateLimiter(2)
    limit.check("a", now=0)
    limit.check("a", now=1)
    limit.check("b", now=1)  # another visitor is not held up
    with pytest.raises(NotAllowed, match="try again in 58 s"):
        limit.check("a", now=2)
    limit.check("a", now=60.5)  # the window slid past the first run
    RateLimiter(None).check("a")  # no limit configured


def test_a_visitor_is_their_login_else_their_address():
    assert visitor_key(SimpleNamespace(username="ann", client=None)) == "user:ann"
    assert visitor_key(SimpleNamespace(username=None,
                                       client=SimpleNamespace(host="127.0.0.1"))) == "ip:127.0.0.1"
