"""Benchmark of the Dataset tab's draw (issue 12) and of Hint-RFT selection (issue 13) on a
store of 100,000 trajectories.

    python bench/bench_dataset.py                  # 100,000 trajectories x 20 segments
    python bench/bench_dataset.py --n 10000        # quick run
    python bench/bench_dataset.py --db /tmp/d.sqlite   # build there once, reuse on later runs

The store: bench_store.py's synthetic generator (``--segments`` 20 per trajectory, 10 runs,
n/10 problems, a fifth of them code) on the bulk path; a rule score for every finished
trajectory (70% correct, bench_rft.py's); a review campaign "agree" (the finished trajectories,
one per problem, overlap 2, 20 reviewers) decided in bulk by two reviewers per item with step
labels on a tenth (bench_campaign.py's ``fill``), its votes spread over ``--days`` days.

Timed: what the tab does when it is opened and when its filters change
(``startui/ui/dataset.py``'s ``on_dashboards``): ``dashboard.gather(store, None)`` (every run) and
``dashboard.figures``, and apart the figures' JSON (what Gradio sends to the browser).
- **cold**: no digests stored yet, the one-time backfill (every trajectory's text read once);
- **warm**: ``--repeat`` draws after it (the goal: under 2 s at 100,000);
- **old**: the same draw from every trajectory's text (``from_text=True``: the code before the
  digests), once; ``--skip-text`` leaves it out;
- ``select`` (D_START, every run): warm, and from text.
Baselines from the same run: ``SELECT count(*) FROM trajectories`` and a raw DB-API scan of every
row and column of the trajectories table (no objects). The load average is printed: the
machine is shared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import case, func, select, text, update

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_campaign import REVIEWERS, build, fill  # noqa: E402
from bench_rft import add_scores  # noqa: E402

from startui.review import campaigns  # noqa: E402
from startui.rft import dashboard  # noqa: E402
from startui.rft.select import SelectConfig  # noqa: E402
from startui.rft.select import select as rft_select  # noqa: E402
from startui.store import Store  # noqa: E402
from startui.store.models import (  # noqa: E402
    ReviewRow,
    ScoreRow,
    TrajectoryDigestRow,
    TrajectoryRow,
)
from startui.store.queue import QueueFilter  # noqa: E402


def load() -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def prepare(store: Store, n: int, segments: int, days: int) -> str:
    """Build the store (see the module docstring) unless it is there already."""
    with store.read() as s:
        have = s.scalar(select(func.count()).select_from(TrajectoryRow))
    if have:
        if have != n:
            raise SystemExit(f"the store has {have:,} trajectories, not {n:,}: give another --db")
        return f"reused ({have:,} trajectories)"
    t = time.perf_counter()
    build(store, n, segments)
    add_scores(store)
    # the rule verdict the review queue and the funnel count, as add_score keeps it
    verdict = (select(case((ScoreRow.correct, "correct"), else_="wrong"))
               .where(ScoreRow.trajectory_id == TrajectoryRow.id).scalar_subquery())
    store.write(lambda s: s.execute(update(TrajectoryRow).where(TrajectoryRow.status == "finished")
                                    .values(verdict=verdict)))
    campaigns.create_campaign(store, "agree", by="root", filter=QueueFilter(review_status=None),
                              per_problem=1, overlap=2, reviewers=REVIEWERS)
    fill(store, "agree")
    c = campaigns.get_campaign(store, "agree")
    with store.read() as s:  # spread the votes over `days` days: the curve gets a point a day
        ids = list(s.scalars(select(ReviewRow.id).where(ReviewRow.campaign_id == c.id)
                             .order_by(ReviewRow.id)))
    per, now = -(-len(ids) // max(1, days)), datetime.now(UTC)
    for d in range(days):
        for i in range(d * per, min(len(ids), (d + 1) * per), 5000):
            chunk = ids[i:min(i + 5000, (d + 1) * per)]
            store.write(lambda s, chunk=chunk, back=days - 1 - d: s.execute(
                update(ReviewRow).where(ReviewRow.id.in_(chunk))
                .values(created_at=now - timedelta(days=back))
                .execution_options(synchronize_session=False)))
    store.write(lambda s: s.execute(text("ANALYZE")))
    return f"built in {time.perf_counter() - t:.0f} s"


def draw(store: Store, **kw) -> tuple[float, float, float, float, dashboard.Dashboard]:
    """(gather s, figures s, figures' JSON s, CPU s of this process for gather + figures, the
    dashboard)."""
    c, t = time.process_time(), time.perf_counter()
    d = dashboard.gather(store, None, **kw)
    t1 = time.perf_counter()
    figs = dashboard.figures(d)
    t2, c2 = time.perf_counter(), time.process_time()
    for f in figs.values():
        f.to_json()
    return t1 - t, t2 - t1, time.perf_counter() - t2, c2 - c, d


def baselines(store: Store, repeat: int) -> tuple[float, float]:
    counts, scans = [], []
    for _ in range(repeat):
        with store.read() as s:
            t = time.perf_counter()
            s.execute(text("SELECT count(*) FROM trajectories")).scalar()
            counts.append(time.perf_counter() - t)
            cur = s.connection().connection.cursor()  # the DB-API cursor: no SQLAlchemy rows
            t = time.perf_counter()
            cur.execute("SELECT * FROM trajectories")
            rows = cur.fetchall()
            scans.append(time.perf_counter() - t)
            cur.close()
            assert rows
    return statistics.median(counts), statistics.median(scans)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="trajectories (default 100,000)")
    ap.add_argument("--segments", type=int, default=20, help="segments per trajectory")
    ap.add_argument("--days", type=int, default=5, help="days the campaign's votes span")
    ap.add_argument("--db", help="SQLite file to build (or reuse: digests are dropped first)")
    ap.add_argument("--url", help="another database URL (its startui tables must be empty)")
    ap.add_argument("--repeat", type=int, default=5, help="warm draws timed")
    ap.add_argument("--skip-text", action="store_true", help="leave out the old text path")
    args = ap.parse_args()

    url = args.url or (f"sqlite:///{Path(args.db).resolve()}" if args.db else
                       f"sqlite:///{Path(tempfile.mkdtemp(prefix='bench_dataset_')) / 'b.sqlite'}")
    store = Store(url)
    print(f"store: {store!r}; {args.n:,} trajectories x {args.segments} segments; {load()}",
          file=sys.stderr)
    how = prepare(store, args.n, args.segments, args.days)
    store.write(lambda s: s.execute(TrajectoryDigestRow.__table__.delete()))  # cold means cold
    with store.read() as s:
        finished = s.scalar(select(func.count()).select_from(TrajectoryRow)
                            .where(TrajectoryRow.status == "finished"))
    count0, scan0 = baselines(store, 3)
    print(f"prepared ({how}); {load()}", file=sys.stderr)

    *cold, _ = draw(store)
    print(f"cold draw done; {load()}", file=sys.stderr)
    with store.read() as s:
        digested = s.scalar(select(func.count()).select_from(TrajectoryDigestRow))
    warm = []
    for _ in range(args.repeat):  # the app keeps the latest dashboard only: so does this
        *times, d = draw(store)
        warm.append(times)
    total = [g + f + j for g, f, j, _ in warm]
    count1, scan1 = baselines(store, 3)
    count, scan = min(count0, count1), min(scan0, scan1)
    sel_t = []
    for _ in range(3):
        t = time.perf_counter()
        sel = rft_select(store, [r["id"] for r in store.list_runs()], SelectConfig())
        sel_t.append(time.perf_counter() - t)
    print(f"warm draws done; {load()}", file=sys.stderr)
    old = sel_old = None
    if not args.skip_text:
        *old, d_old = draw(store, from_text=True)
        assert d_old == d, "the text path drew something else"
        del d_old
        t = time.perf_counter()
        sel_old_ = rft_select(store, [r["id"] for r in store.list_runs()], SelectConfig(),
                              from_text=True)
        sel_old = time.perf_counter() - t
        assert sel_old_.ids == sel.ids and sel_old_.report == sel.report
    where = (f"SQLite file {Path(store.url.split(':///', 1)[1]).stat().st_size / 2**20:,.0f} "
             "MiB" if store.is_sqlite else store._engine.dialect.name)
    store.close()

    g50 = statistics.median(g for g, _, _, _ in warm)
    f50 = statistics.median(f for _, f, _, _ in warm)
    j50 = statistics.median(j for _, _, j, _ in warm)
    c50 = statistics.median(c for _, _, _, c in warm)
    w50, wmax = statistics.median(total), max(total)
    print(f"\n## Dataset tab: {args.n:,} trajectories x {args.segments} segments, {where}\n")
    print(f"{len(d.facts):,} finished trajectories in the figures, funnel {d.funnel}; "
          f"{d.selection.selected:,} selected (D_START); {len(d.agreement)} agreement points. "
          f"{digested:,} digests after the cold draw ({finished:,} finished). {load()} "
          "(2 cores, shared).\n")
    print("| draw (gather + figures) | gather s | figures s | total s | CPU s | "
          "+ figures' JSON s |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| cold: no digests yet (one-time backfill) | {cold[0]:.2f} | {cold[1]:.2f} | "
          f"{cold[0] + cold[1]:.2f} | {cold[3]:.2f} | {cold[2]:.2f} |")
    print(f"| warm, median of {args.repeat} | {g50:.2f} | {f50:.2f} | {g50 + f50:.2f} | "
          f"{c50:.2f} | {j50:.2f} |")
    print(f"| warm, slowest of {args.repeat} | | | {max(g + f for g, f, _, _ in warm):.2f} | "
          f"{max(c for _, _, _, c in warm):.2f} | |")
    if old is not None:
        print(f"| old: from every trajectory's text | {old[0]:.2f} | {old[1]:.2f} | "
              f"{old[0] + old[1]:.2f} | {old[3]:.2f} | {old[2]:.2f} |")
    print(f"\n- goal: warm draw under 2 s: {'OK' if g50 + f50 < 2 else 'MISSED'} "
          f"({g50 + f50:.2f} s median, {max(g + f for g, f, _, _ in warm):.2f} s slowest; with "
          f"the figures' JSON {w50:.2f} s median, {wmax:.2f} s slowest)")
    print(f"- baselines, same run: `SELECT count(*) FROM trajectories` {count * 1000:.1f} ms; "
          f"raw scan of every trajectories row (DB-API) {scan:.2f} s; warm draw = "
          f"{(g50 + f50) / scan:.1f}x the raw scan")
    print(f"- `select` (D_START, every run) warm: median {statistics.median(sel_t):.2f} s"
          + (f"; from text: {sel_old:.2f} s ({sel_old / statistics.median(sel_t):.0f}x); same "
             "ids and report" if sel_old is not None else ""))
    if old is not None:
        print(f"- the digests' draw equals the text path's (asserted); warm is "
              f"{(old[0] + old[1]) / (g50 + f50):.0f}x faster than the old draw")


if __name__ == "__main__":
    main()
