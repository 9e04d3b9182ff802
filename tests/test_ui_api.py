"""The app over its API (gradio_client), launched in-process with the scripted tour model."""

from __future__ import annotations

import json
import time

import pytest

from tests.tour import REFLECTION, tour_backend

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from gradio_client import Client

    from startui.ui.app import build_app, launch, open_store
    from startui.ui.studio import Services, _default_factory

    db = tmp_path_factory.mktemp("api") / "api.sqlite"
    def factory(settings):
        if settings.backend == "tour":
            return tour_backend(0.01)
        return _default_factory(settings)  # the real ones, with their real errors

    services = Services(open_store(f"sqlite:///{db}"), pool_size=1, backend_factory=factory)
    demo = build_app(services)
    _, url, _ = launch(demo, prevent_thread_lock=True, quiet=True)
    yield Client(url, verbose=False), services
    demo.close()


def texts(chat: list[dict]) -> list[str]:
    return [" ".join(part.get("text", "") for part in m["content"]) for m in chat]


def wait_for(job, predicate, timeout: float = 30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        outs = job.outputs()
        if outs and predicate(outs[-1]):
            return outs[-1]
        if job.done():
            break
        time.sleep(0.05)
    last = job.outputs()[-1][1] if job.outputs() else None
    raise AssertionError(f"not seen in time; last status: {last}")


def test_a_run_streams_to_the_end(app):
    client, services = app
    job = client.submit("Sum of primes below 1000?", "tour", api_name="/run")
    outs = job.result() and job.outputs()
    assert len(outs) > 10  # it streamed: many updates, not one
    sizes = [len(o[0]) for o in outs]
    assert sizes == sorted(sizes)  # messages only ever got added
    chat, status, _ = outs[-1]
    assert "finished" in status
    assert texts(chat)[-1].endswith("Final answer: $76127$")
    assert any(part.get("type") == "file" for m in chat for part in m["content"])  # the plot
    tid = status.split("id `")[1][:12]
    assert any(s.id.startswith(tid) for s in services.store.list_trajectories())


def test_a_hint_inserted_mid_stream_lands_where_it_was_cut(app):
    client, _ = app
    job = client.submit("Sum of primes below 1000?", "tour", api_name="/run")
    wait_for(job, lambda o: "Step 3" in texts(o[0])[-1])
    client.predict("Count the primes too.", "(type your own)", api_name="/insert_hint")
    job.result()
    chat = texts(job.outputs()[-1][0])
    at = next(i for i, t in enumerate(chat) if "from a person" in t)
    assert "> Count the primes too." in chat[at]
    cut = chat[at - 1]
    assert "Step 3" in cut and ("The kernel says 76127. " + REFLECTION).startswith(cut)
    assert "Following the hint" in chat[at + 1]  # the model went on from the hint


def test_stop_stops(app):
    client, _ = app
    job = client.submit("Sum of primes below 1000?", "tour", api_name="/run")
    wait_for(job, lambda o: "Step 2" in texts(o[0])[-1])
    stopped = time.time()
    client.predict(api_name="/stop")
    job.result()
    assert time.time() - stopped < 5
    chat, status, _ = job.outputs()[-1]
    assert "stopped" in status
    assert "Step 30" not in texts(chat)[-1]


def test_visitors_do_not_share_state(app):
    client, _ = app
    from gradio_client import Client

    other = Client(client.src, verbose=False)
    job = client.submit("Sum of primes below 1000?", "tour", api_name="/run")
    wait_for(job, lambda o: "Step 2" in texts(o[0])[-1])
    other.predict(api_name="/stop")  # the other visitor has nothing running ...
    with pytest.raises(Exception, match="nothing is running"):
        other.predict("a hint", "(type your own)", api_name="/insert_hint")
    job.result()
    assert "finished" in job.outputs()[-1][1]  # ... and could not stop this one
    mine = job.outputs()[-1][1].split("id `")[1][:12]
    theirs = other.predict("Sum of primes below 1000?", "tour", api_name="/run")[1]
    assert "finished" in theirs and mine not in theirs


def test_errors_are_messages_and_the_app_keeps_serving(app, tmp_path):
    client, _ = app
    with pytest.raises(Exception, match="does not exist"):
        client.predict("q", "llamacpp", str(tmp_path / "missing.gguf"), api_name="/run")
    # a server that is down: the run ends in an error the page shows, with what to do
    _, status, _ = client.predict("q", "openai", "", "http://127.0.0.1:9", api_name="/run")
    assert "error" in status and "is the server running" in status
    script = tmp_path / "crash.json"
    script.write_text(json.dumps(["```python\nimport os\nos._exit(1)\n```", "Oops."]))
    chat, status, _ = client.predict("crash", "scripted", str(script), "", 0.6, 1536, 0,
                                     api_name="/run")
    assert "finished" in status
    assert any("KernelDied" in t for t in texts(chat))
    chat, status, _ = client.predict("Sum?", "tour", api_name="/run")  # still serving
    assert "finished" in status
