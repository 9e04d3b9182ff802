"""Public mode, tried as a visitor would, over the API (the page sends the same calls): only the
deployment's choices reach a backend, a visitor sees only their own runs, runs are rate-limited
and token-capped, someone else's run cannot be continued, reviewing needs a login, and a machine
where only rlimits would hold refuses to start."""

from __future__ import annotations

import re

import pytest

from startui.ui.deployment import Choice, Deployment
from tests.tour import tour_backend

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
STORE: list = []  # the launched app's store


@pytest.fixture(scope="module")
def public(tmp_path_factory):

    from startui.ui.app import build_app, launch, open_store
    from startui.ui.studio import Services

    asked: list = []

    def factory(settings):  # what reaches a backend factory
        asked.append(settings)
        return tour_backend(0.0)

    db = tmp_path_factory.mktemp("public") / "p.sqlite"
    deployment = Deployment(public=True, choices=[Choice("Tour model", "tour")], max_tokens=600,
                            runs_per_minute=3)
    services = Services(open_store(f"sqlite:///{db}"), pool_size=1, backend_factory=factory,
                        deployment=deployment)
    demo = build_app(services)
    _, url, _ = launch(demo, prevent_thread_lock=True, quiet=True)
    STORE[:] = [services.store]
    yield url, services, asked
    demo.close()


def client(url):
    from gradio_client import Client

    return Client(url, verbose=False)


@pytest.mark.parametrize("backend, model, base_url", [
    ("vllm", "Qwen/Qwen2.5-7B-Instruct", ""),  # would start `vllm serve`
    ("openai", "", "http://127.0.0.1:9/v1"),  # any URL
    ("transformers", "/etc", ""),  # any path
    ("Tour model", "", "http://127.0.0.1:9/v1"),  # a label with a URL of the visitor's
])
def test_no_visitor_string_reaches_a_backend(public, backend, model, base_url):
    url, _, asked = public
    before = len(asked)
    with pytest.raises(Exception, match="offers|chooses|not in the list of choices"):
        client(url).predict("What is 2+2?", backend, model, base_url, api_name="/run")
    assert len(asked) == before


def test_a_visitor_gets_the_deployments_choice_capped_and_sees_only_their_runs(public):
    url, services, asked = public
    ann, bob = client(url), client(url)
    chat, status, tid = _run(ann)
    assert (asked[-1].backend, asked[-1].model, asked[-1].base_url) == ("tour", None, None)
    assert asked[-1].max_tokens <= 600
    mine = [c[1] for c in ann.predict(api_name="/recent")["choices"]]
    theirs = [c[1] for c in bob.predict(api_name="/recent")["choices"]]
    assert tid in mine and tid not in theirs
    traj = services.store.load_trajectory(tid)  # as if the app had died mid-run
    traj.status = "interrupted"
    services.store.save_trajectory(traj)
    bob.predict(tid, api_name="/open")  # a deep link opens it: looking is fine
    with pytest.raises(Exception, match="someone else's"):
        bob.predict("Tour model", api_name="/continue")


def _run(c):
    """A run; (chat, status line, the trajectory's id — which the status line shows)."""
    chat, status, _ = c.predict("Sum of primes below 1000?", "Tour model", api_name="/run")
    short = re.search(r"id `([0-9a-f]+)`", status).group(1)
    (tid,) = [s.id for s in STORE[0].list_trajectories(limit=100) if s.id.startswith(short)]
    return chat, status, tid


def test_runs_are_rate_limited_per_visitor(public):
    url, services, _ = public
    services.limiter._log.clear()
    c = client(url)
    for _ in range(3):
        _run(c)
    with pytest.raises(Exception, match="try again in"):
        _run(c)
    services.limiter._log.clear()


def test_an_anonymous_visitor_cannot_review(public):
    url, services, _ = public
    c = client(url)
    _, _, tid = _run(c)
    services.limiter._log.clear()
    with pytest.raises(Exception, match="log in"):
        c.predict(tid, "accepted", None, [], "", "", api_name="/review_decide")
    assert services.store.trajectory_summary(tid).review_status == "pending"


def test_public_mode_refuses_a_machine_where_only_rlimits_hold():
    from startui.ui.app import check_isolation
    from startui.ui.studio import Services

    weak = {"rlimits": True, "uid": 1000, "landlock": None, "namespaces": None, "user": None}
    services = Services(None, deployment=Deployment(public=True))
    services.isolation = weak
    with pytest.raises(SystemExit, match="STARTUI_ALLOW_WEAK_SANDBOX"):
        check_isolation(services)
    services.deployment.allow_weak_sandbox = True
    check_isolation(services)  # the operator opted in
    private = Services(None, deployment=Deployment(public=False))
    private.isolation = weak
    check_isolation(private)  # a laptop is told, not refused
