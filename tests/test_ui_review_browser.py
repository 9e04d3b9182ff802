"""The Review tab as a reviewer sees it: Debian's Chromium driven by Playwright against the app,
with users in the store (so there is a login page), scripted trajectories with real code cells
(re-run in a real kernel), and the keyboard.

One story, in order: a reviewer logs in, filters the queue to wrong answers, marks the first
wrong step, edits a code cell, sees the stale output and the diff, takes the new output, accepts
with `a` (the next item is on screen), undoes with `z`; a second reviewer who had the same
trajectory open saves a conflicting edit, is refused, and keeps their text. Deep links open a
trajectory in either tab and survive a reload.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from startui.answers import SCORER
from startui.trajectory import Problem, Segment, Trajectory
from tests.browser import MARKS

# The screenshot goes to artifacts/ (git-ignored); STARTUI_DOCS_SCREENSHOTS=1 refreshes the
# README's docs/review-tab.png instead.
DOCS = Path(__file__).resolve().parents[1] / (
    "docs" if os.environ.get("STARTUI_DOCS_SCREENSHOTS") else "artifacts")

pytestmark = MARKS


def scripted(question: str, code: str, output: str, boxed: str) -> Trajectory:
    return Trajectory(
        problem=Problem(question=question), prompt="p", status="finished",
        segments=[Segment("think", "I will let Python do the arithmetic."),
                  Segment("code", code), Segment("output", output, "kernel"),
                  Segment("think", f"The kernel printed {output}."),
                  Segment("answer", f"The answer is \\boxed{{{boxed}}}.", meta={"boxed": boxed})])


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from startui.review import users
    from startui.ui.app import build_app, launch, open_store
    from startui.ui.studio import Services
    from tests.tour import tour_backend

    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('rb') / 'r.sqlite'}")
    seeds = [("What is 6 * 7?", "print(6 * 7)", "42", "42", "42", True),
             ("What is 2 ** 10?", "print(2 ** 10)", "1024", "1000", "1024", False),
             ("What is 17 * 3?", "print(17 * 3)", "51", "50", "51", False)]
    ids = {}
    for question, code, output, boxed, reference, correct in seeds:
        t = scripted(question, code, output, boxed)
        store.save_trajectory(t)
        store.add_score(t.id, scorer=SCORER, correct=correct,
                        detail={"answer": boxed, "extracted_by": "boxed",
                                "reference": reference})
        ids[question] = t.id
    users.add_user(store, "ann", "ann-pw", role="admin")
    users.add_user(store, "bob", "bob-pw", role="reviewer")
    demo = build_app(Services(store, pool_size=1, backend_factory=lambda s: tour_backend(0.01)))
    _, url, _ = launch(demo, prevent_thread_lock=True, quiet=True)
    yield url, ids
    demo.close()


def login(browser, url: str, name: str, path: str = ""):
    page = browser.new_context(viewport={"width": 1500, "height": 1150}).new_page()
    page.set_default_timeout(20_000)
    page.goto(url + path)
    page.get_by_label("username").fill(name)
    page.get_by_label("password").fill(f"{name}-pw")
    page.get_by_role("button", name="Login").click()
    page.locator("#run, #review-accept").first.wait_for()  # the tab the address names
    return page


def on_screen(page) -> str:
    """The id of the trajectory in the review tab."""
    from playwright.sync_api import expect

    expect(page.locator("#review-status")).to_contain_text("id ")
    return re.search(r"id ([0-9a-f]{32})", page.locator("#review-status").inner_text())[1]


def pick(page, dropdown: str, text: str) -> None:
    page.locator(f"{dropdown} input").click()
    page.get_by_role("option", name=text, exact=False).first.click()


def test_a_review_session(browser, app):
    from playwright.sync_api import expect

    url, ids = app
    ann = login(browser, url, "ann")
    ann.get_by_role("tab", name="Review").click()
    top = ann.locator("#review-progress")
    expect(top).to_contain_text("reviewing as ann (admin)")
    expect(top).to_contain_text("0 / 3")
    pick(ann, "#review-f-verdict", "wrong")
    ann.locator("#review-apply").click()
    chat = ann.locator("#review-trajectory")
    expect(ann.locator("#review-verdict")).to_contain_text("wrong")
    wrong = {ids["What is 2 ** 10?"], ids["What is 17 * 3?"]}
    tid = on_screen(ann)
    assert tid in wrong
    code = {ids["What is 2 ** 10?"]: "print(2 ** 10)",
            ids["What is 17 * 3?"]: "print(17 * 3)"}[tid]

    # a second reviewer has the same trajectory open, through its deep link
    bob = login(browser, url, "bob", f"?t={tid}&tab=review")
    assert on_screen(bob) == tid
    bob.reload()  # a reload keeps it
    bob.locator("#review-accept").wait_for()
    assert on_screen(bob) == tid and f"t={tid}" in bob.url and "tab=review" in bob.url

    # edit the cell (j j: the picker moves to it): the stored output is stale, the diff shows it
    ann.locator("body").click(position={"x": 5, "y": 5})
    ann.keyboard.press("j")
    expect(ann.locator("#review-editor textarea")).to_have_value(re.compile("Python"))
    ann.keyboard.press("j")
    expect(ann.locator("#review-editor textarea")).to_have_value(code)
    ann.locator("#review-editor textarea").fill("print(12 * 12)")
    ann.locator("#review-save").click()
    expect(ann.locator("#review-message")).to_contain_text("no longer matches", timeout=40_000)
    chat.locator("code", has_text="🕓 stale").wait_for()
    expect(ann.locator("#review-stale")).to_contain_text("144")
    diff = ann.locator("#review-diff")
    expect(diff.locator("ins").first).to_contain_text("print(12")  # word by word
    expect(diff.locator("del").first).to_contain_text(code.split()[0])
    expect(diff).to_contain_text("against the model's original")

    # first-error mode, from the keyboard: e on the edited cell
    ann.locator("body").click(position={"x": 5, "y": 5})
    ann.keyboard.press("e")
    chat.get_by_text("#0 ✅ +1").wait_for()
    chat.locator("code", has_text="#1 ❌ -1").wait_for()
    assert "#2 ✅" not in chat.inner_text()  # after the first error: unlabelled
    DOCS.mkdir(exist_ok=True)
    DOCS.mkdir(exist_ok=True)
    ann.screenshot(path=str(DOCS / "review-tab.png"), full_page=True)

    # the other reviewer's edit of the version they loaded is refused, and their text stays
    pick(bob, "#review-seg", "#1 · code")
    expect(bob.locator("#review-editor textarea")).to_have_value(code)
    bob.locator("#review-editor textarea").fill("print('mine')")
    bob.locator("#review-save").click()
    expect(bob.locator("#review-message")).to_contain_text("Not saved")
    expect(bob.locator("#review-message")).to_contain_text("ann")
    expect(bob.locator("#review-editor textarea")).to_have_value("print('mine')")

    # a stale output blocks "accept"; take the kernel's new output, accept from the keyboard
    ann.locator("body").click(position={"x": 5, "y": 5})
    ann.keyboard.press("a")
    expect(ann.locator("#review-message")).to_contain_text("reason")
    assert on_screen(ann) == tid
    ann.locator("#review-take").click()
    expect(ann.locator("#review-message")).to_contain_text("took the new output", timeout=40_000)
    chat.locator("code.language-text", has_text="144").wait_for()
    expect(chat.locator("code", has_text="stale")).to_have_count(0)
    ann.locator("#review-comment textarea").fill("fixed the cell")
    ann.locator("body").click(position={"x": 5, "y": 5})
    ann.keyboard.press("Shift+Digit4")
    ann.keyboard.press("1")  # the first label of the set: "correct"
    expect(ann.locator("#review-labels input[type=checkbox]").first).to_be_checked()
    expect(ann.locator("#review-score input[type=radio]").nth(3)).to_be_checked()
    ann.locator("#review-trajectory").click(position={"x": 5, "y": 5})
    ann.keyboard.press("a")
    expect(ann.locator("#review-message")).to_contain_text("accepted")
    nxt = on_screen(ann)
    assert nxt != tid and nxt in wrong  # the next wrong one, at once
    expect(top).to_contain_text("you: 1 today / 1 in all")
    ann.keyboard.press("z")
    expect(ann.locator("#review-message")).to_contain_text("undone")
    assert on_screen(ann) == tid
    expect(top).to_contain_text("you: 0 today / 0 in all")

    # the live tab: a deep link opens the trajectory there, and a reload keeps it
    ann.goto(f"{url}?t={tid}")
    live = ann.locator("#trajectory")
    live.get_by_text("12 * 12").first.wait_for()
    assert "tab=review" not in ann.url
    ann.reload()
    live.get_by_text("12 * 12").first.wait_for()
    assert f"t={tid}" in ann.url
    bob.context.close()
    ann.context.close()


def test_a_live_run_keeps_its_address_is_reviewed_and_continued(browser, app):
    from playwright.sync_api import expect

    url, _ = app
    page = login(browser, url, "ann")
    page.locator("#problem textarea").fill("Sum of primes below 1000?")
    page.locator("#run").click()
    page.locator("#status").get_by_text("finished").wait_for()
    tid = re.search(r"t=([0-9a-f]{32})", page.url)[1]  # the address follows the run
    page.reload()
    page.locator("#trajectory").get_by_text("Sum of primes below 1000?").wait_for()
    page.locator("#live-accept").click()
    expect(page.locator("#live-decided")).to_contain_text("accepted by ann")
    page.locator("#live-send").click()
    assert on_screen(page) == tid
    expect(page.locator("#review-accept")).to_be_visible()
    assert "tab=review" in page.url
    # an admin edits the guidelines
    page.get_by_text("Guidelines").first.click()
    page.get_by_text("Edit (admins)").click()
    page.locator("#review-guidelines textarea").fill("# House rules\nAccept only checked runs.")
    page.get_by_role("button", name="Save guidelines").click()
    page.locator("#review-guidelines").get_by_text("Accept only checked runs.").first.wait_for()
    # continue from an edited cell: a new branch, generated in the live tab
    pick(page, "#review-seg", "#1 · code")
    expect(page.locator("#review-editor textarea")).to_have_value(re.compile("matplotlib"))
    page.locator("#review-editor textarea").fill("print(6 * 7)")
    page.locator("#review-continue").click()
    page.locator("#status").get_by_text("branch of").wait_for()
    page.locator("#trajectory").locator("code", has_text="print(6 * 7)").first.wait_for()
    page.locator("#status").get_by_text("finished").wait_for()
    assert "tab=review" not in page.url and tid not in page.url  # the branch's own address
    page.context.close()
