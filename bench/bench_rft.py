"""Benchmark of Hint-RFT: batch Hint-infer throughput, and export on a large store.

    python bench/bench_rft.py                      # 100,000-trajectory store (several minutes)
    python bench/bench_rft.py --n 10000            # quick run
    python bench/bench_rft.py --skip-export        # only the batch part

1. Batch throughput: the same batch (``--problems`` problems × a greedy baseline and a hinted
   trajectory with one hint round: think → hint → code → kernel → answer) with the scripted
   backend, at concurrency 1 and at ``--concurrency``, each with a kernel pool sized to it.
   Twice: an instant model (``delay 0``: what the batch machinery and the kernels cost) and a
   model with a per-token latency (``--delay``, default 50 ms per token per stream, the
   embedded CPU model's 20 tokens/s: a server streaming to every trajectory at once, whose
   latency concurrency should hide). Reports trajectories/s, the ratio to concurrency 1 in
   the same run, and kernel-pool utilisation (kernel-seconds held by trajectories / wall ×
   pool size).
2. Export: a synthetic store of ``--n`` trajectories × 20 segments (bench_store.py's
   generator), rule scores for every finished one (70% correct), then ``select`` over all of
   them (filters run on every finished trajectory) and ``export`` to JSONL + Parquet + datasets.
   Baseline in the same run: the store's plain full scan (``iter_trajectories``).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_store import synthetic  # noqa: E402
from standins import rft_backend, rft_problems  # noqa: E402

from startui.answers import SCORER  # noqa: E402
from startui.infer.hints import HintPolicy  # noqa: E402
from startui.infer.kernels import Kernel, KernelPool  # noqa: E402
from startui.rft import select as rft  # noqa: E402
from startui.rft.export import ExportConfig, export  # noqa: E402
from startui.rft.generate import Batch, BatchConfig  # noqa: E402
from startui.rft.select import SelectConfig  # noqa: E402
from startui.store import Store  # noqa: E402
from startui.store.models import ScoreRow, TrajectoryRow  # noqa: E402


async def one_batch(tmp: Path, problems: int, concurrency: int, delay: float,
                    tag: str) -> dict[str, float]:
    store = Store(f"sqlite:///{tmp / f'batch-{tag}.sqlite'}")
    probs = rft_problems(problems, source=f"bench-{tag}")
    store.upsert_problems(probs)
    try:
        async with KernelPool(size=concurrency, timeout=30) as pool:
            cfg = BatchConfig(run=tag, samples=1, greedy_baseline=True, concurrency=concurrency)
            batch = Batch(store, rft_backend(delay=delay), pool, cfg,
                          policy=HintPolicy(rounds=1))
            t = time.perf_counter()
            report = await batch.run(probs)
            wall = time.perf_counter() - t
    finally:
        store.close()
    assert report.finished == 2 * problems, report.summary()
    return {"rate": report.finished / wall, "wall": wall,
            "utilisation": report.kernel_utilisation, "exec_s": report.kernel_seconds}


async def kernel_boot_seconds(n: int = 3) -> float:
    """What one fresh kernel costs: every hinted trajectory uses (and discards) one, and the
    pool boots its replacements one at a time."""
    times = []
    for _ in range(n):
        t = time.perf_counter()
        kernel = await Kernel.start()
        times.append(time.perf_counter() - t)
        await kernel.shutdown()
    return statistics.median(times)


async def bench_batch(tmp: Path, problems: int, concurrency: int, delay: float) -> None:
    boot = await kernel_boot_seconds()
    print(f"\n### Batch: {problems} problems x (greedy + hinted) = {2 * problems} "
          "trajectories, scripted backend, real kernels\n")
    print(f"A kernel boots in {boot:.2f} s here (median of 3). Every hinted trajectory uses a "
          "fresh kernel and the pool boots replacements one at a time (the pool's first "
          f"`size` kernels boot before the clock starts), so about {1 / boot:.1f} hinted "
          "trajectories/s is the ceiling once the warm kernels are used up.\n")
    print("| model latency | concurrency | trajectories/s | wall s | vs concurrency 1 | "
          "kernel pool utilisation |")
    print("|---|---:|---:|---:|---:|---:|")
    for d in (0.0, delay):
        base = None
        for c in (1, concurrency):
            r = await one_batch(tmp, problems, c, d, f"d{d}-c{c}")
            base = base or r["rate"]
            label = "instant" if d == 0 else f"{d * 1000:.0f} ms/token/stream"
            print(f"| {label} | {c} | {r['rate']:.2f} | {r['wall']:.1f} | "
                  f"{r['rate'] / base:.2f}x | {r['utilisation']:.0%} |", flush=True)


def add_scores(store: Store) -> int:
    """A rule score for every finished trajectory (70% correct), inserted in bulk."""
    rng = random.Random(3)
    with store.read() as s:
        rows = s.execute(select(TrajectoryRow.id, TrajectoryRow.version)
                         .where(TrajectoryRow.status == "finished")).all()
    for i in range(0, len(rows), 5000):
        chunk = [{"trajectory_id": tid, "scorer": SCORER, "correct": rng.random() < 0.7,
                  "value": None, "detail": {}, "trajectory_version": v}
                 for tid, v in rows[i:i + 5000]]
        store.write(lambda s, chunk=chunk: s.execute(insert(ScoreRow), chunk))
    return len(rows)


def bench_export(tmp: Path, n: int) -> None:
    store = Store(f"sqlite:///{tmp / 'export.sqlite'}")
    t = time.perf_counter()
    gen = synthetic(n, 20)
    while batch := [t for _, t in zip(range(1000), gen, strict=False)]:
        store.save_trajectories(batch, batch_size=1000)
    scored = add_scores(store)
    print(f"\n### Export: {n:,} trajectories x 20 segments ({scored:,} finished and scored), "
          f"built in {time.perf_counter() - t:.0f} s\n", flush=True)
    runs = [f"run-{i}" for i in range(10)]

    t = time.perf_counter()
    segs = sum(len(tr.segments) for tr in store.iter_trajectories(batch_size=500))
    scan = time.perf_counter() - t
    print(f"- baseline, the store's full scan (`iter_trajectories`): {n / scan:,.0f} "
          f"trajectories/s ({segs:,} segments in {scan:.1f} s)")

    t = time.perf_counter()
    sel = rft.select(store, runs, SelectConfig(dataset="start", per_problem=10_000))
    dt = time.perf_counter() - t
    r = sel.report
    print(f"- `select` (load + 6 filter rules + scores + reviews, every trajectory): "
          f"{r.trajectories / dt:,.0f} trajectories/s ({dt:.1f} s; {r.selected:,} selected, "
          f"dropped {sum(r.dropped.values()):,}: "
          + ", ".join(f"{k} {v:,}" for k, v in sorted(r.dropped.items())) + ")")

    for label, cfg, per in (("JSONL + Parquet + datasets, all correct", ExportConfig(), 10_000),
                            ("JSONL only, all correct", ExportConfig(formats=("jsonl",)), 10_000),
                            ("D_START (1 per problem), all formats", ExportConfig(), 1)):
        out = tmp / f"out-{per}-{len(cfg.formats)}"
        t = time.perf_counter()
        res = export(store, out, runs, select_config=SelectConfig(per_problem=per), config=cfg)
        dt = time.perf_counter() - t
        rows = res.manifest["counts"]["rows"]
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
        w = res.seconds["write"]
        print(f"- export, {label}: {rows:,} rows, {dt:.1f} s end to end = selection "
              f"{res.seconds['select']:.1f} s + load, modify and write {w:.1f} s "
              f"({rows / w:,.0f} rows/s, {size / w:,.1f} MiB/s; {size:,.0f} MiB written)",
              flush=True)
    store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="trajectories in the export store")
    ap.add_argument("--problems", type=int, default=24, help="problems in the batch")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--delay", type=float, default=0.05,
                    help="seconds per token in the latency run (0.05: 20 tokens/s per stream, "
                         "the embedded CPU model's speed)")
    ap.add_argument("--skip-batch", action="store_true")
    ap.add_argument("--skip-export", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_rft_"))
    print(f"## Hint-RFT benchmark (temp dir {tmp})")
    if not args.skip_batch:
        asyncio.run(bench_batch(tmp, args.problems, args.concurrency, args.delay))
    if not args.skip_export:
        bench_export(tmp, args.n)


if __name__ == "__main__":
    main()
