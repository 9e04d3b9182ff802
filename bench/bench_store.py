"""Benchmark of the trajectory store on a synthetic store of N trajectories x ~20 segments.

    python bench/bench_store.py                  # 100,000 trajectories (a few minutes)
    python bench/bench_store.py --n 10000        # quick run
    python bench/bench_store.py --url postgresql+psycopg://...   # another database (emptied!)

Measures, each with a baseline from the same run:
- insert rate of the bulk path (``save_trajectories``) vs raw ``sqlite3.executemany`` of the same
  segment rows into an unindexed table, and of the live path (``Recorder``: one commit per segment);
- the review-queue query (a page of 50 finished, unreviewed trajectories, oldest first; with a run
  filter, a kind filter, OFFSET pages and keyset pages; the Review tab's shortest-first page):
  p50/p95 with the store's indexes vs the same queries, the same number of times, with exactly
  those indexes (every secondary index of trajectories, read from the database) dropped; and a
  plain ``SELECT count(*) FROM trajectories``;
- the full-scan export rate (``iter_trajectories``, whole Trajectory objects) vs a raw cursor over
  the segments table.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import inspect, text, update

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from startui.events import SegmentFinished, TrajectoryFinished, TrajectoryStarted  # noqa: E402
from startui.store import Recorder, Store  # noqa: E402
from startui.store.models import TrajectoryRow  # noqa: E402
from startui.store.queue import QueueFilter  # noqa: E402
from startui.trajectory import Problem, Segment, Trajectory  # noqa: E402

WORDS = ("let", "the", "sum", "of", "primes", "below", "n", "check", "wait", "so", "we", "get",
         "value", "then", "compute", "factor", "square", "root", "modulo", "answer")
STATUSES = ["finished"] * 16 + ["error", "error", "cancelled", "interrupted"]


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)) + ". "


def make_segments(rng: random.Random, n: int) -> list[Segment]:
    segs = [Segment("think", sentence(rng, 60))]
    while len(segs) < n - 1:
        segs += [Segment("hint", "Wait, I can use Python to check if my approach is correct.",
                         "auto", {"category": "self-reflection"}),
                 Segment("code", "print(sum(p for p in range(2, 1000)))\n" + sentence(rng, 8)),
                 Segment("output", str(rng.randrange(10**6)), "kernel", {"exec_ms": 3.2}),
                 Segment("think", sentence(rng, 50))]
    segs = segs[: n - 1] + [Segment("answer", "So the answer is \\boxed{76127}.",
                                    meta={"boxed": "76127"})]
    return segs


def synthetic(n: int, n_segments: int, seed: int = 0):
    rng = random.Random(seed)
    n_problems = max(10, n // 10)
    problems = [Problem(f"Problem {i}: " + sentence(rng, 20), answer=str(i), id=f"bench:{i}",
                        kind="code" if i % 5 == 0 else "math",
                        meta={"source": "bench", "external_id": str(i)})
                for i in range(n_problems)]
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    for i in range(n):
        run = f"run-{i % 10}"
        yield Trajectory(
            problem=problems[rng.randrange(n_problems)], prompt="<|im_start|>user\n...",
            segments=make_segments(rng, n_segments), status=rng.choice(STATUSES),
            id=f"t{i:08d}", tokens=rng.randrange(500, 4000),
            settings={"run_id": run, "backend": "scripted", "model": "bench",
                      "engine": {"temperature": 0.6, "top_p": 0.95}},
            created_at=(t0 + timedelta(seconds=i)).isoformat(timespec="seconds"))


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def bench_insert(store: Store, n: int, n_segments: int) -> dict[str, float]:
    dt, done = 0.0, 0
    batch: list[Trajectory] = []
    gen = synthetic(n, n_segments)
    while batch := [t for _, t in zip(range(1000), gen, strict=False)]:  # made untimed
        t = time.perf_counter()
        done += store.save_trajectories(batch, batch_size=1000)
        dt += time.perf_counter() - t
        if done % 20000 == 0:
            print(f"  inserted {done:,}", file=sys.stderr)
    # reviewers work oldest first: the oldest 60% are reviewed except every tenth (skipped),
    # so the head of the queue is sparse and an unindexed scan has to wade through reviewed rows
    ids = [f"t{i:08d}" for i in range(int(n * 0.6)) if i % 10 != 3]
    for i in range(0, len(ids), 5000):
        store.write(lambda s, chunk=ids[i:i + 5000]: s.execute(
            update(TrajectoryRow).where(TrajectoryRow.id.in_(chunk)).values(
                review_status="accepted").execution_options(synchronize_session=False)))
    return {"seconds": dt, "traj_per_s": done / dt, "seg_per_s": done * n_segments / dt}


def bench_raw_insert(tmp: Path, n_rows: int) -> float:
    """Baseline: sqlite3.executemany of similar rows into an unindexed table, no ORM."""
    rng = random.Random(1)
    con = sqlite3.connect(tmp / "raw.sqlite")
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE s (id INTEGER PRIMARY KEY, trajectory_id TEXT, position INT, "
                "kind TEXT, source TEXT, text TEXT, meta TEXT, closed INT, created_at TEXT)")
    rows = [(f"t{i // 20:08d}", i % 20, "think", "model", sentence(rng, 30), "{}", 1,
             "2025-01-01 00:00:00") for i in range(n_rows)]
    t = time.perf_counter()
    for i in range(0, n_rows, 20000):
        con.executemany("INSERT INTO s (trajectory_id, position, kind, source, text, meta, "
                        "closed, created_at) VALUES (?,?,?,?,?,?,?,?)", rows[i:i + 20000])
        con.commit()
    dt = time.perf_counter() - t
    con.close()
    return n_rows / dt


def bench_recorder(store: Store, n: int, n_segments: int) -> float:
    rec = Recorder(store)
    segs = 0
    t = time.perf_counter()
    for traj in synthetic(n, n_segments, seed=99):
        traj.id = "live-" + traj.id
        final = Trajectory(problem=traj.problem, prompt=traj.prompt, segments=traj.segments,
                           status="finished", id=traj.id, settings=traj.settings)
        rec.handle(TrajectoryStarted(Trajectory(problem=traj.problem, prompt=traj.prompt,
                                                id=traj.id, settings=traj.settings)))
        for i, seg in enumerate(traj.segments):
            rec.handle(SegmentFinished(traj.id, i, seg))
            segs += 1
        rec.handle(TrajectoryFinished(final))
    rate = segs / (time.perf_counter() - t)
    for traj in synthetic(n, n_segments, seed=99):
        store.delete_trajectory("live-" + traj.id)
    return rate


def queue_cases(store: Store) -> dict[str, object]:
    """The queries timed, each a callable; the same random choices on every call of this."""
    rng = random.Random(7)
    pending = store.count_trajectories(status="finished", review_status="pending")
    pages = max(1, min(20, pending // 50))
    mids = store.review_queue(limit=1, offset=pending // 2)
    mid = (mids[0].created_at, mids[0].id) if mids else None
    return {
        "first page": lambda: store.review_queue(limit=50),
        "by run": lambda: store.review_queue(run_id=f"run-{rng.randrange(10)}", limit=50),
        "kind=code": lambda: store.review_queue(kind="code", limit=50),
        "offset page <=20": lambda: store.review_queue(limit=50,
                                                       offset=50 * rng.randrange(pages)),
        "keyset mid-queue": lambda: store.review_queue(limit=50, after=mid),
        "Review tab, shortest first": lambda: store.queue_page(QueueFilter(sort="shortest"),
                                                               limit=50),
    }


def bench_queue(store: Store, repeat: int) -> dict[str, tuple[float, float]]:
    out = {}
    for name, fn in queue_cases(store).items():
        fn()  # warm
        xs = timed(fn, repeat)
        out[name] = (statistics.median(xs), pct(xs, 95))
    return out


def trajectory_indexes(store: Store) -> dict[str, str]:
    """The secondary indexes of ``trajectories`` as the migrations made them, name -> the CREATE
    statement that makes it again (read from the database, so the set follows models/migrations)."""
    with store.read() as s:
        found = inspect(s.connection()).get_indexes("trajectories")
    out = {}
    for ix in found:
        if ix.get("duplicates_constraint"):  # a unique constraint's own index: not ours to drop
            continue
        cols = ix["column_names"]
        if any(c is None for c in cols):
            raise SystemExit(f"index {ix['name']} has expressions; teach the bench to rebuild it")
        unique = "UNIQUE " if ix["unique"] else ""
        out[ix["name"]] = f"CREATE {unique}INDEX {ix['name']} ON trajectories ({', '.join(cols)})"
    return out


def set_indexes(store: Store, indexes: dict[str, str], present: bool) -> None:
    for name, create in indexes.items():
        sql = create if present else f"DROP INDEX {name}"
        store.write(lambda s, sql=sql: s.execute(text(sql)))
    store.write(lambda s: s.execute(text("ANALYZE")))  # both SQLite and PostgreSQL


def bench_export(store: Store, raw_path: Path | None) -> tuple[float, float | None, int]:
    t = time.perf_counter()
    segs = sum(len(tr.segments) for tr in store.iter_trajectories(batch_size=500))
    rate = segs / (time.perf_counter() - t)
    raw = None
    if raw_path is not None:
        con = sqlite3.connect(raw_path)
        t = time.perf_counter()
        n = sum(1 for _ in con.execute(
            "SELECT trajectory_id, position, kind, source, text, meta, closed FROM segments"))
        raw = n / (time.perf_counter() - t)
        con.close()
    return rate, raw, segs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="trajectories (default 100,000)")
    ap.add_argument("--segments", type=int, default=20, help="segments per trajectory")
    ap.add_argument("--url", help="database URL (default: a new SQLite file in a temp dir); "
                                  "its startui tables must be empty")
    ap.add_argument("--repeat", type=int, default=200, help="timed runs per queue query")
    ap.add_argument("--live", type=int, default=100, help="trajectories through the Recorder")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench_store_"))
    url = args.url or f"sqlite:///{tmp / 'bench.sqlite'}"
    raw_path = tmp / "bench.sqlite" if not args.url else None
    store = Store(url)
    print(f"store: {store!r}; {args.n:,} trajectories x {args.segments} segments",
          file=sys.stderr)

    ins = bench_insert(store, args.n, args.segments)
    raw_ins = bench_raw_insert(tmp, min(args.n * args.segments, 400_000)) if raw_path else None
    live = bench_recorder(store, args.live, args.segments)
    store.write(lambda s: s.execute(text("ANALYZE")))  # both SQLite and PostgreSQL
    stats_ms = timed(store.stats, 3)
    stats = store.stats()
    count_ms = timed(lambda: store.count_trajectories(), 20)

    # with and without the same indexes, the same queries the same number of times, each after
    # ANALYZE; the indexes dropped are exactly the ones present, and they are made again
    indexes = trajectory_indexes(store)
    with_ix = bench_queue(store, args.repeat)
    set_indexes(store, indexes, present=False)
    assert not trajectory_indexes(store), "an index of trajectories survived the drop"
    without = bench_queue(store, args.repeat)
    set_indexes(store, indexes, present=True)
    assert trajectory_indexes(store) == indexes, "the indexes came back different"

    exp, raw_exp, n_exp = bench_export(store, raw_path)
    where = (f"SQLite file {(tmp / 'bench.sqlite').stat().st_size / 2**20:,.0f} MiB"
             if raw_path else store._engine.dialect.name)

    print(f"\n## Store benchmark: {args.n:,} trajectories, {stats['segments']:,} segments, "
          f"{where}\n")
    print(f"- bulk insert (save_trajectories, 1000/transaction): {ins['traj_per_s']:,.0f} "
          f"trajectories/s = {ins['seg_per_s']:,.0f} segments/s ({ins['seconds']:.0f} s)")
    if raw_ins:
        print(f"  - baseline raw sqlite3.executemany into an unindexed table: {raw_ins:,.0f} "
              f"rows/s; store = {ins['seg_per_s'] / raw_ins:.2f}x of raw")
    print(f"- live path (Recorder, one fsync'd commit per segment): {live:,.0f} segments/s "
          f"({1000 / live:.1f} ms per segment)")
    print(f"- `SELECT count(*) FROM trajectories`: p50 {statistics.median(count_ms):.1f} ms; "
          f"`store.stats()` (what `startui stats` prints): {statistics.median(stats_ms):.0f} ms")
    print(f"\nreview-queue queries, a page of 50, {args.repeat} timed runs each, with and "
          f"without the {len(indexes)} secondary indexes of trajectories "
          f"({', '.join(sorted(indexes))}):\n")
    print("| query | p50 ms | p95 ms | p50 without | p95 without | speed-up p50 / p95 |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, (p50, p95) in with_ix.items():
        b50, b95 = without[name]
        print(f"| {name} | {p50:.2f} | {p95:.2f} | {b50:.1f} | {b95:.1f} | "
              f"{b50 / p50:.1f}x / {b95 / p95:.1f}x |")
    worst = max(p95 for _, p95 in with_ix.values())
    print(f"\nworst p95 {worst:.2f} ms (goal < 50 ms): {'OK' if worst < 50 else 'MISSED'}")
    line = f"- full-scan export (iter_trajectories): {exp:,.0f} segments/s ({n_exp:,} segments)"
    if raw_exp:
        line += f"; raw cursor over segments {raw_exp:,.0f} rows/s = {exp / raw_exp:.2f}x of raw"
    print(line)
    store.close()


if __name__ == "__main__":
    main()
