"""The Dataset tab: its pure helpers (the export zip, the selection report, the progress bar, an
adjudication side by side, the campaign session of the Review tab, who may do what), and its
actions over the API (gradio_client) against a launched app with users and a login: the export's
zip holds what the store's selection picks, a viewer is refused everything that changes
anything, a batch started from the tab with the scripted backend finishes into the store, and a
public deployment's anonymous visitor gets nothing."""

from __future__ import annotations

import asyncio
import json
import time
import zipfile
from pathlib import Path

import pytest

from bench.standins import rft_backend, rft_problems
from startui.review import campaigns, decisions, users
from startui.review.users import PermissionDenied
from startui.rft.select import SelectConfig, select
from startui.store import Store
from startui.store.queue import QueueFilter
from startui.ui import dataset_ops as ops
from startui.ui import dataset_render as render
from startui.ui.campaign_session import CampaignSession
from tests.test_dashboards import RUN, seed

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
TEAM = {"ann": "admin", "bob": "reviewer", "cat": "reviewer", "vic": "viewer"}


@pytest.fixture
def store(tmp_path):
    with Store(f"sqlite:///{tmp_path / 'd.sqlite'}") as s:
        yield s


def zip_rows(path: str | Path) -> tuple[list[dict], dict, list[str]]:
    with zipfile.ZipFile(path) as z:
        names = sorted(z.namelist())
        rows = [json.loads(line) for line in z.read("data.jsonl").decode().splitlines()]
        return rows, json.loads(z.read("manifest.json")), names


# --- pure helpers ------------------------------------------------------------------------------

def test_the_export_zip_is_the_export_commands_files(store, tmp_path):
    seed(store)
    for name, role in TEAM.items():
        users.add_user(store, name, None, role=role)
    options = {"dataset": "start", "formats": ["jsonl", "parquet"], "disable": "no_tool_call"}
    z = ops.export_zip(store, RUN, options, by="bob", root=tmp_path)
    rows, manifest, names = zip_rows(z.path)
    assert names == ["data.jsonl", "data.parquet", "manifest.json"]
    expected = select(store, [RUN], SelectConfig()).ids
    assert [r["id"] for r in rows] == expected and manifest["counts"]["rows"] == len(expected)
    assert manifest["options"]["select"]["filters"]["disabled"] == ["no_tool_call"]
    # the command line writes the same data, byte for byte
    from startui.cli import main

    assert main(["export", str(tmp_path / "cli"), "--run", RUN, "--formats", "jsonl",
                 "--disable", "no_tool_call", "--db", store.url]) == 0
    with zipfile.ZipFile(z.path) as zf:
        assert zf.read("data.jsonl") == (tmp_path / "cli" / "data.jsonl").read_bytes()
    sel = ops.preview(store, RUN, {"dataset": "seed"}, by="vic")  # a viewer may count
    assert sel.report.dataset == "seed" and sel.report.selected == len(sel.ids)
    with pytest.raises(PermissionDenied, match="vic is a viewer"):
        ops.export_zip(store, RUN, options, by="vic", root=tmp_path)
    with pytest.raises(PermissionDenied, match="log in"):
        ops.export_zip(store, RUN, options, by=users.ANONYMOUS, root=tmp_path)
    with pytest.raises(ValueError, match="unknown export option.*per_problme"):
        ops.export_configs({"per_problme": 2})
    with pytest.raises(ValueError, match="at least one run"):
        ops.preview(store, "", {}, by="bob")
    md = render.selection_markdown(sel.report)
    assert "D_seed" in md and "| dropped because |" in md


def test_who_may_import_generate_and_manage_users(store):
    ops.require_admin(store, "me", "starting a batch", public=False)  # a laptop, nobody set up
    with pytest.raises(PermissionDenied):
        ops.require_admin(store, "me", "starting a batch", public=True)
    for name, role in TEAM.items():
        users.add_user(store, name, "pw", role=role)
    ops.require_admin(store, "ann", "starting a batch", public=True)
    with pytest.raises(PermissionDenied, match="bob is a reviewer.*admin"):
        ops.require_admin(store, "bob", "starting a batch", public=False)
    with pytest.raises(PermissionDenied, match="vic is a viewer"):
        ops.add_user(store, "eve", "pw", "admin", by="vic")
    ops.add_user(store, "dan", "pw", "viewer", by="ann")
    assert users.authenticate(store, "dan", "pw") and users.role_of(store, "dan") == "viewer"
    with pytest.raises(ValueError, match="exists already"):
        ops.add_user(store, "dan", "pw", "viewer", by="ann")
    ops.change_role(store, "dan", "reviewer", by="ann")
    assert users.role_of(store, "dan") == "reviewer"
    with pytest.raises(ValueError, match="last admin"):
        ops.change_role(store, "ann", "viewer", by="ann")
    with pytest.raises(ValueError, match="last admin"):
        ops.remove_user(store, "ann", by="ann")
    ops.remove_user(store, "dan", by="ann")
    assert store.get_user("dan") is None
    assert "| dan |" not in render.users_markdown(store.list_users())


def test_a_campaign_session_hands_out_the_campaigns_items_and_votes(store):
    ids = seed(store)
    for name, role in TEAM.items():
        users.add_user(store, name, None, role=role)
    campaigns.create_campaign(store, "double", by="ann", overlap=2, reviewers=["bob", "cat"],
                              filter=QueueFilter(run_id=RUN, verdict="correct"))
    with pytest.raises(PermissionDenied, match="vic"):
        CampaignSession(store, "vic", "double")
    bob, cat = CampaignSession(store, "bob", "double"), CampaignSession(store, "cat", "double")
    first = bob.pull()
    assert first is not None and first.id in ids["hinted"]
    assert bob.pull().id == first.id  # a reload keeps the held item
    assert cat.pull().id == first.id  # overlap 2: the same item to the second reviewer
    nxt = bob.decide("accepted", score=5)
    assert nxt is not None and nxt.id != first.id
    cat.decide("rejected", score=1)
    assert bob.progress()["mine"] == 1 and bob.progress()["total"] == 4
    disputes = campaigns.needs_adjudication(store, "double", by="ann")
    assert [d.trajectory_id for d in disputes] == [first.id]
    assert render.dispute_choices(disputes)[0][1] == first.id
    view = campaigns.adjudication_view(store, "double", first.id, by="ann")
    html = render.adjudication_html(view)
    assert "bob" in html and "cat" in html and "✓ accepted" in html and "✗ rejected" in html
    assert "disputed" in html
    bob.undo()  # undo works as anywhere: the item is back on screen
    assert bob.current.id == first.id


def test_the_progress_bar_and_escaping():
    assert "No batch" in render.batch_html({})
    status = {"run": "<b>r</b>", "running": True, "done": 3, "todo": 12, "error": None,
              "report": {"rate": 1.5, "finished": 3, "cancelled": 0, "errors": 0, "skipped": 0,
                         "correct": 2, "wrong": 1, "interrupted": False}}
    bar = render.batch_html(status)
    assert "&lt;b&gt;r&lt;/b&gt;" in bar and "3/12 (25%)" in bar and "width:25.0%" in bar
    assert "ETA 0:06" in bar and "correct 2/3" in bar and "data-state='running'" in bar
    stopped = render.batch_html({**status, "running": False,
                                 "report": {**status["report"], "interrupted": True}})
    assert "Resume" in stopped and "data-state='stopped'" in stopped


# --- over the API ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from gradio_client import Client

    from startui.ui.app import build_app, launch, open_store
    from startui.ui.studio import Services

    db = tmp_path_factory.mktemp("dataset-api") / "d.sqlite"
    store = open_store(f"sqlite:///{db}")
    ids = seed(store)
    for name, role in TEAM.items():
        users.add_user(store, name, f"{name}-pw", role=role)
    services = Services(store, pool_size=2, backend_factory=lambda settings: rft_backend())
    demo = build_app(services)
    _, url, _ = launch(demo, prevent_thread_lock=True, quiet=True)

    def client(name: str) -> Client:
        return Client(url, auth=(name, f"{name}-pw"), verbose=False)

    yield client, ids, store
    demo.close()


def test_the_export_zip_over_the_api_matches_the_stores_selection(app, tmp_path):
    client, _, store = app
    bob = client("bob")
    options = {"dataset": "start", "per_problem": 2, "keep_incorrect": True,
               "formats": ["jsonl"]}
    out, path = bob.predict(RUN, options, api_name="/dataset_export")
    rows, manifest, names = zip_rows(path)
    assert names == ["data.jsonl", "manifest.json"] and Path(path).name == out["file"]
    cfg, _ = ops.export_configs(options)
    expected = select(store, [RUN], cfg)
    assert [r["id"] for r in rows] == expected.ids and len(rows) == 5  # 4 right + 1 human wrong
    assert manifest["selection"] == expected.report.to_dict() == out["manifest"]["selection"]
    preview = bob.predict(RUN, {"dataset": "seed"}, api_name="/dataset_preview")
    assert preview["ids"] == select(store, [RUN], SelectConfig(dataset="seed")).ids
    assert preview["report"]["dropped"]  # what each filter dropped comes with it
    with pytest.raises(Exception, match="unknown run"):
        bob.predict("nope", {}, api_name="/dataset_export")


def test_a_viewer_is_refused_every_change(app):
    client, ids, store = app
    vic = client("vic")
    with pytest.raises(Exception, match="vic is a viewer"):
        vic.predict(RUN, {}, api_name="/dataset_export")
    with pytest.raises(Exception, match="vic is a viewer"):
        vic.predict("vic's", {"run": RUN, "reviewers": "bob,cat"}, api_name="/campaign_create")
    with pytest.raises(Exception, match="vic is a viewer"):
        vic.predict("eve", "pw", "admin", api_name="/users_add")
    with pytest.raises(Exception, match="vic is a viewer.*admin"):
        vic.predict({"run": "v1", "backend": "scripted"}, api_name="/batch_start")
    assert store.list_campaigns() == [] and store.get_user("eve") is None
    # an admin's campaign: the viewer may read its progress but not vote or settle
    ann = client("ann")
    made = ann.predict("api-double", {"run": RUN, "verdict": "correct", "overlap": 2,
                                      "reviewers": ["bob", "cat"]}, api_name="/campaign_create")
    assert (made["items"], made["overlap"], made["reviewers"]) == (4, 2, ["bob", "cat"])
    assert vic.predict("api-double", api_name="/campaign_progress")["progress"]["items"] == 4
    with pytest.raises(Exception, match="vic is a viewer"):
        vic.predict("api-double", api_name="/campaign_next")
    with pytest.raises(Exception, match="vic is a viewer"):
        vic.predict("api-double", ids["hinted"][0], "accept", "", api_name="/campaign_adjudicate")
    with pytest.raises(Exception, match="vic is a viewer"):
        vic.predict("api-double", True, api_name="/campaign_disputes")
    # two reviewers disagree over the API; the admin settles it
    bob, cat = client("bob"), client("cat")
    item = bob.predict("api-double", api_name="/campaign_next")
    assert cat.predict("api-double", api_name="/campaign_next")["id"] == item["id"]
    bob.predict("api-double", item["id"], "accept", 5, [], "", "", api_name="/campaign_decide")
    cat.predict("api-double", item["id"], "reject", 2, [], "", "", api_name="/campaign_decide")
    disputes = ann.predict("api-double", False, api_name="/campaign_disputes")
    assert [d["trajectory_id"] for d in disputes] == [item["id"]]
    view = ann.predict("api-double", item["id"], api_name="/campaign_adjudication")
    assert {s["reviewer"]: s["decision"] for s in view["sides"]} == {"bob": "accepted",
                                                                      "cat": "rejected"}
    settled = ann.predict("api-double", item["id"], "accept", "checked the cell",
                          api_name="/campaign_adjudicate")
    assert settled["decision"] == "accepted" and settled["detail"]["adjudication"]
    report = vic.predict("api-double", api_name="/campaign_agreement")
    assert report["items"] == 1 and report["pairs"][0]["a"] == "bob"
    assert store.trajectory_summary(item["id"]).review_status == "accepted"


def test_a_batch_from_the_tab_runs_into_the_store(app, tmp_path):
    from gradio_client import handle_file

    client, _, store = app
    ann = client("ann")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "ok", "answer": "1"}\n{"answer": "2"}\n')
    with pytest.raises(Exception, match=r"^bad.jsonl: 1 of 2 rows.*\n  line 2: no question"):
        ann.predict(handle_file(str(bad)), "", False, api_name="/problems_import")
    good = tmp_path / "upload.jsonl"
    good.write_text("".join(json.dumps({"id": f"u{i}", "question": f"Compute {i + 2}*{i + 3}.",
                                        "answer": str((i + 2) * (i + 3))}) + "\n"
                            for i in range(2)))
    with pytest.raises(Exception, match="bob is a reviewer.*admin"):
        client("bob").predict(handle_file(str(good)), "", False, api_name="/problems_import")
    imported = ann.predict(handle_file(str(good)), "uploaded", False,
                           api_name="/problems_import")
    assert (imported["inserted"], imported["source"], imported["file"]) == (2, "uploaded",
                                                                           "upload.jsonl")
    options = {"run": "gen-1", "source": "uploaded", "samples": 1, "greedy_baseline": True,
               "rounds": 1, "score": True, "concurrency": 2, "backend": "scripted"}
    started = ann.predict(options, api_name="/batch_start")
    assert started["run"] == "gen-1" and started["problems"] == 2
    deadline = time.monotonic() + 60
    while (status := ann.predict(api_name="/batch_status"))["running"]:
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    report = status["report"]
    assert (report["tasks"], report["finished"], report["errors"]) == (4, 4, 0), status
    assert (report["correct"], report["wrong"]) == (2, 2)  # hinted right, greedy wrong
    trajs = list(store.iter_trajectories(run_id="gen-1"))
    assert sorted(t.settings["mode"] for t in trajs) == ["greedy", "greedy", "hinted", "hinted"]
    assert all(t.status == "finished" for t in trajs)
    # the same run again resumes: everything is done already
    ann.predict(api_name="/batch_resume")
    while (status := ann.predict(api_name="/batch_status"))["running"]:
        time.sleep(0.1)
    assert status["report"]["skipped"] == 4 and status["report"]["started"] == 0
    with pytest.raises(Exception, match="no batch is running"):
        ann.predict(api_name="/batch_stop")


def test_a_batch_stops_and_resumes(tmp_path):
    """Stop mid-run: what was in flight is saved as cancelled; resume finishes it."""
    from startui.ui.dataset_actions import DatasetActions
    from startui.ui.studio import Services

    async def main() -> None:
        with Store(f"sqlite:///{tmp_path / 's.sqlite'}") as store:
            store.upsert_problems(rft_problems(3))
            services = Services(store, pool_size=2,
                                backend_factory=lambda s: rft_backend(delay=0.02))
            actions = DatasetActions(services)
            try:
                await actions.start_batch("me", {"run": "s1", "samples": 2, "rounds": 1,
                                                 "concurrency": 2, "backend": "scripted",
                                                 "score": False})
                while actions.job.report is None or actions.job.report.done < 1:
                    await asyncio.sleep(0.02)
                actions.stop_batch("me")
                await actions.job.wait(30)
                stopped = actions.job.status()
                assert stopped["report"]["interrupted"] and not stopped["running"]
                assert "stopped" in render.batch_html(stopped)
                await actions.start_batch("me", None)  # resume
                await actions.job.wait(60)
                done = actions.job.report
                assert done.skipped + done.finished == 6 and not done.interrupted
                assert done.skipped >= 1 and done.resumed == stopped["report"]["cancelled"]
                assert store.count_trajectories(run_id="s1") == 6
            finally:
                await services.close()

    asyncio.run(main())


def test_a_public_deployments_anonymous_visitor_gets_nothing(tmp_path):
    from gradio_client import Client

    from startui.ui.app import build_app, launch, open_store
    from startui.ui.deployment import Choice, Deployment
    from startui.ui.studio import Services

    store = open_store(f"sqlite:///{tmp_path / 'p.sqlite'}")
    seed(store)
    services = Services(store, pool_size=1, backend_factory=lambda s: rft_backend(),
                        deployment=Deployment(public=True, choices=[Choice("Tour", "tour")]))
    demo = build_app(services)
    _, url, _ = launch(demo, prevent_thread_lock=True, quiet=True)
    try:
        anon = Client(url, verbose=False)
        for args, api in (((RUN, {}), "/dataset_export"), ((RUN, {}), "/dataset_preview"),
                          (("c", {}), "/campaign_create"), (({"run": "x"}, ), "/batch_start"),
                          ((), "/users_list"), ((), "/batch_status")):
            with pytest.raises(Exception, match="log in"):
                anon.predict(*args, api_name=api)
        assert decisions.undo(store, "ann") is None and store.list_campaigns() == []
    finally:
        demo.close()


def test_the_selection_says_the_same_in_the_terminal_and_the_tab_escaped_for_markdown():
    from startui.rft.generate import clock
    from startui.rft.select import SelectionReport
    from startui.ui.dataset_render import selection_markdown

    report = SelectionReport("start", trajectories=9, considered=8, selected=3, problems=4,
                             problems_selected=3, dropped={"wrong answer": 5},
                             rule_hits={"repetition": 2, "tool_cap": 1},
                             overrides={"repetition": 1}, people={"camp*1": 4})
    text, page = report.summary(), selection_markdown(report)
    for line in ("rule hits: repetition 2, tool_cap 1",
                 "kept by a reviewer's acceptance: 1 repetition",
                 "reviewed in campaigns: camp*1 4"):
        assert line in text
    assert "- rule hits: repetition 2, tool&#95;cap 1" in page
    assert "- reviewed in campaigns: camp&#42;1 4" in page and "camp*1" not in page
    assert (clock(None), clock(65), clock(3725)) == ("--:--", "1:05", "1:02:05")
