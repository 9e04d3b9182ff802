"""Benchmark of batch Hint-infer at scale (issue 13): do kernels bind, or the model?

    python bench/bench_generate.py                  # the whole table (a few minutes)
    python bench/bench_generate.py --quick          # concurrency 1 and 8 only
    python bench/bench_generate.py --server-only    # only the server rows (2.)
    python bench/bench_generate.py --scripted-only  # only the in-process rows (1.)

Every row runs the same kind of batch — problems × (a greedy baseline + one hinted trajectory
with one hint round: think → hint → code → real kernel → answer) — through
``startui.rft.generate.Batch`` into a SQLite store, with a kernel pool built as
``python -m startui generate`` builds it (see :func:`pool_for`), and counts finished
trajectories per second of wall time.

1. The scripted backend in-process, instant (what startui and the kernels cost) and at 50 ms
   per token per stream, at concurrency 1, 8, 32 and 64; the ratio to concurrency 1 in the same
   run. A reference row runs the pool as it was before this work (every kernel started from
   scratch, one boot at a time, the pool sized to the concurrency).
2. An OpenAI-compatible completions server in its own process (bench/standins.py
   ``serve_completions``: the same scripted replies, one word-token every 50 ms per stream)
   through startui's openai backend, at concurrency 1, 8, 32 and 64. Ideal throughput is the
   latency bound: ``concurrency / (tokens streamed per trajectory × 50 ms)``, from the tokens
   the server counted; the figure is measured / ideal (goal ≥ 0.85 at 32 and 64), end to end
   and "steady" (trajectories finished in the middle half of the run: a finite batch of mixed
   lengths leaves slots idle at its end, however fast the executor). Twice: the
   script's replies as they are (~16 tokens a trajectory: a trajectory every 0.8 s per slot,
   which measures startui's cost per trajectory), and with ``--think-words`` (100) words of
   reasoning before each prose reply (~200 tokens a trajectory, still short of a real one).
3. Kernel memory per trajectory in flight: the PSS and USS of the kernels held by trajectories
   (sampled every 0.25 s during the concurrency-64 server row) and of idle, warm ones.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from standins import rft_backend, rft_problems, serve_completions  # noqa: E402

from startui.infer.backends.openai import OpenAIBackend  # noqa: E402
from startui.infer.hints import HintPolicy  # noqa: E402
from startui.infer.kernels import KernelPool, process_memory  # noqa: E402
from startui.rft.generate import Batch, BatchConfig  # noqa: E402
from startui.store import Store  # noqa: E402

DELAY = 0.05


def pool_for(concurrency: int, *, before: bool = False) -> KernelPool:
    """The generate command's pool: a few warm kernels, the rest booted for the trajectories
    in flight. ``before``: as it was (each kernel from scratch, one boot at a time, ``size`` =
    the concurrency)."""
    if before:
        return KernelPool(size=concurrency, timeout=30, fork=False, boots=1)
    return KernelPool(size=min(concurrency, os.cpu_count() or 1), timeout=30)


class MemorySampler:
    def __init__(self, pool: KernelPool) -> None:
        self.pool = pool
        self.busy: list[dict[str, int]] = []
        self.idle: list[dict[str, int]] = []

    async def run(self) -> None:
        while True:
            for kernels, into in ((list(self.pool._busy), self.busy),
                                  (list(self.pool._warm), self.idle)):
                into += [m for m in (process_memory(k.pid) for k in kernels if k.pid) if m]
            await asyncio.sleep(0.25)

    def summary(self, which: str) -> str:
        rows = getattr(self, which)
        if not rows:
            return "-"
        mb = 1 << 20
        return (f"PSS {statistics.median(r['pss'] for r in rows) / mb:.1f} MiB, "
                f"USS {statistics.median(r['uss'] for r in rows) / mb:.1f} MiB "
                f"({len(rows)} samples)")


def steady_rate(finished_at: list[float], start: float, wall: float) -> float:
    """Trajectories finished per second over the middle half of the run: what the batch does
    with its trajectories in flight, without the ramp-up and the last stragglers (a finite batch
    of mixed lengths leaves slots idle at its end, however fast the executor)."""
    lo, hi = start + wall / 4, start + 3 * wall / 4
    return sum(lo <= t < hi for t in finished_at) / (hi - lo)


async def one_batch(tmp: Path, tag: str, concurrency: int, backend, *, before: bool = False,
                    sample_memory: bool = False, per_slot: int = 2) -> dict:
    problems = max(24, per_slot * concurrency)
    store = Store(f"sqlite:///{tmp / f'{tag}.sqlite'}")
    probs = rft_problems(problems, source=f"bench-{tag}")
    store.upsert_problems(probs)
    sampler = None
    try:
        async with pool_for(concurrency, before=before) as pool:
            cfg = BatchConfig(run=tag, samples=1, greedy_baseline=True, concurrency=concurrency)
            finished_at: list[float] = []
            done = [0]

            def progress(report) -> None:
                if report.finished > done[0]:
                    finished_at.extend([time.perf_counter()] * (report.finished - done[0]))
                    done[0] = report.finished

            batch = Batch(store, backend, pool, cfg, policy=HintPolicy(rounds=1),
                          on_progress=progress)
            task = None
            if sample_memory:
                sampler = MemorySampler(pool)
                task = asyncio.ensure_future(sampler.run())
            t = time.perf_counter()
            report = await batch.run(probs)
            wall = time.perf_counter() - t
            if task is not None:
                task.cancel()
            booted = pool.booted
    finally:
        store.close()
    assert report.finished == 2 * problems, report.summary()
    return {"n": report.finished, "rate": report.finished / wall, "wall": wall,
            "steady": steady_rate(finished_at, t, wall), "booted": booted, "memory": sampler}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_for_port(port: int, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the completions server did not start on port {port}")


async def server_rows(tmp: Path, levels: list[int], *, think_words: int) -> MemorySampler | None:
    what = (f"{think_words} words of reasoning before every prose reply" if think_words
            else "the script's short replies")
    print(f"\n### 2. OpenAI-compatible server, {DELAY * 1000:.0f} ms per token per stream, "
          f"{what}\n")
    spawn = multiprocessing.get_context("spawn")
    port = free_port()
    counter = spawn.Value("q", 0)
    server = spawn.Process(target=serve_completions, args=(port, DELAY, counter, think_words),
                           daemon=True)
    server.start()
    memory = None
    try:
        await wait_for_port(port)
        print("| concurrency | trajectories | trajectories/s, end to end | steady (middle half) | "
              "tokens per trajectory | ideal trajectories/s | end to end / ideal | "
              "steady / ideal |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for c in levels:
            backend = OpenAIBackend("rft-script", base_urls=[f"http://127.0.0.1:{port}/v1"])
            before = counter.value
            r = await one_batch(tmp, f"http{think_words}-c{c}", c, backend,
                                sample_memory=c == levels[-1], per_slot=3)
            tokens = (counter.value - before) / r["n"]
            ideal = c / (tokens * DELAY)
            print(f"| {c} | {r['n']} | {r['rate']:.2f} | {r['steady']:.2f} | {tokens:.1f} | "
                  f"{ideal:.2f} | {r['rate'] / ideal:.2f} | {r['steady'] / ideal:.2f} |",
                  flush=True)
            memory = r["memory"] or memory
    finally:
        server.kill()
    return memory


async def main_async(args) -> None:
    levels = [1, 8] if args.quick else [1, 8, 32, 64]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        print(f"load average at start: {os.getloadavg()[0]:.2f}; {os.cpu_count()} cores\n")
        if args.server_only:
            await server_rows(tmp, levels, think_words=0)
            await server_rows(tmp, [c for c in levels if c > 1], think_words=args.think_words)
            return
        print("### 1. Scripted backend, in-process\n")
        print("| model | pool | concurrency | trajectories | trajectories/s | wall s | "
              "vs concurrency 1 | kernels booted |")
        print("|---|---|---:|---:|---:|---:|---:|---:|")
        for delay in (0.0, DELAY):
            label = "instant" if delay == 0 else f"{delay * 1000:.0f} ms/token/stream"
            rows = [(c, False) for c in levels]
            if delay == 0:
                rows = [(1, True), (8, True), *rows]
            base: dict[bool, float] = {}
            for c, before in rows:
                r = await one_batch(tmp, f"s{delay}-c{c}-{before}", c, rft_backend(delay=delay),
                                    before=before)
                base.setdefault(before, r["rate"])
                pool = "before (from scratch, 1 boot at a time)" if before else "now"
                print(f"| {label} | {pool} | {c} | {r['n']} | {r['rate']:.2f} | {r['wall']:.1f} | "
                      f"{r['rate'] / base[before]:.2f}x | {r['booted']} |", flush=True)

        if args.scripted_only:
            return
        memory = await server_rows(tmp, levels, think_words=0)
        if not args.quick:
            await server_rows(tmp, [c for c in levels if c > 1], think_words=args.think_words)
        if memory is not None:
            print(f"\n### 3. Kernel memory (concurrency {levels[-1]}, server row)\n")
            print(f"- a kernel held by a trajectory: {memory.summary('busy')}")
            print(f"- an idle, warm kernel: {memory.summary('idle')}")
        print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")


def main() -> None:
    # the openai backend says once per backend that the stand-in server has no chat template
    logging.getLogger("startui.infer.backends").setLevel(logging.ERROR)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="concurrency 1 and 8 only")
    ap.add_argument("--server-only", action="store_true", help="only the server rows (2.)")
    ap.add_argument("--scripted-only", action="store_true", help="only the in-process rows (1.)")
    ap.add_argument("--think-words", type=int, default=100,
                    help="the realistic-length server rows: words of reasoning per prose reply")
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
