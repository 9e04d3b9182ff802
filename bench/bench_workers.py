"""Benchmark of many workers on one batch run (issue 13): does a second worker double the run?

    python bench/bench_workers.py                       # 48 tasks, concurrency 4 per worker
    python bench/bench_workers.py --tasks 96 --repeat 3
    python bench/bench_workers.py --url postgresql+psycopg://...   # that database (runs added)

One PostgreSQL store (by default a fresh database on the server of ``STARTUI_TEST_PG_URL``,
dropped afterwards). The same batch — ``--tasks`` text-only problems, one greedy trajectory each
(no hint, no code: no kernel is needed) — is run by real ``python -m startui generate``
processes on the scripted backend at ``--delay`` seconds per token per stream (a latency-bound
model: streams do not slow each other, as on a server with spare batch slots), each reply led
by ``--words`` words of reasoning:

1. one worker, ``--concurrency`` trajectories in flight;
2. two worker processes on a run of their own with the same tasks, each with the same
   concurrency, started together with the same command but for ``--worker-name``.

Throughput is tasks per second of the store's own timeline (first trajectory created → last
finished: what the workers did, without the ~2–3 s a Python process takes to start and import),
and of the wall clock from launch to the last exit. Ideal ratio 2; goal ≥ 1.8. Both arms
alternate ``--repeat`` times; the medians are printed, with the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from bench.standins import rft_problems, rft_respond  # noqa: E402
from startui.store import Store  # noqa: E402

ANCHOR = "<|im_start|>assistant\n"
WORDS = 100


def thinking_respond(prompt: str) -> str:
    """The scripted Hint-RFT model's reply led by ``STARTUI_BENCH_WORDS`` words of reasoning:
    a trajectory of a hundred-odd tokens instead of a dozen. Stateless and resumable like
    ``rft_respond`` (what the prompt already holds of the reply is not said again)."""
    words = int(os.environ.get("STARTUI_BENCH_WORDS", WORDS))
    filler = " ".join(f"step{i % 10}" for i in range(words))
    pos = prompt.rfind(ANCHOR) + len(ANCHOR)
    full = filler + " " + rft_respond(prompt[:pos])
    said = prompt[pos:]
    return full[len(said):] if full.startswith(said) else rft_respond(prompt)


def _fresh_database(server_url: str) -> tuple[str, Any]:
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    name = f"startui_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + "/" + name, (admin, name)


def _drop(handle: Any) -> None:
    admin, name = handle
    with admin.connect() as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def run_arm(url: str, problems: Path, script: Path, *, workers: int, concurrency: int,
            words: int, folder: Path) -> dict[str, Any]:
    run = f"w{workers}-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STARTUI_BENCH_WORDS": str(words)}
    cmd = [sys.executable, "-m", "startui", "generate", str(problems), "--run", run,
           "--backend", "scripted", "--model", str(script), "--samples", "0",
           "--greedy-baseline", "--concurrency", str(concurrency), "--db", url,
           "--no-progress", "--json"]
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    procs = [subprocess.Popen(cmd + ["--worker-name", f"bench-{i}"], cwd=folder, env=env,
                              text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(workers)]
    reports = []
    for p in procs:
        out, err = p.communicate(timeout=1800)
        if p.returncode != 0:
            raise SystemExit(f"a worker failed (exit {p.returncode}):\n{err[-3000:]}")
        reports.append(json.loads(out.splitlines()[-1]))
    wall = time.perf_counter() - t0
    engine = create_engine(url)
    with engine.connect() as c:
        first, last, n, finished = c.execute(text(
            "SELECT min(created_at), max(finished_at), count(*), "
            "count(*) FILTER (WHERE status = 'finished') FROM trajectories WHERE run_id = :r"),
            {"r": run}).one()
        dupes = c.execute(text("SELECT count(*) FROM run_tasks WHERE run_id = :r AND "
                               "(state != 'done' OR attempts != 1)"), {"r": run}).scalar()
    engine.dispose()
    timeline = (last - first).total_seconds()
    return {"workers": workers, "tasks": n, "finished": finished, "timeline": timeline,
            "wall": wall, "rate": n / timeline, "wall_rate": n / wall,
            "per_worker": [r["finished"] for r in reports], "not_once": dupes,
            "load": (load + os.getloadavg()[0]) / 2}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", help="a PostgreSQL URL to use (default: a fresh database on the "
                                  "server of STARTUI_TEST_PG_URL, dropped afterwards)")
    ap.add_argument("--tasks", type=int, default=48)
    ap.add_argument("--concurrency", type=int, default=4, help="per worker")
    ap.add_argument("--delay", type=float, default=0.02, help="seconds per token per stream")
    ap.add_argument("--words", type=int, default=WORDS, help="words of reasoning per reply")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    handle = None
    url = args.url
    if url is None:
        server = os.environ.get("STARTUI_TEST_PG_URL")
        if not server:
            raise SystemExit("give --url postgresql+psycopg://... or set STARTUI_TEST_PG_URL "
                             "(source /tmp/pg.env)")
        url, handle = _fresh_database(server)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            problems = folder / "problems.jsonl"
            problems.write_text("".join(
                json.dumps({"id": p.id, "question": p.question, "answer": p.answer}) + "\n"
                for p in rft_problems(args.tasks, source="bench-workers")))
            script = folder / "script.json"
            script.write_text(json.dumps({"respond": "bench.bench_workers:thinking_respond",
                                          "delay": args.delay}))
            with Store(url):
                pass  # the schema first, so the workers' clocks start on the same footing
            rows: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
            for _ in range(args.repeat):
                for workers in (1, 2):
                    r = run_arm(url, problems, script, workers=workers,
                                concurrency=args.concurrency, words=args.words, folder=folder)
                    rows[workers].append(r)
                    print(f"  {workers} worker(s): {r['tasks']} tasks ({r['finished']} "
                          f"finished, per worker {r['per_worker']}, {r['not_once']} not done "
                          f"exactly once) in {r['timeline']:.2f} s of store timeline "
                          f"({r['rate']:.2f}/s), {r['wall']:.2f} s wall ({r['wall_rate']:.2f}/s)"
                          f", load {r['load']:.1f}", flush=True)
    finally:
        if handle is not None:
            _drop(handle)
    one, two = rows[1], rows[2]

    def med(rs: list[dict[str, Any]], k: str) -> float:
        return statistics.median(r[k] for r in rs)

    tokens = args.words + 13
    print(f"\n### Many workers on one PostgreSQL run: {args.tasks} greedy tasks, ~{tokens} tokens "
          f"each at {args.delay * 1000:.0f} ms/token, concurrency {args.concurrency} per worker, "
          f"{args.repeat} repeat(s), load average {med(one + two, 'load'):.1f}\n")
    print("| workers | store timeline | throughput | wall (launch → exit) | wall throughput |")
    print("|---:|---:|---:|---:|---:|")
    for rs in (one, two):
        print(f"| {rs[0]['workers']} | {med(rs, 'timeline'):.2f} s | {med(rs, 'rate'):.2f}/s | "
              f"{med(rs, 'wall'):.2f} s | {med(rs, 'wall_rate'):.2f}/s |")
    ideal = args.tasks * tokens * args.delay / args.concurrency
    print(f"\nratio two / one: **{med(two, 'rate') / med(one, 'rate'):.2f}×** store timeline "
          f"(goal ≥ 1.8), {med(two, 'wall_rate') / med(one, 'wall_rate'):.2f}× wall; one "
          f"worker's latency bound ≈ {ideal:.1f} s")


if __name__ == "__main__":
    main()
