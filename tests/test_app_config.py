"""How a deployment configures the app: defaults from the environment, queue limits."""

from __future__ import annotations

from startui.ui.app import build_app, default_settings
from startui.ui.studio import Services


def _generate_limit(demo) -> int:
    fns = demo.fns.values() if isinstance(demo.fns, dict) else demo.fns
    return next(f.concurrency_limit for f in fns if f.api_name == "run")


def _backend_default(demo) -> str:
    comps = demo.config["components"]
    return next(c["props"]["value"] for c in comps if c["props"].get("label") == "Backend")


def test_the_cpu_model_runs_one_at_a_time_by_default(monkeypatch):
    for name in ("STARTUI_BACKEND", "STARTUI_BASE_URL", "STARTUI_MODEL", "STARTUI_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    demo = build_app(Services(None))
    assert _backend_default(demo) == "llamacpp" and _generate_limit(demo) == 1


def test_a_deployment_in_front_of_vllm_is_named_by_the_environment(monkeypatch):
    monkeypatch.setenv("STARTUI_BACKEND", "vllm")
    monkeypatch.setenv("STARTUI_MODEL", "Qwen/QwQ-32B-Preview")
    monkeypatch.setenv("STARTUI_BASE_URL", "http://gpu-a:8000/v1, http://gpu-b:8000/v1")
    monkeypatch.delenv("STARTUI_CONCURRENCY", raising=False)
    defaults = default_settings()
    assert defaults.backend == "vllm" and defaults.base_url == "http://gpu-a:8000/v1"
    demo = build_app(Services(None), defaults=defaults)
    assert _backend_default(demo) == "vllm" and _generate_limit(demo) == 8
    monkeypatch.setenv("STARTUI_CONCURRENCY", "3")
    assert _generate_limit(build_app(Services(None), defaults=defaults)) == 3
