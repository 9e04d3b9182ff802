"""The Dataset tab as a team sees it: Debian's Chromium driven by Playwright against the app with
users (so there is a login page) and scored trajectories in a run.

One story, in order: an admin creates a campaign with overlap 2 for two reviewers; each reviewer
(their own browser context) pulls "next in campaign" in the Review tab and decides — they
disagree on the first item and agree on the second; the disagreement lands in the admin's
adjudication view with both reviews side by side, the admin settles it, the Dataset tab shows the
agreement, and the export downloads a zip whose rows are the store's selection.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path

import pytest

from bench.standins import rft_backend
from startui.review import users
from startui.rft.select import SelectConfig, select
from tests.browser import MARKS
from tests.test_dashboards import RUN, seed

pytestmark = MARKS
ARTIFACTS = Path(__file__).resolve().parents[1] / (
    "docs" if os.environ.get("STARTUI_DOCS_SCREENSHOTS") else "artifacts")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from startui.ui.app import build_app, launch, open_store
    from startui.ui.studio import Services

    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('db') / 'd.sqlite'}")
    ids = seed(store)
    for name, role in (("ann", "admin"), ("bob", "reviewer"), ("cat", "reviewer"),
                       ("vic", "viewer")):
        users.add_user(store, name, f"{name}-pw", role=role)
    demo = build_app(Services(store, pool_size=2, backend_factory=lambda s: rft_backend()))
    _, url, _ = launch(demo, prevent_thread_lock=True, quiet=True)
    yield url, store, ids
    demo.close()


def login(browser, url: str, name: str, path: str = ""):
    page = browser.new_context(viewport={"width": 1500, "height": 1100},
                               accept_downloads=True).new_page()
    page.set_default_timeout(20_000)
    page.goto(url + path)
    page.get_by_label("username").fill(name)
    page.get_by_label("password").fill(f"{name}-pw")
    page.get_by_role("button", name="Login").click()
    page.locator("#run, #dataset-d-refresh").first.wait_for()  # the tab the address names
    return page


def pick(page, dropdown: str, text: str) -> None:
    page.locator(f"{dropdown} input").click()
    page.get_by_role("option", name=text, exact=False).first.click()


def on_screen(page) -> str:
    from playwright.sync_api import expect

    expect(page.locator("#review-status")).to_contain_text("id ")
    return re.search(r"id ([0-9a-f]{32})", page.locator("#review-status").inner_text())[1]


def test_a_campaign_from_creation_to_export(browser, app):
    from playwright.sync_api import expect

    url, store, ids = app
    ann = login(browser, url, "ann")
    ann.get_by_role("tab", name="Dataset").click()
    expect(ann.locator("#dataset-d-summary")).to_contain_text("9 generated")
    expect(ann.locator("#dataset-plot-funnel")).to_contain_text("selected for export")

    # the admin makes a campaign: the run's correct trajectories, two reviewers each
    ann.get_by_text("New campaign (admins)").click()
    name = ann.locator("#dataset-c-name textarea, #dataset-c-name input").first
    name.wait_for()
    pick(ann, "#dataset-c-run", RUN)
    pick(ann, "#dataset-c-verdict", "correct")
    pick(ann, "#dataset-c-reviewers", "bob")
    pick(ann, "#dataset-c-reviewers", "cat")
    ann.keyboard.press("Escape")
    # typed last, and checked, so no re-render of the opened panel can have reset it
    name.fill("double")
    name.press("Tab")
    expect(name).to_have_value("double")
    ann.locator("#dataset-c-create").click()
    expect(ann.locator("#dataset-message")).to_contain_text("campaign double created")
    expect(ann.locator("#dataset-c-info")).to_contain_text("0 / 4 done")

    # two reviewers, two browsers: the same first item, a disagreement; then an agreement
    votes = {"bob": ("a", "a"), "cat": ("r", "a")}
    seen = {}
    for who, keys in votes.items():
        page = login(browser, url, who)
        page.get_by_role("tab", name="Review").click()
        pick(page, "#review-f-campaign", "double")
        page.locator("#review-campaign-next").click()
        expect(page.locator("#review-message")).to_contain_text("is yours for now")
        expect(page.locator("#review-progress")).to_contain_text("campaign double")
        seen[who] = []
        for key in keys:
            seen[who].append(on_screen(page))
            page.locator("#review-trajectory").click(position={"x": 5, "y": 5})
            page.keyboard.press(key)
            expect(page.locator("#review-message")).to_contain_text(
                "accepted" if key == "a" else "rejected")
        page.context.close()
    assert seen["bob"] == seen["cat"]  # overlap 2: both reviewers get the items in order
    first = seen["bob"][0]

    # the admin: the disagreement is waiting, both reviews side by side; settle it
    ann.locator("#dataset-c-refresh").click()
    pick(ann, "#dataset-c-pick", "double")
    expect(ann.locator("#dataset-c-info")).to_contain_text("needs adjudication 1")
    agreement = ann.locator("#dataset-c-agreement")
    expect(agreement).to_contain_text("bob / cat")
    expect(agreement).to_contain_text("2 items decided by two or more")
    pick(ann, "#dataset-a-pick", first[:12])
    view = ann.locator("#dataset-a-view")
    expect(view.locator(".adjudication-side")).to_have_count(2)
    expect(view).to_contain_text("✓ accepted")
    expect(view).to_contain_text("✗ rejected")
    ann.locator("#dataset-a-comment textarea").fill("the cell checks out")
    ann.locator("#dataset-a-accept").click()
    expect(ann.locator("#dataset-message")).to_contain_text("nothing else needs adjudication")
    expect(view).to_contain_text("settled: accepted by ann (the cell checks out)")
    expect(ann.locator("#dataset-c-info")).to_contain_text("adjudicated 1")
    assert store.trajectory_summary(first).review_status == "accepted"
    ARTIFACTS.mkdir(exist_ok=True)
    ann.screenshot(path=str(ARTIFACTS / "dataset-tab.png"), full_page=True)

    # the export: pick the run, count, download the zip; its rows are the store's selection
    pick(ann, "#dataset-x-runs", RUN)
    ann.keyboard.press("Escape")
    ann.locator("#dataset-x-preview").click()
    expect(ann.locator("#dataset-x-report")).to_contain_text("dropped because")
    ann.locator("#dataset-x-export").click()
    download_btn = ann.locator("#dataset-x-download")
    expect(download_btn).to_contain_text(".zip")
    with ann.expect_download() as dl:
        download_btn.click()
    path = dl.value.path()
    with zipfile.ZipFile(path) as z:
        assert "manifest.json" in z.namelist()
        rows = [json.loads(x) for x in z.read("data.jsonl").decode().splitlines()]
        manifest = json.loads(z.read("manifest.json"))
    expected = select(store, [RUN], SelectConfig()).ids
    assert [r["id"] for r in rows] == expected and manifest["counts"]["rows"] == len(expected)
    assert manifest["selection"]["people"] == {"adjudicated": 1, "consensus": 1}
    ann.context.close()


def test_a_viewer_is_refused_and_an_admin_runs_a_batch(browser, app, tmp_path):
    from playwright.sync_api import expect

    url, store, _ = app
    vic = login(browser, url, "vic")
    vic.get_by_role("tab", name="Dataset").click()
    expect(vic.locator("#dataset-who")).to_contain_text("vic (viewer")
    pick(vic, "#dataset-x-runs", RUN)
    vic.keyboard.press("Escape")
    vic.locator("#dataset-x-export").click()
    expect(vic.locator("#dataset-message")).to_contain_text("vic is a viewer: export needs")
    vic.get_by_text("Users (admins)").click()
    vic.locator("#dataset-u-name input, #dataset-u-name textarea").first.fill("eve")
    vic.locator("#dataset-u-add").click()
    expect(vic.locator("#dataset-message")).to_contain_text("vic is a viewer: users needs")
    assert store.get_user("eve") is None
    vic.context.close()

    # an admin imports a problem file and runs a batch on it, watching the progress bar
    problems = tmp_path / "upload.jsonl"
    problems.write_text("".join(json.dumps({"id": f"b{i}", "question": f"Compute {i + 2}*3.",
                                            "answer": str((i + 2) * 3)}) + "\n"
                                for i in range(3)))
    ann = login(browser, url, "ann", "?tab=dataset")  # the tab's own address: no click
    expect(ann.locator("#dataset-d-summary")).to_contain_text("9 generated")
    assert "tab=dataset" in ann.url
    ann.get_by_text("Batch generation (admins)").click()
    ann.locator("#dataset-b-file").get_by_text("Drop File Here").wait_for()  # ready for it
    ann.locator("#dataset-b-file input[type=file]").set_input_files(str(problems))
    ann.locator("#dataset-b-file").get_by_text("upload.jsonl").wait_for()
    ann.locator("#dataset-b-import").click()
    expect(ann.locator("#dataset-b-imported")).to_contain_text("3 new")
    ann.locator("#dataset-b-run input, #dataset-b-run textarea").first.fill("browser-1")
    ann.locator("#dataset-b-start").click()
    progress = ann.locator("#batch-progress")
    expect(progress).to_have_attribute("data-state", "finished", timeout=40_000)
    expect(progress).to_contain_text("6/6 (100%)")
    expect(progress).to_contain_text("correct 3/6")
    assert store.count_trajectories(run_id="browser-1") == 6
    ann.context.close()
