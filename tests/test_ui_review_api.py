"""The review actions over the API (gradio_client) against a launched app with users and a login:
trajectory ids are plain strings, and the API is held to the page's permission checks."""

from __future__ import annotations

import json

import pytest

from startui.answers import SCORER
from startui.trajectory import Problem, Segment, Trajectory

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def scripted(i: int) -> Trajectory:
    return Trajectory(
        problem=Problem(question=f"What is {i} + 2 + 2?", answer=str(i + 4)), prompt="p",
        status="finished",
        segments=[Segment("think", f"Let me compute {i} + 2 + 2 with Python."),
                  Segment("code", f"print({i} + 2 + 2)"),
                  Segment("output", str(i + 4), "kernel"),
                  Segment("answer", f"So \\boxed{{{i + 3}}}.", meta={"boxed": str(i + 3)})])


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from gradio_client import Client

    from startui.review import users
    from startui.ui.app import build_app, launch, open_store
    from startui.ui.studio import Services

    db = tmp_path_factory.mktemp("review-api") / "r.sqlite"
    store = open_store(f"sqlite:///{db}")
    ids = []
    for i in range(3):
        t = scripted(i)
        store.save_trajectory(t)
        store.add_score(t.id, scorer=SCORER, correct=False,
                        detail={"answer": str(i + 3), "extracted_by": "boxed",
                                "reference": str(i + 4)})
        ids.append(t.id)
    users.add_user(store, "ann", "ann-pw", role="reviewer")
    users.add_user(store, "vic", "vic-pw", role="viewer")
    demo = build_app(Services(store, pool_size=1))
    _, url, _ = launch(demo, prevent_thread_lock=True, quiet=True)

    def client(name: str) -> Client:
        return Client(url, auth=(name, f"{name}-pw"), verbose=False)

    yield client, ids, store
    demo.close()


def test_a_fresh_client_opens_a_trajectory_by_its_id(app):
    client, ids, _ = app
    ann = client("ann")  # nothing ran before in this session: no /recent, no queue
    item = ann.predict(ids[1], api_name="/review_open")
    assert item["id"] == ids[1] and item["version"] >= 1
    assert (item["answer"], item["reference"], item["correct"], item["extracted_by"]) == \
        ("4", "5", False, "boxed")
    assert [s["kind"] for s in item["segments"]] == ["think", "code", "output", "answer"]
    # the live tab's /open takes a plain id too
    chat, status, _ = client("ann").predict(ids[2], api_name="/open")
    assert ids[2][:12] in status and "What is 2 + 2 + 2?" in json.dumps(chat)
    with pytest.raises(Exception, match="no trajectory"):
        ann.predict("nope", api_name="/review_open")


def test_next_decide_and_undo(app):
    client, ids, store = app
    ann = client("ann")
    first = ann.predict("pending", "wrong", "any", "", "any", "any", "any", "any", "", "oldest",
                        0, api_name="/review_next")
    assert first is not None and first["correct"] is False and first["id"] in ids
    tid = first["id"]
    review = ann.predict(tid, "accepted", 4, ["correct"], "clean tool use", "",
                         api_name="/review_decide")
    assert (review["decision"], review["reviewer"], review["score"]) == ("accepted", "ann", 4)
    assert review["trajectory_version"] == first["version"]
    assert ann.predict(tid, api_name="/review_open")["review_status"] == "accepted"
    undone = ann.predict(api_name="/review_undo")
    assert undone["trajectory_id"] == tid
    assert ann.predict(tid, api_name="/review_open")["review_status"] == "pending"
    with pytest.raises(Exception, match="label"):
        ann.predict(tid, "accepted", None, "no such label", "", "", api_name="/review_decide")


def test_step_labels(app):
    client, ids, _ = app
    ann = client("ann")
    out = ann.predict(ids[0], json.dumps({"0": 1, "1": 1, "2": -1}), api_name="/review_label")
    assert out["labels"] == {"0": 1, "1": 1, "2": -1}
    out = ann.predict(ids[0], [[2, 0], [1, None]], api_name="/review_label")
    assert out["labels"] == {"0": 1, "2": 0}  # cleared is unlabelled, not 0
    assert ann.predict(ids[0], api_name="/review_open")["my_labels"] == {"0": 1, "2": 0}


def test_an_edit_reruns_the_code_and_a_stale_version_is_refused(app):
    client, ids, _ = app
    ann = client("ann")
    item = ann.predict(ids[2], api_name="/review_open")
    segments = item["segments"]
    segments[1]["text"] = "print(10 * 10)"
    out = ann.predict(ids[2], json.dumps(segments), item["version"], api_name="/review_edit")
    assert out["version"] == item["version"] + 1 and out["reran"]
    assert [(s["position"], s["stored"], s["fresh"].strip()) for s in out["stale"]] == \
        [(2, "6", "100")]
    assert ann.predict(ids[2], api_name="/review_open")["stale"][0]["position"] == 2
    with pytest.raises(Exception, match="accept with a reason|no longer match"):
        ann.predict(ids[2], "accepted", None, [], "", "", api_name="/review_decide")
    review = ann.predict(ids[2], "accept", None, [], "", "the new code is what I meant",
                         api_name="/review_decide")
    assert review["decision"] == "accepted"
    assert review["detail"]["stale_override"] == "the new code is what I meant"
    segments[0]["text"] = "A second edit from a stale copy."
    with pytest.raises(Exception, match=r"changed since.*ann"):
        ann.predict(ids[2], json.dumps(segments), item["version"], api_name="/review_edit")


def test_a_viewer_may_look_but_not_decide(app):
    client, ids, _ = app
    vic = client("vic")
    assert vic.predict(ids[0], api_name="/review_open")["id"] == ids[0]
    with pytest.raises(Exception, match="vic"):
        vic.predict(ids[0], "accepted", None, [], "", "", api_name="/review_decide")
    with pytest.raises(Exception, match="vic"):
        vic.predict(ids[0], '{"0": 1}', api_name="/review_label")


def test_without_a_login_nothing_is_served(app):
    from gradio_client import Client

    client, _, _ = app
    url = client("ann").src
    with pytest.raises(Exception):  # noqa: B017, PT011 - gradio_client's own error types vary
        Client(url, verbose=False).predict("x", api_name="/review_open")


def test_with_no_users_the_reviewer_is_the_os_user(tmp_path):
    from startui.review import users
    from startui.store import Store
    from startui.ui import auth

    with Store(f"sqlite:///{tmp_path / 'alone.sqlite'}") as store:
        me = users.os_reviewer()
        assert auth.reviewer(store, None) == me
        assert auth.auth_for(store) is None  # no login page on a laptop
        line = auth.who_line(store, me, logged_in=False)
        assert f"reviewing as **{me}**" in line and "python -m startui users add NAME" in line
        users.add_user(store, "ann", "pw")
        assert auth.auth_for(store)("ann", "pw") and not auth.auth_for(store)("ann", "nope")
        assert "(reviewer)" in auth.who_line(store, "ann", logged_in=True)
