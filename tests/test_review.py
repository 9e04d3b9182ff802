"""Review logic against a real SQLite store and a real kernel: revisions and diffs, stale outputs,
step labels in both modes, decisions and undo, conflicts, rule-based bulk accept, users."""

from __future__ import annotations

import sqlite3

import pytest

from startui.answers import SCORER
from startui.review import decisions, edits, guide, labels, users
from startui.review.decisions import StaleOutputsBlock
from startui.review.session import ReviewSession, load_item
from startui.store import ConflictError, Store
from startui.store.queue import QueueFilter
from startui.trajectory import Problem, Segment, Trajectory


def make(store: Store, i: int = 0, *, correct: bool | None = None, run: str = "r1",
         code: str = "print(2+2)", output: str = "4") -> str:
    t = Trajectory(problem=Problem(f"What is 2+2? ({i})", answer="4"), prompt="p",
                   status="finished", settings={"run_id": run},
                   created_at=f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}+00:00",
                   segments=[Segment("think", "Let me compute."), Segment("code", code),
                             Segment("output", output, "kernel"),
                             Segment("answer", f"So \\boxed{{{output}}}.")])
    store.save_trajectory(t)
    if correct is not None:
        store.add_score(t.id, scorer=SCORER, correct=correct,
                        detail={"answer": output, "extracted_by": "boxed", "reference": "4"})
    return t.id


@pytest.fixture
def store(tmp_path):
    with Store(f"sqlite:///{tmp_path / 'review.sqlite'}") as s:
        yield s


# --- edits, diffs, stale outputs ---------------------------------------------------------------

async def test_an_edit_is_a_revision_and_its_diff_shows_what_changed(store, pool):
    tid = make(store)
    traj, v = store.load_trajectory_versioned(tid)
    edited = edits.set_text(traj.segments, 0, "Let me compute carefully.")
    result = await edits.save_edit(store, pool, tid, edited, expected_version=v, editor="ann")
    assert result.version == v + 1 and not result.reran  # no code changed: nothing re-run
    revs = store.list_revisions(tid)
    assert [r.editor for r in revs] == [None, "ann"]  # the model's original is kept
    assert revs[0].segments[0].text == "Let me compute."
    (d,) = edits.diff(revs[0].segments, revs[1].segments)
    assert (d.kind, d.change, d.position) == ("think", "changed", 0)
    assert "<del>compute.</del><ins>compute carefully.</ins>" in d.html


def test_diff_sees_deleted_and_added_segments_and_escapes_html():
    a = [Segment("think", "x"), Segment("code", "print(1)"), Segment("output", "1", "kernel")]
    b = edits.add_hint(edits.delete_segment(a, 0), 1, "Check with <b>bigger</b> n.")
    changes = {(d.kind, d.change) for d in edits.diff(a, b)}
    assert changes == {("think", "deleted"), ("hint", "added")}
    added = next(d for d in edits.diff(a, b) if d.change == "added")
    assert "&lt;b&gt;" in added.html and "<b>" not in added.html


async def test_edited_code_flags_stale_outputs_and_the_new_output_clears_them(store, pool):
    tid = make(store, correct=True)
    traj, v = store.load_trajectory_versioned(tid)
    edited = edits.set_text(traj.segments, 1, "print(2+3)")
    result = await edits.save_edit(store, pool, tid, edited, expected_version=v, editor="ann")
    assert result.reran
    (stale,) = result.stale
    assert (stale.position, stale.stored, stale.fresh, stale.code_position) == (2, "4", "5", 1)
    assert edits.stale_outputs(store, tid) == [stale]
    with pytest.raises(StaleOutputsBlock, match=r"1 output \(segment 2\) no longer matches"):
        decisions.decide(store, tid, reviewer="ann", decision="accepted")
    fixed = edits.take_fresh_output(edited, stale)
    again = await edits.save_edit(store, pool, tid, fixed, expected_version=result.version,
                                  editor="ann")
    assert again.reran and again.stale == [] and edits.stale_outputs(store, tid) == []
    decisions.decide(store, tid, reviewer="ann", decision="accepted")
    assert store.trajectory_summary(tid).review_status == "accepted"


async def test_accepting_over_stale_outputs_needs_a_reason_which_is_kept(store, pool):
    tid = make(store)
    traj, v = store.load_trajectory_versioned(tid)
    await edits.save_edit(store, pool, tid, edits.set_text(traj.segments, 1, "print(7)"),
                          expected_version=v, editor="ann")
    review = decisions.decide(store, tid, reviewer="ann", decision="accepted",
                              override_reason="the output is irrelevant to the answer")
    assert review.detail["stale_override"] == "the output is irrelevant to the answer"


async def test_an_error_in_edited_code_is_a_stale_output_with_its_error(store, pool):
    tid = make(store)
    traj, v = store.load_trajectory_versioned(tid)
    r = await edits.save_edit(store, pool, tid, edits.set_text(traj.segments, 1, "print(1/0)"),
                              expected_version=v, editor="ann")
    assert r.stale[0].error == "ZeroDivisionError" and "ZeroDivisionError" in r.stale[0].fresh


async def test_an_edit_elsewhere_keeps_the_stale_flags_at_their_new_places(store, pool):
    tid = make(store)
    traj, v = store.load_trajectory_versioned(tid)
    first = await edits.save_edit(store, pool, tid, edits.set_text(traj.segments, 1, "print(5)"),
                                  expected_version=v, editor="ann")
    assert [s.position for s in first.stale] == [2]
    prose = edits.delete_segment(edits.set_text(
        store.load_trajectory(tid).segments, 3, "So \\boxed{5}."), 0)  # no code or output touched
    second = await edits.save_edit(store, pool, tid, prose, expected_version=first.version,
                                   editor="ann")
    assert not second.reran  # nothing to run again: the flags are carried, moved up by one
    (stale,) = edits.stale_outputs(store, tid)
    assert (stale.position, stale.code_position, stale.stored, stale.fresh) == (1, 0, "4", "5")
    with pytest.raises(StaleOutputsBlock):
        decisions.decide(store, tid, reviewer="ann", decision="accepted")
    fixed = edits.take_fresh_output(prose, stale)
    assert fixed[1].text == "5" and prose[1].text == "4"  # a copy: the input is untouched
    await edits.save_edit(store, pool, tid, fixed, expected_version=second.version, editor="ann")
    assert edits.stale_outputs(store, tid) == []


async def test_the_scratch_folder_of_another_kernel_is_not_a_change(store, pool):
    tid = make(store, code="import os\nprint(os.getcwd())",
               output="/tmp/startui-work-0ld_k3rnel")
    traj, v = store.load_trajectory_versioned(tid)
    edited = edits.set_text(traj.segments, 1, "import os\nprint(os.getcwd())  # where am I")
    result = await edits.save_edit(store, pool, tid, edited, expected_version=v, editor="ann")
    assert result.reran and result.stale == []


async def test_a_second_editor_is_refused_with_who_and_when(store, pool):
    tid = make(store)
    traj, v = store.load_trajectory_versioned(tid)
    mine = edits.set_text(traj.segments, 0, "ann's words")
    theirs = edits.set_text(traj.segments, 0, "bob's words")
    await edits.save_edit(store, pool, tid, mine, expected_version=v, editor="ann")
    with pytest.raises(ConflictError, match="last edited by ann at"):
        await edits.save_edit(store, pool, tid, theirs, expected_version=v, editor="bob")
    assert theirs[0].text == "bob's words"  # nothing typed is lost
    assert store.load_trajectory(tid).segments[0].text == "ann's words"


# --- step labels -------------------------------------------------------------------------------

def test_step_labels_per_step_and_unlabelled_is_not_zero(store):
    tid = make(store)
    labels.label_steps(store, tid, "ann", {0: 1, 1: 0})
    assert store.step_labels(tid) == {"ann": {0: 1, 1: 0}}
    labels.label_steps(store, tid, "ann", {1: None, 2: -1})  # clear one, set another
    assert store.step_labels(tid) == {"ann": {0: 1, 2: -1}}
    with pytest.raises(ValueError, match="-1, 0 or \\+1"):
        labels.label_steps(store, tid, "ann", {0: 2})
    with pytest.raises(ValueError, match="no segment 9"):
        labels.label_steps(store, tid, "ann", {9: 1})


def test_first_error_mode_labels_the_steps_before_and_leaves_the_rest(store):
    tid = make(store)
    got = labels.label_first_error(store, tid, "ann", 2)
    assert got == {0: 1, 1: 1, 2: -1, 3: None}
    assert store.step_labels(tid)["ann"] == {0: 1, 1: 1, 2: -1}


async def test_labels_belong_to_a_revision(store, pool):
    tid = make(store)
    traj, v = store.load_trajectory_versioned(tid)
    labels.label_steps(store, tid, "ann", {0: 1})
    await edits.save_edit(store, pool, tid, edits.set_text(traj.segments, 0, "new"),
                          expected_version=v, editor="ann")
    assert store.step_labels(tid) == {}  # the new revision starts unlabelled
    assert store.step_labels(tid, version=v) == {"ann": {0: 1}}


# --- decisions, undo, bulk ---------------------------------------------------------------------

def test_a_decision_records_who_what_and_which_version(store):
    tid = make(store)
    v = store.trajectory_summary(tid).version
    r = decisions.decide(store, tid, reviewer="ann", decision="rejected", score=2,
                         labels=["flawed reasoning"], comment="luck", expected_version=v)
    assert (r.reviewer, r.decision, r.score, r.labels, r.notes, r.trajectory_version) == (
        "ann", "rejected", 2.0, ["flawed reasoning"], "luck", v)
    with pytest.raises(ValueError, match="unknown label"):
        decisions.decide(store, tid, reviewer="ann", decision="accepted", labels=["nice"])
    with pytest.raises(ValueError, match="1 to 5"):
        decisions.decide(store, tid, reviewer="ann", decision="accepted", score=6)


def test_undo_brings_the_status_back_but_not_over_someone_elses_later_decision(store):
    a, b = make(store, 1), make(store, 2)
    decisions.decide(store, a, reviewer="ann", decision="accepted")
    decisions.decide(store, a, reviewer="bob", decision="rejected")
    decisions.decide(store, b, reviewer="ann", decision="skipped")
    assert decisions.undo(store, "ann").trajectory_id == b
    assert store.trajectory_summary(b).review_status == "pending"
    assert decisions.undo(store, "ann").trajectory_id == a
    assert store.trajectory_summary(a).review_status == "rejected"  # bob's stands
    assert decisions.undo(store, "ann") is None
    assert [r.undone_at is not None for r in store.list_reviews(a)] == [True, False]


def test_accept_by_rule_takes_only_the_runs_rule_correct_pending_ones(store):
    good = [make(store, i, correct=True) for i in range(3)]
    wrong = make(store, 10, correct=False)
    unscored = make(store, 11)
    other_run = make(store, 12, correct=True, run="r2")
    decided = make(store, 13, correct=True)
    decisions.decide(store, decided, reviewer="bob", decision="rejected")
    assert decisions.decide_by_rule(store, runs=["r1"], reviewer="ann") == 3
    status = {t: store.trajectory_summary(t).review_status
              for t in [*good, wrong, unscored, other_run, decided]}
    assert [status[t] for t in good] == ["accepted"] * 3
    assert (status[wrong], status[unscored], status[other_run], status[decided]) == (
        "pending", "pending", "pending", "rejected")


# --- the reviewer's session --------------------------------------------------------------------

def test_the_session_prefetches_decides_and_undoes(store):
    ids = [make(store, i, correct=i % 2 == 0) for i in range(5)]
    s = ReviewSession(store, "ann")
    first = s.set_filter(QueueFilter())
    assert first.id == ids[0] and s.upcoming.id == ids[1]
    nxt = s.decide("accepted")
    assert nxt.id == ids[1] and s.upcoming.id == ids[2]
    back = s.undo()
    assert back.id == ids[0] and back.review_status == "pending" and s.upcoming.id == ids[1]
    s.set_filter(QueueFilter(verdict="wrong"))
    assert s.current.id == ids[1] and s.upcoming.id == ids[3]
    assert s.decide("rejected").id == ids[3] and s.upcoming is None
    assert s.decide("rejected") is None  # the queue is done
    assert s.progress()["mine"] == 2


def test_advance_shows_the_prefetched_item_and_notices_a_decision_made_meanwhile(store):
    ids = [make(store, i) for i in range(3)]
    s = ReviewSession(store, "ann")
    s.set_filter(QueueFilter())
    prefetched = s.upcoming
    assert s.decide("accepted") is prefetched  # no second load: it was ready
    decisions.decide(store, ids[2], reviewer="bob", decision="rejected")  # bob was quicker
    item = s.advance()
    assert item.id == ids[2] and item.review_status == "rejected"
    assert [r.reviewer for r in item.reviews] == ["bob"]


def test_open_takes_any_id_as_a_plain_string(store):
    tid = make(store, correct=False)
    item = ReviewSession(store, "ann").open(f" {tid} ")
    assert (item.id, item.answer, item.reference, item.correct, item.extracted_by) == (
        tid, "4", "4", False, "boxed")
    assert load_item(store, tid, "ann").version == item.version


def test_paging_loses_nothing_and_repeats_nothing(store):
    ids = {make(store, i) for i in range(25)}
    seen, cursor = [], None
    while True:
        page = store.queue_page(QueueFilter(), after=cursor, limit=4)
        seen += [s.id for s in page.items]
        if page.cursor is None:
            break
        cursor = page.cursor
    assert len(seen) == len(set(seen)) == 25 and set(seen) == ids


# --- people ------------------------------------------------------------------------------------

def test_passwords_are_stored_salted_and_hashed(store, tmp_path):
    users.add_user(store, "ann", "correct horse", role="admin")
    users.add_user(store, "bob", "correct horse")
    assert users.authenticate(store, "ann", "correct horse")
    assert not users.authenticate(store, "ann", "wrong") and not users.authenticate(store, "x", "")
    db = store.url.removeprefix("sqlite:///")
    dump = "\n".join(sqlite3.connect(db).iterdump())
    assert "correct horse" not in dump
    ann, bob = store.password_hash_of("ann"), store.password_hash_of("bob")
    assert ann.startswith("scrypt$") and ann != bob  # a salt each
    with pytest.raises(ValueError, match="user name"):
        users.add_user(store, "a b", "pw")


def test_a_viewer_may_look_but_not_touch(store):
    tid = make(store)
    users.add_user(store, "vic", "pw", role="viewer")
    users.add_user(store, "ann", "pw", role="admin")
    for act in (lambda: decisions.decide(store, tid, reviewer="vic", decision="accepted"),
                lambda: labels.label_steps(store, tid, "vic", {0: 1}),
                lambda: labels.label_first_error(store, tid, "vic", 1),
                lambda: decisions.undo(store, "vic"),
                lambda: guide.set_guidelines(store, "x", by="vic"),
                lambda: decisions.decide(store, tid, reviewer="stranger", decision="accepted")):
        with pytest.raises(users.PermissionDenied, match="needs the role"):
            act()
    assert store.list_reviews(tid) == [] and store.step_labels(tid) == {}
    guide.set_guidelines(store, "# Ours", by="ann")
    assert guide.guidelines(store) == "# Ours"
    assert guide.set_label_set(store, ["good", "bad", "good"], by="ann") == ["good", "bad"]


async def test_a_viewer_may_not_edit(store, pool):
    tid = make(store)
    users.add_user(store, "vic", "pw", role="viewer")
    traj, v = store.load_trajectory_versioned(tid)
    with pytest.raises(users.PermissionDenied, match="vic is a viewer: edit needs the role"):
        await edits.save_edit(store, pool, tid, edits.set_text(traj.segments, 1, "print(5)"),
                              expected_version=v, editor="vic")
    assert store.trajectory_summary(tid).version == v and store.list_revisions(tid) == []


def test_verify_password_and_roles(store):
    stored = users.hash_password("pw")
    assert users.verify_password("pw", stored) and not users.verify_password("pW", stored)
    assert not users.verify_password("pw", "garbage") and not users.verify_password("pw", None)
    assert users.role_of(store, "anyone") == "reviewer"  # nobody configured: everyone reviews
    users.add_user(store, "hf-user")  # no password: logs in through Hugging Face
    assert not users.auth_required(store) and users.role_of(store, "anyone") == "viewer"
    users.add_user(store, "ann", "pw", role="admin")
    assert users.auth_required(store) and users.role_of(store, "ann") == "admin"


def test_with_nobody_configured_the_os_user_reviews(store, monkeypatch):
    monkeypatch.setenv("STARTUI_REVIEWER", "laptop-person")
    assert users.os_reviewer() == "laptop-person" and not users.auth_required(store)
    tid = make(store)
    decisions.decide(store, tid, reviewer=users.os_reviewer(), decision="accepted")


# --- the same on PostgreSQL --------------------------------------------------------------------

async def test_conflict_and_undo_on_postgresql(pg_url, pool):
    with Store(pg_url) as store:
        tid = make(store)
        traj, v = store.load_trajectory_versioned(tid)
        await edits.save_edit(store, pool, tid, edits.set_text(traj.segments, 0, "a"),
                              expected_version=v, editor="ann")
        with pytest.raises(ConflictError, match="ann"):
            await edits.save_edit(store, pool, tid, edits.set_text(traj.segments, 0, "b"),
                                  expected_version=v, editor="bob")
        decisions.decide(store, tid, reviewer="ann", decision="accepted",
                         override_reason="n/a")
        assert decisions.undo(store, "ann").trajectory_id == tid
        assert store.trajectory_summary(tid).review_status == "pending"
