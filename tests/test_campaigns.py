"""Review campaigns against real SQLite and PostgreSQL stores: what a campaign takes, the hand-out
(overlap, leases that run out, skips, undo) alone and under concurrent reviewers, progress,
adjudication, the precedence selection follows (adjudication, consensus, rules), who may do
what, and the command line."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text

from startui.answers import SCORER
from startui.cli import main
from startui.review import campaigns, decisions, edits, labels, users
from startui.review.users import PermissionDenied
from startui.rft.export import ExportConfig, export
from startui.rft.select import SelectConfig, select
from startui.store import ConflictError, Store
from startui.store.queue import QueueFilter
from startui.trajectory import Problem, Segment, Trajectory

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
TEAM = {"root": "admin", "ann": "reviewer", "bob": "reviewer", "cat": "reviewer",
        "dan": "reviewer", "carol": "reviewer", "vic": "viewer"}


def traj(store: Store, i: int, *, problem: str | None = None, correct: bool | None = None,
         run: str = "r1", human_hint: bool = False) -> str:
    segs = [Segment("think", f"Let me compute ({i}).")]
    if human_hint:
        segs.append(Segment("hint", "Use Python.", "human"))
    segs += [Segment("code", "print(2+2)"), Segment("output", "4", "kernel"),
             Segment("answer", "So \\boxed{4}.")]
    pid = problem or f"p{i}"
    t = Trajectory(problem=Problem(f"What is 2+2? ({pid})", answer="4", id=pid), prompt="p",
                   status="finished", settings={"run_id": run, "mode": "hinted"}, segments=segs,
                   created_at=f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}+00:00")
    store.save_trajectory(t)
    if correct is not None:
        store.add_score(t.id, scorer=SCORER, correct=correct,
                        detail={"answer": "4", "extracted_by": "boxed", "reference": "4"})
    return t.id


def add_team(store: Store) -> None:
    for name, role in TEAM.items():
        users.add_user(store, name, None, role=role)


@pytest.fixture
def store(tmp_path):
    with Store(f"sqlite:///{tmp_path / 'campaigns.sqlite'}") as s:
        add_team(s)
        yield s


def campaign(store: Store, n: int = 6, name: str = "c", **kw) -> tuple[campaigns.Campaign,
                                                                       list[str]]:
    ids = [traj(store, i) for i in range(n)]
    kw.setdefault("reviewers", ["ann", "bob", "cat"])
    c = campaigns.create_campaign(store, name, by="root", filter=QueueFilter(run_id="r1"), **kw)
    return c, ids


# --- making a campaign -------------------------------------------------------------------------

def test_a_campaign_takes_what_the_filter_picks_at_most_k_per_problem(store):
    a0 = traj(store, 0, problem="a", correct=True)
    a1 = traj(store, 1, problem="a", correct=True)  # a's second: over the cap of one
    b0 = traj(store, 2, problem="b", correct=True, human_hint=True)
    traj(store, 3, problem="c", correct=False)  # wrong: not picked
    traj(store, 4, problem="d", correct=True, run="r2")  # other run
    b1 = traj(store, 5, problem="b", correct=True)
    c = campaigns.create_campaign(
        store, "double", by="root", filter=QueueFilter(run_id="r1", verdict="correct"),
        per_problem=1, overlap=2, reviewers=["ann", "bob", "ann"], adjudicator="carol")
    assert (c.name, c.items, c.overlap, c.reviewers, c.adjudicator, c.per_problem) == (
        "double", 2, 2, ["ann", "bob"], "carol", 1)
    assert c.lease_seconds == 15 * 60 and c.created_by == "root" and c.status == "open"
    assert c.queue_filter() == QueueFilter(run_id="r1", verdict="correct")
    _, items = store.campaign_votes("double")
    assert list(items) == [a0, b0]  # the filter's order, the first per problem
    hinted = campaigns.create_campaign(store, "hinted", by="root", reviewers=["ann"],
                                       overlap=1, filter=QueueFilter(human_hint=True))
    assert list(store.campaign_votes(hinted.id)[1]) == [b0]
    two = campaigns.create_campaign(store, "two", by="root", reviewers=["ann", "bob"],
                                    filter=QueueFilter(run_id="r1", verdict="correct"),
                                    per_problem=2)
    assert list(store.campaign_votes(two.id)[1]) == [a0, a1, b0, b1]
    assert [c.name for c in campaigns.list_campaigns(store)] == ["double", "hinted", "two"]


def test_creating_checks_names_numbers_and_people(store):
    traj(store, 0)
    f = QueueFilter(run_id="r1")
    for kw, message in [
        ({"reviewers": ["ann"], "overlap": 2}, "an overlap of 2 needs at least 2 reviewers"),
        ({"reviewers": ["ann", "bob"], "overlap": 0}, "at least 1"),
        ({"reviewers": ["ann", "zed"]}, "no user 'zed'"),
        ({"reviewers": ["ann", "vic"]}, "vic is a viewer and cannot be a campaign's reviewer"),
        ({"reviewers": ["ann", "bob"], "adjudicator": "vic"}, "cannot be its adjudicator"),
        ({"reviewers": ["ann", "bob"], "per_problem": 0}, "per problem is at least 1"),
        ({"reviewers": ["ann", "bob"], "filter": QueueFilter(run_id="nope")},
         "the filter picks no trajectory"),
    ]:
        kw.setdefault("filter", f)
        with pytest.raises(ValueError, match=message):
            campaigns.create_campaign(store, "x", by="root", **kw)
    campaigns.create_campaign(store, "x", by="root", filter=f, reviewers=["ann", "bob"])
    with pytest.raises(ValueError, match="exists already"):
        campaigns.create_campaign(store, "x", by="root", filter=f, reviewers=["ann", "bob"])
    with pytest.raises(Exception, match="no review campaign 'y'; campaigns: x"):
        campaigns.next_item(store, "y", "ann")


def test_without_users_campaigns_say_to_add_them(tmp_path):
    with Store(f"sqlite:///{tmp_path / 'solo.sqlite'}") as s:
        traj(s, 0)
        with pytest.raises(PermissionDenied, match="add an admin and the reviewers first"):
            campaigns.create_campaign(s, "x", by="me", reviewers=["me"], overlap=1)


# --- handing out -------------------------------------------------------------------------------

def test_overlap_two_hands_each_item_to_two_people_never_twice_to_one(store):
    c, ids = campaign(store, 3)
    assert campaigns.next_item(store, c, "ann") == ids[0]
    assert campaigns.next_item(store, c, "ann") == ids[0]  # a reload: the same item, held
    assert campaigns.next_item(store, c, "bob") == ids[0]  # the second slot
    assert campaigns.next_item(store, c, "cat") == ids[1]  # ids[0] is full
    assert campaigns.prefetch_item(store, c, "ann") == ids[1]  # the one loaded in advance
    assert campaigns.held_items(store, c, "ann") == [ids[0], ids[1]]
    decisions.decide(store, ids[0], reviewer="ann", decision="accepted", campaign=c)
    assert campaigns.next_item(store, c, "ann") == ids[1]
    decisions.decide(store, ids[0], reviewer="bob", decision="accepted", campaign="c")
    assert campaigns.next_item(store, c, "bob") == ids[2]  # ids[1]: ann and cat hold it
    decisions.decide(store, ids[1], reviewer="ann", decision="rejected", campaign=c)
    decisions.decide(store, ids[1], reviewer="cat", decision="rejected", campaign=c)
    assert campaigns.next_item(store, c, "ann") == ids[2]
    decisions.decide(store, ids[2], reviewer="ann", decision="accepted", campaign=c)
    decisions.decide(store, ids[2], reviewer="bob", decision="accepted", campaign=c)
    assert [campaigns.next_item(store, c, r) for r in ("ann", "bob", "cat")] == [None] * 3
    votes = [r for t in ids for r in store.list_reviews(t)]
    assert all(r.campaign_id == c.id for r in votes) and len(votes) == 6
    assert [store.trajectory_summary(t).review_status for t in ids] == [
        "accepted", "rejected", "accepted"]  # consensus each time


def test_an_item_is_done_only_when_n_reviewers_decided(store):
    c, ids = campaign(store, 1)
    decisions.decide(store, ids[0], reviewer="ann", decision="accepted", campaign=c)
    assert store.trajectory_summary(ids[0]).review_status == "pending"  # 1 of 2: no word yet
    p = campaigns.progress(store, c)
    assert (p.items, p.done, p.started, p.untouched) == (1, 0, 1, 0)
    decisions.decide(store, ids[0], reviewer="bob", decision="accepted", campaign=c)
    p = campaigns.progress(store, c)
    assert (p.done, p.started, p.consensus, p.disputed) == (1, 0, 1, 0)
    with pytest.raises(ConflictError, match="already has its 2 reviewers"):
        decisions.decide(store, ids[0], reviewer="cat", decision="rejected", campaign=c)


def test_a_skip_passes_the_item_on_and_never_comes_back(store):
    c, ids = campaign(store, 2)
    assert campaigns.next_item(store, c, "ann") == ids[0]
    decisions.decide(store, ids[0], reviewer="ann", decision="skipped", campaign=c)
    assert campaigns.next_item(store, c, "ann") == ids[1]
    assert campaigns.next_item(store, c, "bob") == ids[0]
    assert campaigns.next_item(store, c, "cat") == ids[0]  # ann's slot went back to the pool
    p = campaigns.progress(store, c)
    assert p.reviewers["ann"]["skipped"] == 1 and p.reviewers["ann"]["remaining"] == 1


def test_leases_that_run_out_return_the_item_to_the_pool(store):
    c, ids = campaign(store, 3, overlap=1, reviewers=["ann", "bob"], lease_seconds=60)
    assert campaigns.next_item(store, c, "ann", now=T0) == ids[0]
    assert campaigns.next_item(store, c, "bob", now=T0) == ids[1]  # ann holds ids[0]
    decisions.decide(store, ids[1], reviewer="bob", decision="accepted", campaign=c,
                     now=T0 + timedelta(seconds=10))
    assert campaigns.next_item(store, c, "bob", now=T0 + timedelta(seconds=59)) == ids[2]
    # 61 s later ann's lease ran out: bob, done with nothing, gets ids[0] before ids[2] (his
    # own lease on ids[2] ran out too, and it comes back to him after)
    later = T0 + timedelta(seconds=61)
    assert store.held_campaign_items(c.id, "ann", now=later) == []
    assert campaigns.next_item(store, c, "bob", now=later + timedelta(seconds=60)) == ids[0]
    with pytest.raises(ConflictError, match="your lease ran out and someone else took it"):
        decisions.decide(store, ids[0], reviewer="ann", decision="accepted", campaign=c,
                         now=later + timedelta(seconds=61))
    assert campaigns.next_item(store, c, "ann", now=later + timedelta(seconds=62)) == ids[2]


def test_a_late_decision_takes_its_slot_back_when_it_is_still_free(store):
    c, ids = campaign(store, 2, overlap=1, reviewers=["ann", "bob"], lease_seconds=60)
    assert campaigns.next_item(store, c, "ann", now=T0) == ids[0]
    later = T0 + timedelta(minutes=5)
    assert campaigns.next_item(store, c, "ann", now=later) == ids[0]  # back to ann, renewed
    review = decisions.decide(store, ids[0], reviewer="ann", decision="rejected", campaign=c,
                              now=later + timedelta(minutes=5))
    assert review.campaign_id == c.id
    assert campaigns.progress(store, c).done == 1


def test_undo_gives_the_reviewer_the_item_back(store):
    c, ids = campaign(store, 2)
    tid = campaigns.next_item(store, c, "ann")
    decisions.decide(store, tid, reviewer="ann", decision="accepted", campaign=c)
    decisions.decide(store, tid, reviewer="bob", decision="rejected", campaign=c)
    assert store.trajectory_summary(tid).review_status == "needs_review"  # they disagree
    assert decisions.undo(store, "bob").trajectory_id == tid
    assert store.trajectory_summary(tid).review_status == "pending"  # 1 of 2 again
    assert campaigns.held_items(store, c, "bob") == [tid]  # back on bob's screen
    assert campaigns.next_item(store, c, "bob") == tid
    decisions.decide(store, tid, reviewer="bob", decision="accepted", campaign=c)
    assert store.trajectory_summary(tid).review_status == "accepted"


def test_release_gives_an_item_back_at_once(store):
    c, ids = campaign(store, 1, overlap=1, reviewers=["ann", "bob"])
    assert campaigns.next_item(store, c, "ann") == ids[0]
    assert campaigns.next_item(store, c, "bob") is None
    assert campaigns.release_item(store, c, "ann", ids[0])
    assert not campaigns.release_item(store, c, "ann", ids[0])
    assert campaigns.next_item(store, c, "bob") == ids[0]


def test_progress_per_campaign_and_per_reviewer(store):
    c, ids = campaign(store, 4)
    for r, d in (("ann", "accepted"), ("bob", "rejected")):
        decisions.decide(store, ids[0], reviewer=r, decision=d, campaign=c)
    for r in ("ann", "cat"):
        decisions.decide(store, ids[1], reviewer=r, decision="accepted", campaign=c)
    decisions.decide(store, ids[2], reviewer="cat", decision="accepted", campaign=c)
    campaigns.next_item(store, c, "bob")
    p = campaigns.progress(store, c)
    assert (p.items, p.done, p.started, p.untouched, p.leased) == (4, 2, 1, 1, 1)
    assert (p.consensus, p.disputed, p.adjudicated) == (1, 1, 0)
    assert p.reviewers == {
        "ann": {"decided": 2, "skipped": 0, "leased": 0, "remaining": 2},
        "bob": {"decided": 1, "skipped": 0, "leased": 1, "remaining": 2},
        "cat": {"decided": 2, "skipped": 0, "leased": 0, "remaining": 1}}
    campaigns.close_campaign(store, c, by="root")
    with pytest.raises(ValueError, match="closed"):
        campaigns.next_item(store, c, "ann")
    assert campaigns.close_campaign(store, c, by="root", reopen=True).status == "open"


# --- concurrency -------------------------------------------------------------------------------

def work_through(stores: dict[str, Store], name: str, *, now: datetime | None = None,
                 ) -> dict[str, list[str]]:
    """Every reviewer in its own thread pulls and decides until nothing is left for them."""
    got: dict[str, list[str]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(len(stores))

    def reviewer(who: str, store: Store) -> None:
        rng = random.Random(who)
        mine: list[str] = []
        try:
            start.wait()
            while (tid := campaigns.next_item(store, name, who, now=now)) is not None:
                mine.append(tid)
                decisions.decide(store, tid, reviewer=who, campaign=name, now=now,
                                 decision=rng.choice(["accepted", "rejected"]))
        except BaseException as e:  # noqa: BLE001 - reported by the test
            errors.append(e)
        got[who] = mine

    threads = [threading.Thread(target=reviewer, args=(w, s)) for w, s in stores.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return got


def assert_complete(store: Store, name: str, got: dict[str, list[str]], overlap: int) -> None:
    c, votes = store.campaign_votes(name)
    for who, mine in got.items():
        assert len(mine) == len(set(mine)), f"{who} was handed an item twice"
    holders = defaultdict(set)
    for who, mine in got.items():
        for tid in mine:
            holders[tid].add(who)
    assert set(holders) == set(votes), "an item was lost"
    assert all(len(h) == overlap for h in holders.values()), Counter(map(len, holders.values()))
    assert all(len({v.reviewer for v in vs}) == overlap == len(vs) for vs in votes.values())
    p = store.campaign_progress(name)
    assert (p.done, p.started, p.untouched, p.leased) == (c.items, 0, 0, 0)


@pytest.mark.parametrize("shared", [True, False], ids=["one store", "a store each"])
def test_concurrent_reviewers_on_sqlite(tmp_path, shared):
    """Four reviewers at once, overlap 2, 40 items: one Store (its single writer serializes
    every claim) or one Store per reviewer, like four processes (BEGIN IMMEDIATE does)."""
    url = f"sqlite:///{tmp_path / 'race.sqlite'}"
    with Store(url) as main_store:
        add_team(main_store)
        campaign(main_store, 40, name="race", reviewers=["ann", "bob", "cat", "dan"])
        names = ["ann", "bob", "cat", "dan"]
        stores = {w: main_store for w in names} if shared else {w: Store(url) for w in names}
        try:
            got = work_through(stores, "race")
        finally:
            for s in {id(s): s for s in stores.values()}.values():
                if s is not main_store:
                    s.close()
        assert_complete(main_store, "race", got, 2)
        assert sum(map(len, got.values())) == 80


@pytest.mark.postgres
def test_concurrent_reviewers_on_postgresql(pg_url):
    """Four reviewers, each with their own Store (connection pool, writer): real concurrent
    transactions, FOR UPDATE SKIP LOCKED on the candidates."""
    names = ["ann", "bob", "cat", "dan"]
    with Store(pg_url) as main_store:
        add_team(main_store)
        campaign(main_store, 40, name="race", reviewers=names)
        stores = {w: Store(pg_url) for w in names}
        try:
            got = work_through(stores, "race")
        finally:
            for s in stores.values():
                s.close()
        assert_complete(main_store, "race", got, 2)


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_abandoned_leases_are_not_lost_under_concurrency(db, request, tmp_path):
    """dan takes five items and walks away; once his leases ran out, three reviewers working at
    once finish everything, dan's five included, each by exactly two of them."""
    url = (f"sqlite:///{tmp_path / 'lost.sqlite'}" if db == "sqlite"
           else request.getfixturevalue("pg_url"))
    names = ["ann", "bob", "cat"]
    with Store(url) as main_store:
        add_team(main_store)
        c, ids = campaign(main_store, 12, name="lost", reviewers=[*names, "dan"],
                          lease_seconds=60)
        for k in range(1, 6):  # dan holds five leases, then goes home
            main_store.claim_campaign_item(c.id, "dan", hold=k, now=T0)
        assert main_store.held_campaign_items(c.id, "dan", now=T0) == ids[:5]
        stores = {w: main_store if db == "sqlite" else Store(url) for w in names}
        try:
            got = work_through(stores, "lost", now=T0 + timedelta(minutes=2))
        finally:
            for s in stores.values():
                if s is not main_store:
                    s.close()
        assert_complete(main_store, "lost", got, 2)
        assert main_store.campaign_progress(c.id, now=T0).reviewers["dan"]["decided"] == 0


@pytest.mark.postgres
def test_nobody_waits_on_an_item_someone_else_holds_postgresql(pg_url):
    """While another transaction holds the first item's row lock, a pull skips it at once."""
    with Store(pg_url) as store:
        add_team(store)
        c, ids = campaign(store, 3)
        engine = create_engine(pg_url)
        with engine.connect() as other:  # a transaction that holds the first item's row
            other.execute(text("SELECT id FROM campaign_items WHERE position = 0 FOR UPDATE"))
            got: list[str | None] = []
            t = threading.Thread(target=lambda: got.append(campaigns.next_item(store, c, "ann")))
            t.start()
            t.join(timeout=10)
            assert not t.is_alive(), "the pull waited on a locked item"
            assert got == [ids[1]]
            other.rollback()
        engine.dispose()
        assert campaigns.next_item(store, c, "bob") == ids[0]


@pytest.mark.postgres
def test_an_item_locked_by_a_claim_in_flight_is_not_nothing_left_postgresql(pg_url):
    """SKIP LOCKED skips an item another transaction is writing; when that was the last one, the
    pull tries again a moment later instead of saying "nothing left" — and gives up (None)
    after about a second if the lock is never let go."""
    with Store(pg_url) as store:
        add_team(store)
        c, ids = campaign(store, 1)
        engine = create_engine(pg_url)

        def pull_while_locked(hold_s: float) -> tuple[str | None, float]:
            """The pull's answer and how long it took, the only item locked for ``hold_s``."""
            got: list[tuple[str | None, float]] = []

            def pull() -> None:
                t0 = time.perf_counter()
                got.append((campaigns.next_item(store, c, "ann"), time.perf_counter() - t0))

            with engine.connect() as other:
                other.execute(text("SELECT id FROM campaign_items FOR UPDATE"))
                t = threading.Thread(target=pull)
                t.start()
                time.sleep(hold_s)
                other.rollback()
            t.join(timeout=10)
            return got[0]

        tid, took = pull_while_locked(0.05)
        assert tid == ids[0] and took >= 0.05  # it waited for the lock to go, then took it
        assert campaigns.release_item(store, c, "ann", ids[0])
        tid, took = pull_while_locked(3.0)
        assert tid is None and took < 3.0  # gave up while the lock was still held
        engine.dispose()


# --- adjudication ------------------------------------------------------------------------------

async def test_disagreements_are_listed_shown_side_by_side_and_settled(store):
    c, ids = campaign(store, 3, adjudicator="carol")
    tid = ids[0]
    traj0, v = store.load_trajectory_versioned(tid)
    # ann edits (a revision), labels the steps and accepts; bob labels and rejects
    await edits.save_edit(store, None, tid, edits.set_text(traj0.segments, 0, "Think harder."),
                          expected_version=v, editor="ann", note="clearer")
    v2 = store.trajectory_summary(tid).version
    labels.label_steps(store, tid, "ann", {0: 1, 1: 1})
    labels.label_steps(store, tid, "bob", {0: 1, 1: -1})
    decisions.decide(store, tid, reviewer="ann", decision="accepted", campaign=c, score=4,
                     labels=["good tool use"], comment="fine")
    decisions.decide(store, tid, reviewer="bob", decision="rejected", campaign=c, score=2)
    for r in ("ann", "bob"):  # ids[1]: they agree
        decisions.decide(store, ids[1], reviewer=r, decision="accepted", campaign=c)
    decisions.decide(store, ids[2], reviewer="ann", decision="rejected", campaign=c)  # 1 of 2
    todo = campaigns.needs_adjudication(store, c, by="carol")
    assert [(d.trajectory_id, d.votes) for d in todo] == [
        (tid, {"ann": "accepted", "bob": "rejected"})]
    view = campaigns.adjudication_view(store, c, tid, by="root")
    assert (view.state, view.review_status, view.version) == ("disputed", "needs_review", v2)
    ann, bob = view.sides
    assert (ann.reviewer, ann.decision, ann.score, ann.labels, ann.comment, ann.version) == (
        "ann", "accepted", 4.0, ["good tool use"], "fine", v2)
    assert ann.step_labels == {0: 1, 1: 1} and bob.step_labels == {0: 1, 1: -1}
    (edit,) = ann.edits
    assert (edit.version, edit.note) == (v2, "clearer")
    assert [(d.kind, d.change, d.before, d.after) for d in edit.diffs] == [
        ("think", "changed", "Let me compute (0).", "Think harder.")]
    assert bob.edits == [] and json.dumps(view.to_dict())
    review = campaigns.adjudicate(store, c, tid, "reject", by="carol", comment="bob is right")
    assert (review.decision, review.detail["adjudication"], review.campaign_id) == (
        "rejected", True, c.id)
    assert store.trajectory_summary(tid).review_status == "rejected"
    assert campaigns.needs_adjudication(store, c, by="root") == []
    settled = campaigns.needs_adjudication(store, c, by="root", include_adjudicated=True)
    assert [(d.trajectory_id, d.adjudication) for d in settled] == [(tid, "rejected")]
    assert campaigns.adjudication_view(store, c, tid, by="carol").state == "adjudicated"
    p = campaigns.progress(store, c)
    assert (p.consensus, p.disputed, p.adjudicated) == (1, 0, 1)
    with pytest.raises(ValueError, match="accepts or rejects"):
        campaigns.adjudicate(store, c, tid, "skip", by="carol")


def make_run(store: Store) -> dict[str, str]:
    """One trajectory per problem (the per-problem cap stays out of the way) and its story."""
    story = {}
    for i, (name, correct) in enumerate([
            ("consensus reject, rule correct", True), ("consensus accept, rule wrong", False),
            ("adjudicated accept over consensus reject, rule wrong", False),
            ("adjudicated reject over consensus accept, rule correct", True),
            ("disputed, rule correct", True), ("disputed (last vote accept), rule wrong", False),
            ("one vote of two, rule wrong", False), ("one reviewer, no campaign, rule wrong",
                                                     False),
            ("consensus reject over an earlier plain accept", True)]):
        story[name] = traj(store, i, correct=correct)
    return story


def test_selection_takes_adjudication_then_consensus_then_rules(store):
    s = make_run(store)
    c = campaigns.create_campaign(store, "sel", by="root", reviewers=["ann", "bob"],
                                  filter=QueueFilter(run_id="r1"), adjudicator="carol")

    def votes(name: str, *decided: str) -> None:
        for who, d in zip(["ann", "bob"], decided, strict=False):
            decisions.decide(store, s[name], reviewer=who, decision=d, campaign=c)

    votes("consensus reject, rule correct", "rejected", "rejected")
    votes("consensus accept, rule wrong", "accepted", "accepted")
    votes("adjudicated accept over consensus reject, rule wrong", "rejected", "rejected")
    campaigns.adjudicate(store, c, s["adjudicated accept over consensus reject, rule wrong"],
                         "accept", by="carol")
    votes("adjudicated reject over consensus accept, rule correct", "accepted", "accepted")
    campaigns.adjudicate(store, c, s["adjudicated reject over consensus accept, rule correct"],
                         "reject", by="root")
    votes("disputed, rule correct", "accepted", "rejected")
    votes("disputed (last vote accept), rule wrong", "rejected", "accepted")
    votes("one vote of two, rule wrong", "accepted")
    decisions.decide(store, s["one reviewer, no campaign, rule wrong"], reviewer="cat",
                     decision="accepted")
    decisions.decide(store, s["consensus reject over an earlier plain accept"], reviewer="cat",
                     decision="accepted")
    votes("consensus reject over an earlier plain accept", "rejected", "rejected")

    records = {r.trajectory.id: r for r in store.iter_records(["r1"])}
    status = {name: (records[t].review_status, records[t].human) for name, t in s.items()}
    assert status == {
        "consensus reject, rule correct": ("rejected", "consensus"),
        "consensus accept, rule wrong": ("accepted", "consensus"),
        "adjudicated accept over consensus reject, rule wrong": ("accepted", "adjudicated"),
        "adjudicated reject over consensus accept, rule correct": ("rejected", "adjudicated"),
        "disputed, rule correct": ("needs_review", "disputed"),
        "disputed (last vote accept), rule wrong": ("needs_review", "disputed"),
        "one vote of two, rule wrong": ("pending", None),
        "one reviewer, no campaign, rule wrong": ("accepted", "reviewer"),
        "consensus reject over an earlier plain accept": ("rejected", "consensus")}
    # the column the queue filters on says the same
    assert {n: store.trajectory_summary(t).review_status for n, t in s.items()} == {
        n: st for n, (st, _) in status.items()}
    sel = select(store, ["r1"], SelectConfig(dataset="start"))
    chosen = {name for name, t in s.items() if t in sel.ids}
    assert chosen == {"consensus accept, rule wrong",
                      "adjudicated accept over consensus reject, rule wrong",
                      "disputed, rule correct",  # neither accepted nor rejected: the rules keep it
                      "one reviewer, no campaign, rule wrong"}
    assert sel.report.dropped == {"rejected by a reviewer": 3, "wrong answer": 2}
    assert sel.report.people == {"adjudicated": 2, "consensus": 3,
                                 "disputed (left to the rules)": 2}
    assert "reviewed in campaigns: adjudicated 2" in sel.report.summary()


def test_export_rows_say_how_people_decided(store, tmp_path):
    s = make_run(store)
    c = campaigns.create_campaign(store, "exp", by="root", reviewers=["ann", "bob"],
                                  filter=QueueFilter(run_id="r1"))
    tid = s["consensus accept, rule wrong"]
    for who in ("ann", "bob"):
        decisions.decide(store, tid, reviewer=who, decision="accepted", campaign=c)
    result = export(store, tmp_path / "out", ["r1"], config=ExportConfig(formats=("jsonl",)),
                    by="ann")
    rows = {json.loads(line)["id"]: json.loads(line)
            for line in (tmp_path / "out" / "data.jsonl").read_text().splitlines()}
    assert rows[tid]["review"] == {"status": "accepted", "reviewer": "bob", "editors": [],
                                   "resolution": "consensus"}
    plain = s["disputed, rule correct"]  # untouched here: a rule-correct row as before
    assert rows[plain]["review"] == {"status": "pending", "reviewer": None, "editors": []}
    assert result.manifest["selection"]["people"] == {"consensus": 1}


# --- who may do what ---------------------------------------------------------------------------

def test_every_campaign_action_checks_the_role(store, tmp_path):
    c, ids = campaign(store, 2, reviewers=["bob", "cat"], adjudicator="carol")
    tid = ids[0]
    for who in ("bob", "cat"):
        decisions.decide(store, tid, reviewer=who, decision="accepted" if who == "bob"
                         else "rejected", campaign=c)
    viewer_acts = {
        "create": lambda: campaigns.create_campaign(store, "v", by="vic", reviewers=["bob"],
                                                    overlap=1),
        "close": lambda: campaigns.close_campaign(store, c, by="vic"),
        "next": lambda: campaigns.next_item(store, c, "vic"),
        "prefetch": lambda: campaigns.prefetch_item(store, c, "vic"),
        "release": lambda: campaigns.release_item(store, c, "vic", tid),
        "decide": lambda: decisions.decide(store, ids[1], reviewer="vic", decision="accepted",
                                           campaign=c),
        "list disputes": lambda: campaigns.needs_adjudication(store, c, by="vic"),
        "view": lambda: campaigns.adjudication_view(store, c, tid, by="vic"),
        "adjudicate": lambda: campaigns.adjudicate(store, c, tid, "accept", by="vic"),
        "export": lambda: export(store, tmp_path / "x", ["r1"], by="vic"),
    }
    for what, act in viewer_acts.items():
        with pytest.raises(PermissionDenied, match="vic is a viewer: .* needs the role") as e:
            act()
        assert "python -m startui users role vic" in str(e.value), what
    assert "adjudicator is carol" in str(pytest.raises(
        PermissionDenied, campaigns.adjudicate, store, c, tid, "accept", by="vic").value)
    # a reviewer may not make campaigns, nor adjudicate unless named; one not in the campaign
    # may not pull from it
    with pytest.raises(PermissionDenied, match="ann is a reviewer: campaign needs the role admin"):
        campaigns.create_campaign(store, "a", by="ann", reviewers=["bob"], overlap=1)
    with pytest.raises(PermissionDenied, match="adjudicate needs the role admin"):
        campaigns.adjudicate(store, c, tid, "accept", by="bob")
    with pytest.raises(PermissionDenied, match="ann is not a reviewer of campaign c"):
        campaigns.next_item(store, c, "ann")
    with pytest.raises(PermissionDenied, match="ann is not a reviewer of campaign c"):
        decisions.decide(store, ids[1], reviewer="ann", decision="accepted", campaign=c)
    assert not campaigns.can_adjudicate(store, c, "bob")
    assert campaigns.can_adjudicate(store, c, "carol") and campaigns.can_adjudicate(store, c,
                                                                                    "root")
    assert campaigns.adjudicate(store, c, tid, "accept", by="carol").decision == "accepted"
    users.set_role(store, "carol", "viewer")  # a named adjudicator made a viewer since
    with pytest.raises(PermissionDenied, match="carol is a viewer"):
        campaigns.adjudicate(store, c, tid, "reject", by="carol")
    # reading is open to all
    assert campaigns.progress(store, c).adjudicated == 1
    assert [x.name for x in campaigns.list_campaigns(store)] == ["c"]


# --- the command line --------------------------------------------------------------------------

def test_the_command_line_runs_a_campaign(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    with Store(url) as store:
        add_team(store)
        ids = [traj(store, i, problem=f"p{i // 2}", correct=i != 3, human_hint=i < 4)
               for i in range(6)]
    db = ["--db", url]
    assert main(["review", "campaign", "create", "double", "--run", "r1", "--verdict", "correct",
                 "--human-hint", "--per-problem", "1", "--overlap", "2", "--reviewers",
                 "ann,bob", "--adjudicator", "carol", "--by", "root", *db]) == 0
    assert capsys.readouterr().out.strip() == (
        "campaign double: 2 trajectories, each for 2 of ann, bob; adjudicator carol")
    assert main(["review", "campaign", "create", "v", "--run", "r1", "--reviewers", "ann,bob",
                 "--by", "vic", *db]) == 1
    assert "vic is a viewer: campaign needs the role admin" in capsys.readouterr().err
    assert main(["review", "campaign", "list", "--json", *db]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert (listed["name"], listed["items"], listed["reviewers"]) == ("double", 2, ["ann", "bob"])
    handed = {}
    for who in ("ann", "bob"):
        assert main(["review", "campaign", "next", "double", "--reviewer", who, *db]) == 0
        handed[who] = capsys.readouterr().out.strip()
    assert handed == {"ann": ids[0], "bob": ids[0]}
    assert main(["review", "accept", ids[0], "--campaign", "double", "--reviewer", "ann",
                 "--score", "5", *db]) == 0
    assert capsys.readouterr().out.strip() == f"{ids[0]} accepted by ann in campaign double"
    assert main(["review", "reject", ids[0], "--campaign", "double", "--reviewer", "bob",
                 "--score", "2", *db]) == 0
    capsys.readouterr()
    for who in ("ann", "bob"):
        assert main(["review", "campaign", "next", "double", "--reviewer", who, *db]) == 0
        tid = capsys.readouterr().out.strip()
        assert tid == ids[2]
        assert main(["review", "accept", tid, "--campaign", "double", "--reviewer", who,
                     *db]) == 0
        capsys.readouterr()
    assert main(["review", "campaign", "next", "double", "--reviewer", "ann", *db]) == 1
    assert "nothing left for ann in double: 2 of 2 done" in capsys.readouterr().err
    capsys.readouterr()
    assert main(["review", "agreement", "double", "--json", *db]) == 0
    report = json.loads(capsys.readouterr().out)
    # one agreement (ids[2]) and one disagreement (ids[0]): p_o = 1/2; marginals ann A 2/2,
    # bob A 1/2: p_e = 1*0.5 + 0*0.5 = 0.5, kappa = (0.5-0.5)/(1-0.5) = 0
    assert report["agreement"]["value"] == 0.5 and report["kappa"]["value"] == 0.0
    assert main(["review", "agreement", "double", *db]) == 0
    assert "ann / bob" in capsys.readouterr().out
    assert main(["review", "adjudicate", "double", "--reviewer", "carol", *db]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "1 item of double needs adjudication", f"{ids[0]}  ann accepted · bob rejected"]
    assert main(["review", "adjudicate", "double", ids[0], "--reviewer", "carol", *db]) == 0
    shown = capsys.readouterr().out
    assert "disputed" in shown and "ann: accepted · score 5.0" in shown
    assert main(["review", "adjudicate", "double", ids[0], "accept", "--reviewer", "bob",
                 *db]) == 1
    assert "adjudicator is carol" in capsys.readouterr().err
    assert main(["review", "adjudicate", "double", ids[0], "accept", "--reviewer", "carol",
                 *db]) == 0
    assert capsys.readouterr().out.strip() == (
        f"{ids[0]} accepted by carol (adjudication in double)")
    assert main(["review", "campaign", "progress", "double", *db]) == 0
    assert "2 of 2 done" in capsys.readouterr().out
    with Store(url) as store:
        assert store.trajectory_summary(ids[0]).review_status == "accepted"
