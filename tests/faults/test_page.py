"""The page's path, in Debian's Chromium: a visitor types a problem whose "model" writes hostile
code, clicks Run and reads what happened; a backend that drops the stream shows as a message;
markup the model writes (script tags, event handlers, javascript: links) shows as text and never
runs. The app keeps serving a second visitor through all of it."""

from __future__ import annotations

import http.server
import threading
import time

import pytest

from tests.browser import MARKS
from tests.faults import ledger
from tests.faults.support import (
    DROP_AFTER,
    DROP_TEXT,
    SECRET,
    SECRET_VAR,
    launch_app,
    lost_items,
    outputs,
    question,
    secret_leaks,
    snapshot,
    still_serving,
    stored_id,
)

pytestmark = [*MARKS, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

# name → (cell, what the page must show)
PAGE_ATTACKS = {
    "kill-parent": ("import os, signal; os.kill(os.getppid(), signal.SIGKILL)", "PermissionError"),
    "segfault": ("import ctypes; ctypes.string_at(0)", "KernelDied"),
    "read-environ": (f"import os; print('secret:', os.environ.get({SECRET_VAR!r}))",
                     "secret: None"),
}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    launched = launch_app(tmp_path_factory.mktemp("page") / "page.sqlite")
    yield launched
    launched.close()


@pytest.fixture
def page(browser, app):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(30_000)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(app.url)
    page.wait_for_selector("#run")
    page.dialogs = dialogs  # type: ignore[attr-defined]
    yield page
    page.close()


def run_in_page(page, problem: str, until: str = "finished", timeout: float = 30.0) -> str:
    """Type the problem, press Run, and wait for a new run to reach ``until``: its status."""
    status = page.locator("#status")
    before = status.inner_text()
    page.locator("#problem textarea").fill(problem)
    page.locator("#run").click()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = status.inner_text()
        if until in now and "id " in now and now.split("id ")[-1] not in before:
            return now
        page.wait_for_timeout(100)
    raise AssertionError(f"the run did not reach {until!r}: {status.inner_text()!r}")


def open_thoughts(chat) -> None:
    """Open every closed thinking block: a block that finished before the page first drew it
    starts closed, and a closed block's text is not in the page at all."""
    groups = chat.locator(".thought-group")
    for i in range(groups.count()):
        arrow = groups.nth(i).locator(".arrow").first
        if "rotate(0deg)" in (arrow.get_attribute("style") or ""):
            groups.nth(i).locator(".title").first.click()


@pytest.mark.fault("hostile cell, the page (Chromium)")
@pytest.mark.parametrize("name", list(PAGE_ATTACKS))
def test_hostile_cell_from_the_page(page, app, name, fault):
    code, shows = PAGE_ATTACKS[name]
    before = snapshot(app.store)
    status = run_in_page(page, question(code, tag=f"page {name}"))
    chat = page.locator("#trajectory")
    chat.get_by_text(shows).first.wait_for()
    assert SECRET not in page.content()
    tid = stored_id(app.store, status)
    traj = app.store.load_trajectory(tid)
    assert traj.status == "finished" and shows in outputs(traj)[0].text
    lost = lost_items(before, snapshot(app.store))
    ledger.record(fault, what=outputs(traj)[0].text.strip().splitlines()[-1][:120],
                  lost=len(lost))
    assert not lost and not secret_leaks(app.store, app.db)
    still_serving(app, tid)
    status = run_in_page(page, "Fault test, no code, same page.")  # the page itself goes on
    assert "finished" in status


@pytest.mark.fault("backend drops the stream, the page (Chromium)")
def test_a_dropped_stream_shows_a_message_in_the_page(page, app, fault):
    before = snapshot(app.store)
    status = run_in_page(page, question(tag="page drop") + "<drop>", until="error")
    assert "dropped the stream" in status
    streamed = " ".join(DROP_TEXT.split()[:DROP_AFTER])
    open_thoughts(page.locator("#trajectory"))
    page.locator("#trajectory").get_by_text(streamed).first.wait_for()  # the text so far
    traj = app.store.load_trajectory(stored_id(app.store, status))
    assert traj.status == "error" and "".join(s.text for s in traj.segments).strip() == streamed
    lost = lost_items(before, snapshot(app.store))
    ledger.record(fault, what=f"page: {status.splitlines()[-1].strip()}", lost=len(lost))
    assert not lost
    assert "finished" in run_in_page(page, "Fault test, no code, after the drop.")
    still_serving(app)


MARKUP_CELL = ("print('<script>alert(1)</script>')\n"
               "print('<img src=x onerror=\"window.__xss=1\">')\n"
               "print('[click](javascript:window.__xss=2)')")
PAYLOADS = ("<script>alert(1)</script>", '<img src=x onerror="window.__xss=1">',
            "[click](javascript:window.__xss=2)")
XSS = " ".join(PAYLOADS)


@pytest.fixture(scope="module")
def markup(browser, app):
    """One run whose thinking, cell output and answer hold XSS: the page, every thinking block
    opened (a closed one is not rendered), and the stored trajectory."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(30_000)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(app.url)
    page.wait_for_selector("#run")
    status = run_in_page(page, question(MARKUP_CELL, tag="markup", say=XSS))
    chat = page.locator("#trajectory")
    chat.get_by_text("Final answer").first.wait_for()
    open_thoughts(chat)
    chat.get_by_text("Thinking about").first.wait_for()
    page.wait_for_timeout(500)  # an onerror would have fired by now
    traj = app.store.load_trajectory(stored_id(app.store, status))
    yield page, chat, traj, dialogs
    page.close()


@pytest.mark.fault("model output with script/onerror/javascript: markup never runs (Chromium)")
def test_markup_in_model_output_never_runs(markup, fault):
    page, chat, traj, dialogs = markup
    for kind in ("think", "output", "answer"):  # the model really wrote it, everywhere
        assert any(PAYLOADS[0] in s.text for s in traj.segments if s.kind == kind), kind
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert chat.locator("script").count() == 0
    assert chat.locator("img[onerror]").count() == 0
    assert chat.locator("a[href^='javascript']").count() == 0
    links = chat.locator("a", has_text="click")
    clicked = links.count()
    for i in range(clicked):
        links.nth(i).click(no_wait_after=True)
    page.wait_for_timeout(300)
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert dialogs == []
    ledger.record(fault, what=f"window.__xss undefined after rendering and after clicking "
                              f"{clicked} rendered links; no dialog")


@pytest.mark.fault("model output with script/onerror/javascript: markup shown as text "
                   "(Chromium)")
def test_markup_in_model_output_is_shown_as_text(markup, fault):
    _, chat, _, _ = markup
    shown = chat.inner_text()
    ledger.record(fault, what="shown as written in thinking, output and answer: "
                              + " · ".join(f"{p!r} {shown.count(p)}×" for p in PAYLOADS))
    assert f"Thinking about {XSS} here" in shown  # the thinking
    assert f"The answer, with {XSS} in it" in shown  # the answer
    for payload in PAYLOADS:  # the cell's output
        assert f"\n{payload}\n" in shown
        assert shown.count(payload) >= 3


@pytest.mark.fault("model output with images pointing elsewhere (Chromium)")
def test_model_written_images_do_not_make_the_browser_fetch_urls(page, fault):
    fetched: list[str] = []

    class Probe(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server name
            fetched.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Probe)  # loopback only
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        run_in_page(page, question(tag="images", say=f'<img src="{base}/html.png"> '
                                                     f"![chart]({base}/markdown.png)"))
        page.locator("#trajectory").get_by_text("Final answer").first.wait_for()
        page.wait_for_timeout(500)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(2)
    ledger.record(fault, what=f"the visitor's browser fetched {sorted(set(fetched))}"
                  if fetched else "nothing fetched")
    assert fetched == []
