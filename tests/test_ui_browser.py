"""What a person sees: Debian's Chromium driven by Playwright against the app.

A new user opens the page, clicks an example, presses Run, watches the thinking, a code cell with
its output and a plot, inserts a hint mid-stream, stops a run, rewinds and branches. The model is
the scripted tour (tests/tour.py); everything else is real.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser import MARKS
from tests.tour import tour_backend

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

pytestmark = MARKS


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    from startui.ui.app import build_app, launch, open_store
    from startui.ui.studio import Services

    db = tmp_path_factory.mktemp("browser") / "b.sqlite"
    services = Services(open_store(f"sqlite:///{db}"), pool_size=1,
                        backend_factory=lambda settings: tour_backend(0.03))
    demo = build_app(services)
    _, local_url, _ = launch(demo, prevent_thread_lock=True, quiet=True)
    yield local_url
    demo.close()


@pytest.fixture
def page(browser, url):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(30_000)
    page.goto(url)
    page.wait_for_selector("#run")
    yield page
    page.close()


def chat(page):
    return page.locator("#trajectory")


def pick(page, dropdown: str, text: str) -> None:
    page.locator(f"{dropdown} input").click()
    page.get_by_role("option", name=text, exact=False).first.click()


def test_a_new_user_runs_an_example_and_steers_it(page):
    page.get_by_text("What is the sum of all prime numbers below 1000?").first.click()
    from playwright.sync_api import expect

    expect(page.locator("#problem textarea")).to_have_value(
        "What is the sum of all prime numbers below 1000?")
    page.locator("#run").click()
    trajectory = chat(page)
    trajectory.get_by_text("I need the sum of all primes").wait_for()  # thinking streams
    trajectory.locator("code", has_text="import matplotlib").first.wait_for()  # the cell
    trajectory.get_by_text("76127").first.wait_for()  # its output from the kernel
    trajectory.locator("img[src*='.png']").first.wait_for()  # and the plot, inline
    trajectory.get_by_text("Step 3:").first.wait_for()  # the model is reflecting, live
    page.locator("#hint-text textarea").fill("Count the primes too.")
    page.locator("#insert").click()
    trajectory.get_by_text("Hint · from a person").wait_for()
    trajectory.get_by_text("Following the hint").wait_for()  # it continued from the hint
    page.locator("#status").get_by_text("finished").wait_for()
    trajectory.get_by_text("Final answer").wait_for()
    assert "Step 30" not in trajectory.inner_text()  # cut where the hint went in
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "live-demo.png"), full_page=True)


def test_stop_then_rewind_into_a_branch(page):
    from playwright.sync_api import expect

    page.locator("#problem textarea").fill("Sum of primes below 1000?")
    page.locator("#run").click()
    chat(page).get_by_text("Step 2:").first.wait_for()
    page.locator("#stop").click()
    page.locator("#status").get_by_text("stopped").wait_for()
    page.get_by_text("Rewind & branch").click()
    pick(page, "#seg-pick", "1 · code")
    editor = page.locator("#seg-text textarea")
    expect(editor).to_have_value(re.compile("import matplotlib"))
    editor.fill("print(6 * 7)")
    page.locator("#branch").click()
    page.locator("#status").get_by_text("branch of").wait_for()
    chat(page).locator("code", has_text="print(6 * 7)").first.wait_for()
    chat(page).get_by_text("42").first.wait_for()  # the edited cell ran
    page.locator("#status").get_by_text("finished").wait_for()
    for _ in range(40):  # the list refreshes once the branch is saved
        page.locator("#branches input").click()
        options = page.get_by_role("option")
        if options.count() >= 2:
            break
        page.keyboard.press("Escape")
        page.wait_for_timeout(250)
    assert options.count() >= 2 and any("⑂" in t for t in options.all_inner_texts())


def test_reload_loses_nothing_and_a_closed_page_stops_its_run(browser, url, page):
    page.locator("#problem textarea").fill("Reload me: sum of primes below 1000?")
    page.locator("#run").click()
    chat(page).get_by_text("Step 1:").first.wait_for()
    page.reload()  # the old page is gone mid-run ...
    page.wait_for_selector("#run")
    for _ in range(60):  # ... its run stops and stays saved, and the list shows it
        page.locator("#runs input").click()
        option = page.get_by_role("option", name="Reload me", exact=False)
        if option.count() and "running" not in option.first.inner_text():
            break
        page.keyboard.press("Escape")
        page.wait_for_timeout(500)
        page.reload()
        page.wait_for_selector("#run")
    assert option.first.inner_text().startswith("cancelled")
    option.first.click()
    chat(page).get_by_text("Reload me").wait_for()  # reopened from the store
    chat(page).locator("code", has_text="import matplotlib").first.wait_for()
