"""The trajectory store on real SQLite files (each test its own) and, where marked, PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from startui import resources
from startui.events import (
    Notice,
    SegmentFinished,
    SegmentStarted,
    TextDelta,
    TrajectoryFinished,
    TrajectoryStarted,
)
from startui.store import (
    ConflictError,
    NotFoundError,
    Recorder,
    Store,
    StoreError,
    default_url,
    normalize_url,
)
from startui.store import facade as store_mod
from startui.store.problems import load_sample_problems
from startui.trajectory import Problem, Segment, Trajectory

ROOT = Path(__file__).resolve().parents[1]
PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5"
       "ErkJggg==")
SETTINGS = {"backend": "scripted", "model": "script", "engine": {"temperature": 0.6, "top_p": 0.95},
            "hints": {"rounds": 1}}


# --- fixtures ----------------------------------------------------------------------------------

@pytest.fixture
def db(url):
    with Store(url) as s:
        yield s


@pytest.fixture
def sqlite_db(tmp_path):
    with Store(f"sqlite:///{tmp_path / 'store.sqlite'}") as s:
        yield s


def make_traj(question: str = "What is 6*7?", *, n_think: int = 1, status: str = "finished",
              **kw) -> Trajectory:
    segs = [Segment("think", f"Let me think ({i})." * 3) for i in range(n_think)] + [
        Segment("hint", "Wait, I can use Python to check.", "auto", {"category": "general"}),
        Segment("code", "import matplotlib\nprint(6*7)",
                meta={"images": [PNG], "plotly": [{"data": [{"y": [1]}]}]}),
        Segment("output", "42", "kernel", {"exec_ms": 12.5, "error": None}),
        Segment("answer", "So the answer is \\boxed{42}.", meta={"boxed": "42"}),
    ]
    return Trajectory(problem=Problem(question, answer="42", id=kw.pop("pid", "p-42"),
                                      meta={"level": 1}),
                      prompt="<|im_start|>user\nWhat is 6*7?<|im_end|>\n", segments=segs,
                      status=status, settings=kw.pop("settings", dict(SETTINGS)), tokens=99,
                      **kw)


# --- round trips -------------------------------------------------------------------------------

def test_save_load_round_trip_with_artifacts(db):
    t = make_traj()
    t.segments.append(Segment("code", "x = 1", closed=False, meta={"images": []}))
    db.save_trajectory(t)
    back = db.load_trajectory(t.id)
    assert back == t
    assert back.text() == t.text()
    assert back.answer == "42" and back.tool_calls == 1 and back.hints == 1
    stats = db.stats()
    assert stats["artifacts"] == 2  # the image and the figure, out of the segment meta
    assert (stats["problems"], stats["trajectories"], stats["segments"]) == (1, 1, 6)
    with db.read() as s:
        meta = s.execute(text("SELECT meta FROM segments WHERE position = 2")).scalar_one()
    assert "images" not in str(meta) and "plotly" not in str(meta)


def test_resave_replaces_segments_and_bumps_version(db):
    t = make_traj(n_think=3)
    db.save_trajectory(t)
    _, v1 = db.load_trajectory_versioned(t.id)
    t.segments = t.segments[:2] + [Segment("answer", "\\boxed{41}")]
    t.segments[0].meta["images"] = [PNG, PNG]
    db.save_trajectory(t)
    back, v2 = db.load_trajectory_versioned(t.id)
    assert back == t and v2 == v1 + 1
    assert db.stats()["segments"] == 3 and db.stats()["artifacts"] == 2
    assert db.list_trajectories()[0].answer == "41"


def test_adhoc_problem_gets_a_stable_id(db):
    a = Trajectory(problem=Problem("Is 97 prime?"), prompt="p")
    b = Trajectory(problem=Problem("Is 97 prime?"), prompt="p")
    db.save_trajectory(a)
    db.save_trajectory(b)
    assert a.problem.id and a.problem.id == b.problem.id
    assert db.load_trajectory(a.id) == a
    assert db.stats()["problems"] == 1


def test_runs_group_identical_settings_and_named_runs(db):
    t1, t2 = make_traj(), make_traj()
    t3 = make_traj(settings={**SETTINGS, "run_id": "batch-7", "run_name": "batch 7"})
    for t in (t1, t2, t3):
        db.save_trajectory(t)
    runs = {r["id"]: r for r in db.list_runs()}
    assert len(runs) == 2 and runs["batch-7"]["trajectories"] == 1
    auto = next(r for r in runs.values() if r["id"] != "batch-7")
    assert auto["trajectories"] == 2 and auto["backend"] == "scripted"
    assert auto["sampling"] == {"temperature": 0.6, "top_p": 0.95}
    assert db.list_trajectories(run_id="batch-7")[0].id == t3.id


def test_rewind_parent_and_branch_point(db):
    parent = make_traj()
    db.save_trajectory(parent)
    child = make_traj(settings={**SETTINGS, "parent_id": parent.id, "branch_point": 2})
    orphan = make_traj(settings={**SETTINGS, "parent_id": "elsewhere", "branch_point": 1})
    db.save_trajectory(child)
    db.save_trajectory(orphan)
    [row] = db.list_trajectories(parent_id=parent.id)
    assert row.id == child.id and row.branch_point == 2
    assert db.load_trajectory(orphan.id).settings["parent_id"] == "elsewhere"  # kept verbatim
    db.delete_trajectory(parent.id)
    assert db.load_trajectory(child.id).settings["parent_id"] == parent.id
    assert db.list_trajectories(parent_id=parent.id) == []


def test_truncate_and_delete_cascade(db):
    t = make_traj(n_think=2)
    db.save_trajectory(t)
    assert db.truncate_segments(t.id, 2) == 4
    assert [s.kind for s in db.load_trajectory(t.id).segments] == ["think", "think"]
    assert db.stats()["artifacts"] == 0
    db.add_review(t.id, reviewer="ann", decision="accepted")
    db.delete_trajectory(t.id)
    st = db.stats()
    assert (st["trajectories"], st["segments"], st["reviews"]) == (0, 0, 0)
    with pytest.raises(NotFoundError, match="no trajectory"):
        db.load_trajectory(t.id)


def test_problems_upsert_and_samples(db):
    p = Problem("2+2?", answer="4", id="q1", meta={"source": "mine", "external_id": "1"})
    assert db.upsert_problem(p) == "q1"
    p.answer = "four"
    assert db.upsert_problems([p]) == [("q1", "updated")]
    assert db.get_problem("q1") == p
    samples = load_sample_problems()
    assert db.seed_samples() == len(samples)  # each sample problem is new here
    assert db.seed_samples() == 0 and db.seed_samples(only_if_empty=True) == 0
    assert {p.id for p in db.list_problems(kind="code", limit=None)} == {
        p.id for p in samples if p.kind == "code"}
    assert {p.id for p in db.list_problems(source="sample", limit=100)} >= {"sample:fibonacci-30"}


# --- recorder: the engine's events -------------------------------------------------------------

def feed(recorder: Recorder, t: Trajectory, upto: int | None = None) -> None:
    """What the engine emits for ``t``: started, then per segment started/deltas/finished."""
    start = Trajectory(problem=t.problem, prompt=t.prompt, id=t.id, settings=t.settings,
                       created_at=t.created_at)
    recorder.handle(TrajectoryStarted(start))
    for i, seg in enumerate(t.segments[:upto]):
        recorder.handle(SegmentStarted(t.id, i, Segment(seg.kind, "", seg.source)))
        recorder.handle(TextDelta(t.id, i, seg.text))
        recorder.handle(SegmentFinished(t.id, i, seg))
    recorder.handle(Notice(t.id, "kernel restarted", "warning"))


def test_recorder_full_run_with_resplit(db):
    rec = Recorder(db)
    final = make_traj()
    feed(rec, final, upto=3)
    # the engine re-splits the last segment at the end: same index again, then more
    rec.handle(SegmentFinished(final.id, 2, Segment("code", "print(6*7)")))
    loaded = db.load_trajectory(final.id)
    assert loaded.status == "running" and len(loaded.segments) == 3
    assert loaded.segments[2].text == "print(6*7)"
    final.segments.append(Segment("think", "stale, will be dropped"))
    rec.handle(SegmentFinished(final.id, 5, final.segments[5]))
    final.segments.pop()
    rec.handle(TrajectoryFinished(final))
    rec.flush()
    assert db.load_trajectory(final.id) == final
    summary = db.list_trajectories()[0]
    assert (summary.status, summary.segments, summary.tool_calls, summary.answer) == (
        "finished", 5, 1, "42")


async def test_recorder_async_does_not_block_and_saves_on_finish(db):
    rec = Recorder(db)
    t = make_traj(n_think=50)
    t0 = time.perf_counter()
    await rec(TrajectoryStarted(Trajectory(problem=t.problem, prompt=t.prompt, id=t.id,
                                           settings=t.settings, created_at=t.created_at)))
    for i, seg in enumerate(t.segments):
        await rec(SegmentFinished(t.id, i, seg))
    queued = time.perf_counter() - t0
    await rec(TrajectoryFinished(t))  # awaited: saved when it returns
    assert db.load_trajectory(t.id) == t
    assert queued < 0.5, f"queueing 55 events took {queued:.3f}s"
    rec.flush()


def test_recorder_reports_unknown_trajectory(db):
    rec = Recorder(db)
    rec.submit(SegmentFinished("nope", 0, Segment("think", "x")))
    with pytest.raises(StoreError, match="unknown trajectory 'nope'"):
        rec.flush()


def test_recorder_copies_segments_the_engine_mutates_later(db):
    rec = Recorder(db)
    t = make_traj()
    feed(rec, t, upto=0)
    seg = Segment("think", "first")
    fut = rec.submit(SegmentFinished(t.id, 0, seg))
    seg.text = "mutated after the event"
    fut.result()
    assert db.load_trajectory(t.id).segments[0].text == "first"


def test_stop_feeding_then_reopen_shows_interrupted(tmp_path):
    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    t = make_traj()
    first = Store(url)
    feed(Recorder(first), t, upto=3)
    first.close()  # the process goes away; the in-flight segment 3 was never finished
    with Store(url) as again:
        loaded = again.load_trajectory(t.id)
        assert loaded.status == "interrupted"
        assert loaded.segments == t.segments[:3]
        assert loaded.text() == t.prompt + "".join(s.render() for s in t.segments[:3])
        assert again.stats()["by_status"]["interrupted"] == 1


CRASHER = textwrap.dedent("""
    import sys, time
    from startui.store import Recorder, Store
    from startui.events import SegmentFinished, TrajectoryStarted
    from startui.trajectory import Problem, Segment, Trajectory
    store = Store(sys.argv[1])
    rec = Recorder(store)
    t = Trajectory(problem=Problem("crash?"), prompt="P:", id="crashed")
    rec.handle(TrajectoryStarted(t))
    for i in range(3):
        rec.handle(SegmentFinished(t.id, i, Segment("think", f"step {i}. ")))
    print("ready", flush=True)
    time.sleep(60)
""")


def test_killed_process_recovers_as_interrupted(tmp_path):
    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    Store(url).close()  # migrate first, so the child starts fast
    child = subprocess.Popen([sys.executable, "-c", CRASHER, url], stdout=subprocess.PIPE,
                             cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        with Store(url) as live:  # the writer is alive: its trajectory is left alone
            assert live.load_trajectory("crashed").status == "running"
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        child.kill()
    with Store(url) as again:
        t = again.load_trajectory("crashed")
        assert t.status == "interrupted"
        assert t.text() == "P:step 0. step 1. step 2. "


def test_mark_interrupted_spares_live_stores_in_this_process(tmp_path):
    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    with Store(url) as a:
        a.save_trajectory(make_traj(status="running", id="live"))
        with Store(url) as b:
            assert b.mark_interrupted() == 0
            assert b.load_trajectory("live").status == "running"
        stale = store_mod.timedelta(seconds=0)
        assert a.mark_interrupted(stale_after=stale) == 1  # not written for "too long"


# --- optimistic locking, reviews, revisions, scores --------------------------------------------

def test_two_editors_one_conflict(url):
    with Store(url) as a, Store(url) as b:
        t = make_traj()
        a.save_trajectory(t)
        ta, va = a.load_trajectory_versioned(t.id)
        tb, vb = b.load_trajectory_versioned(t.id)
        assert va == vb
        ta.segments[0].text = "Alice's cleaner thinking."
        new = a.update_trajectory_segments(t.id, ta.segments, expected_version=va,
                                           editor="alice", note="tidy")
        assert new == va + 1
        tb.segments[-1].text = "\\boxed{43}"
        with pytest.raises(ConflictError, match="last edited by alice") as e:
            b.update_trajectory_segments(t.id, tb.segments, expected_version=vb, editor="bob")
        assert e.value.current_version == new
        assert b.load_trajectory(t.id).segments == ta.segments  # Bob overwrote nothing
        revs = b.list_revisions(t.id)
        assert [(r.version, r.editor) for r in revs] == [(va, None), (new, "alice")]
        assert revs[0].segments == t.segments and revs[1].segments == ta.segments


def test_concurrent_editors_threads(sqlite_db):
    t = make_traj()
    sqlite_db.save_trajectory(t)
    _, v = sqlite_db.load_trajectory_versioned(t.id)
    barrier, results = threading.Barrier(4), []

    def edit(name: str) -> None:
        barrier.wait()
        try:
            segs = [Segment("think", f"edited by {name}")]
            results.append(sqlite_db.update_trajectory_segments(
                t.id, segs, expected_version=v, editor=name))
        except ConflictError:
            results.append("conflict")

    threads = [threading.Thread(target=edit, args=(f"e{i}",)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(results, key=str) == sorted([v + 1] + ["conflict"] * 3, key=str)


def test_editing_a_running_trajectory_is_refused(db):
    t = make_traj(status="running")
    db.save_trajectory(t)
    _, v = db.load_trajectory_versioned(t.id)
    with pytest.raises(ConflictError, match="still running"):
        db.update_trajectory_segments(t.id, [], expected_version=v, editor="ann")
    with pytest.raises(NotFoundError):
        db.update_trajectory_segments("nope", [], expected_version=1, editor="ann")


def test_reviews_and_accepted_stats(db):
    t1, t2 = make_traj(), make_traj()
    db.save_trajectory(t1)
    db.save_trajectory(t2)
    _, v = db.load_trajectory_versioned(t1.id)
    r = db.add_review(t1.id, reviewer="ann", decision="accepted", score=0.9, notes="clean",
                      expected_version=v)
    assert (r.decision, r.trajectory_version, r.score) == ("accepted", v, 0.9)
    db.add_review(t2.id, reviewer="bob", notes="looks odd")  # a comment, no decision
    db.add_review(t2.id, reviewer="bob", decision="rejected")
    assert [x.notes for x in db.list_reviews(t2.id)] == ["looks odd", ""]
    st = db.stats()
    assert (st["accepted"], st["rejected"], st["unreviewed"], st["reviews"]) == (1, 1, 0, 3)
    with pytest.raises(ValueError, match="decision must be one of"):
        db.add_review(t1.id, reviewer="ann", decision="maybe")
    with pytest.raises(ConflictError):
        db.add_review(t1.id, reviewer="ann", decision="rejected", expected_version=v - 1)


def test_scores_latest_per_scorer(db):
    t = make_traj()
    db.save_trajectory(t)
    db.add_score(t.id, scorer="math-verify", correct=False)
    db.add_score(t.id, scorer="math-verify", correct=True, value=1.0, detail={"ref": "42"})
    db.add_score(t.id, scorer="tests", correct=None)
    latest = db.latest_scores(t.id)
    assert latest["math-verify"].correct is True and latest["math-verify"].detail == {"ref": "42"}
    assert set(latest) == {"math-verify", "tests"}


# --- listing, queue, export scan ---------------------------------------------------------------

def _created(i: int) -> str:
    return f"2025-01-01T00:{i // 60:02d}:{i % 60:02d}+00:00"


def test_review_queue_filters_and_keyset_pages(db):
    trajs = []
    for i in range(30):
        status = "finished" if i % 3 else "error"
        run = {"run_id": "r1"} if i % 2 else {"run_id": "r2"}
        t = make_traj(status=status, created_at=_created(i), settings={**SETTINGS, **run},
                      pid=f"p{i % 4}")
        trajs.append(t)
    assert db.save_trajectories(trajs, batch_size=7) == 30
    db.add_review(trajs[1].id, reviewer="ann", decision="accepted")
    pending = [t for t in trajs if t.status == "finished"][1:]
    page1 = db.review_queue(limit=8)
    assert [s.id for s in page1] == [t.id for t in pending[:8]]
    page2 = db.review_queue(limit=8, after=(page1[-1].created_at, page1[-1].id))
    assert [s.id for s in page2] == [t.id for t in pending[8:16]]
    assert [s.id for s in db.review_queue(limit=8, offset=8)] == [s.id for s in page2]
    r1 = db.review_queue(run_id="r1", limit=50)
    assert r1 and all(s.run_id == "r1" and s.status == "finished" for s in r1)
    assert db.review_queue(kind="code") == []
    assert db.count_trajectories(status="finished", review_status="pending") == len(pending)
    recent = db.list_trajectories(limit=3)
    assert [s.id for s in recent] == [t.id for t in trajs[::-1][:3]]
    p1 = [t for t in trajs if t.problem.id == "p1"]
    assert {s.id for s in db.list_trajectories(problem_id="p1")} == {t.id for t in p1}
    assert {s.id for s in db.list_trajectories(problem_id="p1", status="error")} == {
        t.id for t in p1 if t.status == "error"}
    assert db.list_trajectories(limit=1)[0].question == "What is 6*7?"


def test_iter_trajectories_scans_everything_in_order(db):
    trajs = [make_traj(created_at=_created(i)) for i in range(25)]
    db.save_trajectories(trajs)
    out = list(db.iter_trajectories(batch_size=4))
    assert out == trajs
    assert len(list(db.iter_trajectories(status="error"))) == 0


def test_stats_counts(db):
    db.save_trajectories([make_traj(), make_traj(status="error"), make_traj(status="running")])
    st = db.stats()
    assert st["trajectories"] == 3 and st["segments"] == 15
    assert st["by_status"] == {"running": 1, "finished": 1, "cancelled": 0, "error": 1,
                               "interrupted": 0}
    assert (st["tool_calls"], st["hints"], st["tokens"], st["runs"]) == (3, 3, 297, 1)


# --- SQLite specifics: pragmas, one writer, readers not blocked --------------------------------

def test_sqlite_pragmas(sqlite_db):
    with sqlite_db.read() as s:
        assert s.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert s.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert s.execute(text("PRAGMA busy_timeout")).scalar() >= 1000


def test_concurrent_writers_two_stores_many_threads(tmp_path):
    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    with Store(url) as a, Store(url) as b:
        errors = []

        def work(st: Store, k: int) -> None:
            try:
                for _ in range(10):
                    st.save_trajectory(make_traj(pid=f"p{k}"))
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        threads = [threading.Thread(target=work, args=((a, b)[k % 2], k)) for k in range(6)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert errors == []
        assert a.stats()["trajectories"] == 60


def test_readers_are_not_blocked_by_a_long_write(sqlite_db):
    sqlite_db.save_trajectory(make_traj())
    started, release = threading.Event(), threading.Event()

    def slow(s):
        s.execute(text("UPDATE trajectories SET tokens = tokens + 1"))
        started.set()
        release.wait(10)

    fut = sqlite_db.submit(slow)
    assert started.wait(5)
    t0 = time.perf_counter()
    assert sqlite_db.stats()["trajectories"] == 1
    assert len(sqlite_db.list_trajectories()) == 1
    elapsed = time.perf_counter() - t0
    release.set()
    fut.result()
    assert elapsed < 1.0
    assert sqlite_db.list_trajectories()[0].tokens == 100


# --- URLs and errors ---------------------------------------------------------------------------

def test_default_url(monkeypatch, tmp_path):
    monkeypatch.setenv("STARTUI_DB_URL", "sqlite:///elsewhere.db")
    assert default_url() == "sqlite:///elsewhere.db"
    monkeypatch.delenv("STARTUI_DB_URL")
    monkeypatch.delenv("STARTUI_HOME", raising=False)
    monkeypatch.setattr(resources, "SPACES_DATA", tmp_path / "absent")
    assert default_url() == f"sqlite:///{ROOT / 'db' / 'startui.sqlite'}"  # a checkout: db/
    monkeypatch.setattr(resources, "in_checkout", lambda: False)  # installed: the user's data
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_url() == f"sqlite:///{tmp_path / 'xdg' / 'startui' / 'startui.sqlite'}"
    monkeypatch.setenv("STARTUI_HOME", str(tmp_path / "home"))
    assert default_url() == f"sqlite:///{tmp_path / 'home' / 'startui.sqlite'}"
    monkeypatch.delenv("STARTUI_HOME")
    monkeypatch.setattr(resources, "SPACES_DATA", tmp_path)
    assert default_url() == f"sqlite:///{tmp_path / 'startui.sqlite'}"
    with Store() as s:  # creates the file in the data dir
        assert s.url == default_url()
    assert (tmp_path / "startui.sqlite").exists()


def test_normalize_url(tmp_path):
    assert normalize_url("postgres://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url(str(tmp_path / "x.db")) == f"sqlite:///{tmp_path / 'x.db'}"
    assert normalize_url("sqlite:///a.db") == "sqlite:///a.db"


def test_creates_missing_directories(tmp_path):
    with Store(f"sqlite:///{tmp_path / 'a' / 'b' / 'c.sqlite'}") as s:
        assert s.stats()["problems"] == 0


@pytest.mark.parametrize("bad, message", [
    ("nosuchdb://x/y", "no SQLAlchemy dialect"),
    ("postgresql+psycopg://me:s3cret@127.0.0.1:1/x", "cannot open database"),
    ("sqlite:////proc/no/such/dir/x.db", "cannot create the folder"),
])
def test_bad_urls_are_clear_errors(bad, message):
    with pytest.raises(StoreError, match=message) as e:
        Store(bad)
    assert "s3cret" not in str(e.value)


def test_in_memory_sqlite_works():
    with Store("sqlite://") as s:
        t = make_traj()
        s.save_trajectory(t)
        assert s.load_trajectory(t.id) == t


def test_closed_store_refuses_writes(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 's.sqlite'}")
    s.close()
    s.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        s.submit(lambda sess: None)
    with pytest.raises(StoreError, match="closed"):
        s.save_trajectory(make_traj())


# --- with the real engine ----------------------------------------------------------------------

async def test_engine_run_is_saved_as_it_streams(make_engine, sqlite_db):
    engine = make_engine(["Let me compute.\n```python\nprint(6*7)\n```\n",
                          "So it is \\boxed{42}."])
    rec = Recorder(sqlite_db)
    seen: list[int] = []

    async def watcher(event) -> None:
        if isinstance(event, SegmentFinished):  # queued by the recorder: wait for it, then look
            await asyncio.to_thread(rec.flush)
            seen.append(len(sqlite_db.load_trajectory(event.trajectory_id).segments))

    final = await engine.run("What is 6*7?", subscribers=[rec, watcher])
    rec.flush()
    assert final.status == "finished"
    assert sqlite_db.load_trajectory(final.id) == final
    assert seen and seen[0] >= 1  # segments were in the store while the run streamed
    assert seen == sorted(seen)


# --- group commit ------------------------------------------------------------------------------


def test_writes_queued_together_commit_together_and_a_failing_one_alone_is_lost(db) -> None:
    """While the writer is busy, submitted writes pile up; they then run in one transaction,
    each in its own savepoint: every good write is stored, in order, the bad one is rolled
    back alone and its caller gets the error, and the lot costs a commit or two, not 41."""
    from sqlalchemy import event

    from startui.store.models import SettingRow

    commits = []
    event.listen(db._engine, "commit", lambda conn: commits.append(1))
    gate = threading.Event()
    blocker = db.submit(lambda s: gate.wait(10))  # holds the writer thread

    def put(key: str, value: object):
        return db.submit(lambda s: s.merge(SettingRow(key=key, value=value)))

    def bad(s):
        s.merge(SettingRow(key="k.bad", value=0))
        s.flush()
        raise ValueError("this write is refused")

    futs = [put(f"k.{i:02d}", i) for i in range(20)]
    failing = db.submit(bad)
    futs += [put(f"k.{i:02d}", i) for i in range(20, 40)]
    futs.append(put("k.00", "overwritten later, in order"))
    time.sleep(0.05)
    gate.set()
    blocker.result(timeout=10)
    for f in futs:
        f.result(timeout=10)
    with pytest.raises(ValueError, match="refused"):
        failing.result(timeout=10)
    assert len(commits) <= 3, len(commits)
    stored = {k: db.get_setting(k) for k in [f"k.{i:02d}" for i in range(40)] + ["k.bad"]}
    assert stored["k.bad"] is None
    assert stored["k.00"] == "overwritten later, in order"
    assert [stored[f"k.{i:02d}"] for i in range(1, 40)] == list(range(1, 40))


def test_writes_from_many_threads_share_commits_and_each_returns_once_committed(db) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import event

    from startui.store.models import SettingRow

    commits = []
    event.listen(db._engine, "commit", lambda conn: commits.append(1))
    gate = threading.Event()
    blocker = db.submit(lambda s: gate.wait(10))

    def put(i: int) -> int:
        return db.write(lambda s: s.merge(SettingRow(key=f"w.{i:02d}", value=i)).value)

    with ThreadPoolExecutor(16) as pool:
        futs = [pool.submit(put, i) for i in range(16)]
        time.sleep(0.1)
        gate.set()
        blocker.result(timeout=10)
        assert [f.result(timeout=10) for f in futs] == list(range(16))
    assert len(commits) <= 3, len(commits)  # (counted before any read: on PostgreSQL reads
    assert [db.get_setting(f"w.{i:02d}") for i in range(16)] == list(range(16))  # commit too)
