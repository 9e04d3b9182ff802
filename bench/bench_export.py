"""Benchmark of the Hint-RFT export at store speed (issue 13).

    python bench/bench_export.py                          # 100,000 trajectories (~2 min to build)
    python bench/bench_export.py --n 10000                # quick run
    python bench/bench_export.py --db /tmp/x.sqlite       # keep the built store, reuse it next time
    python bench/bench_export.py --n 10000 --url postgresql+psycopg://...  # an empty database

The store is bench_rft.py's export store: bench_store.py's synthetic generator (``--n``
trajectories x 20 segments, 10 runs) and a rule score for every finished trajectory (70%
correct). A ``--db`` that already holds trajectories is reused as it is.

Measured, each against a baseline from the same run:

- the raw scan: a plain DBAPI cursor over every row of ``segments`` (no objects built), the
  floor of anything that reads the text;
- selection (``rft.select`` over the 10 runs, every correct trajectory): the first time (digests
  computed where missing) and again (digests stored);
- the export of every correct trajectory to JSONL + Parquet, split into selection and write
  (load, modify and write the selected rows: the part this benchmark is about), and JSONL only.

Ratios: the write side's segments/s against the raw scan's rows/s.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_rft import add_scores  # noqa: E402
from bench_store import synthetic  # noqa: E402

from startui.rft import select as rft  # noqa: E402
from startui.rft.export import ExportConfig, export  # noqa: E402
from startui.rft.select import SelectConfig  # noqa: E402
from startui.store import Store  # noqa: E402
from startui.store.models import TrajectoryRow  # noqa: E402

RUNS = [f"run-{i}" for i in range(10)]
ALL_CORRECT = SelectConfig(dataset="start", per_problem=10_000)


def build(store: Store, n: int) -> float:
    t = time.perf_counter()
    gen = synthetic(n, 20)
    while batch := [tr for _, tr in zip(range(1000), gen, strict=False)]:
        store.save_trajectories(batch, batch_size=1000)
    add_scores(store)
    return time.perf_counter() - t


def raw_scan(url: str) -> tuple[int, float]:
    """(rows, seconds) of a plain cursor over the whole segments table."""
    engine = create_engine(url)
    con = engine.raw_connection()
    try:
        cur = con.cursor()
        t = time.perf_counter()
        cur.execute("SELECT trajectory_id, position, kind, source, text, meta, closed "
                    "FROM segments")
        n = 0
        while rows := cur.fetchmany(10_000):
            n += len(rows)
        return n, time.perf_counter() - t
    finally:
        con.close()
        engine.dispose()


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="trajectories (default 100,000)")
    ap.add_argument("--db", help="SQLite file to build (or reuse, when it holds trajectories)")
    ap.add_argument("--url", help="a database URL to build in (or reuse) instead of --db")
    ap.add_argument("--out", help="folder for the exports (default: a temp dir)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_export_"))
    url = args.url or f"sqlite:///{Path(args.db) if args.db else tmp / 'export.sqlite'}"
    out = Path(args.out) if args.out else tmp
    store = Store(url)
    with store.read() as s:
        have = s.scalar(select(func.count()).select_from(TrajectoryRow)) or 0
    print(f"## Export benchmark ({store!r}; load average {load()} at start)\n")
    if have:
        print(f"store reused: {have:,} trajectories (--n ignored)")
    else:
        print(f"store built: {args.n:,} trajectories x 20 segments in {build(store, args.n):.0f} s")
    n_traj = have or args.n

    rows, scan = raw_scan(url)
    rate = rows / scan
    print(f"- baseline, raw cursor over `segments`: {rows:,} rows in {scan:.2f} s "
          f"({rate:,.0f} rows/s)")

    for label in ("1st call (computes the digests the store lacks)", "2nd call"):
        t = time.perf_counter()
        sel = rft.select(store, RUNS, ALL_CORRECT)
        dt = time.perf_counter() - t
        print(f"- `select` {label}: {dt:.2f} s for {n_traj:,} trajectories "
              f"({n_traj / dt:,.0f}/s; {sel.report.selected:,} selected)")

    for label, cfg in (("JSONL + Parquet", ExportConfig(formats=("jsonl", "parquet"))),
                       ("JSONL only", ExportConfig(formats=("jsonl",)))):
        folder = out / f"out-{'-'.join(cfg.formats)}"
        t, cpu = time.perf_counter(), time.process_time()
        res = export(store, folder, RUNS, select_config=ALL_CORRECT, config=cfg)
        total, cpu = time.perf_counter() - t, time.process_time() - cpu
        n_rows = res.manifest["counts"]["rows"]
        segs = n_rows * rows / n_traj  # the synthetic store's trajectories are alike
        w = res.seconds["write"]
        mib = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20
        print(f"- export all correct, {label}: {n_rows:,} rows in {total:.1f} s end to end "
              f"(CPU {cpu:.1f} s) = "
              f"select {res.seconds['select']:.1f} s + write {w:.1f} s; write = load, modify "
              f"and write: {n_rows / w:,.0f} rows/s, {segs / w:,.0f} segments/s = "
              f"{segs / w / rate:.2f}x the raw scan's rate ({mib:,.0f} MiB)", flush=True)
    print(f"\nload average {load()} at the end; the goal: JSONL + Parquet of 100k in < 30 s")
    store.close()


if __name__ == "__main__":
    main()
