"""Twenty visitors streaming at once for a minute: no errors, every run stored, and the
latencies (time to first update, run duration) printed and, at the end of the session, written to
bench/RESULTS.md with the fault suite's figures (tests/faults/conftest.py).

Each visitor is a gradio_client in its own thread, starting runs back to back. The model is the
scripted one streaming text (no cells: twenty kernels booting one after another on a small
machine would measure the kernel pool, which bench/bench_kernels.py does).
"""

from __future__ import annotations

import os
import statistics
import threading
import time

import pytest

from tests.faults import ledger
from tests.faults.support import launch_app, question, settings, short_id, texts

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

VISITORS = 20
SECONDS = float(os.environ.get("STARTUI_FAULT_SECONDS", "60"))
WORDS = 150  # pieces of thinking per run
DELAY = 0.005  # seconds per piece: 0.75 s of generation per run


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def one_run(client, q: str) -> tuple[float, float, float, str]:
    """(time to first update, to first streamed text, whole run, status line) of one run."""
    start = time.perf_counter()
    job = client.submit(q, *settings(), api_name="/run")
    first = text = None
    while not job.done():
        outs = job.outputs()
        now = time.perf_counter()
        if outs and first is None:
            first = now - start
        if outs and text is None and len(outs[-1][0]) > 1 and texts(outs[-1][0])[1].strip():
            text = now - start
        if first is not None and text is not None:
            break
        time.sleep(0.005)
    chat, status, _ = job.result(timeout=120)
    total = time.perf_counter() - start
    assert "finished" in status, status
    assert texts(chat)[-1].strip().endswith("Final answer: $1$"), texts(chat)[-1]
    return first if first is not None else total, text if text is not None else total, total, \
        status


@pytest.mark.fault("20 visitors streaming for a minute")
def test_twenty_visitors_stream_for_a_minute(tmp_path, fault):
    from gradio_client import Client

    app = launch_app(tmp_path / "load.sqlite", delay=DELAY, concurrency=VISITORS)
    try:
        alone = [one_run(app.visitor, question(tag="alone", words=WORDS)) for _ in range(3)]
        clients = [Client(app.url, verbose=False) for _ in range(VISITORS)]
        results: list[tuple[float, float, float, str]] = []
        errors: list[str] = []
        lock = threading.Lock()
        go = threading.Barrier(VISITORS)
        end = 0.0

        def visitor(i: int) -> None:
            nonlocal end
            if go.wait() == 0:
                end = time.monotonic() + SECONDS
            go.wait()  # once the end is set
            n = 0
            while time.monotonic() < end:
                n += 1
                try:
                    r = one_run(clients[i], question(tag=f"visitor {i} run {n}", words=WORDS))
                except Exception as e:  # noqa: BLE001 - every error is counted, then asserted
                    with lock:
                        errors.append(f"visitor {i} run {n}: {type(e).__name__}: {e}")
                    continue
                with lock:
                    results.append(r)

        threads = [threading.Thread(target=visitor, args=(i,)) for i in range(VISITORS)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(SECONDS + 180)
        elapsed = time.monotonic() - started
        assert not any(t.is_alive() for t in threads), "a visitor hung"
        stored = {s.id[:12]: s.status for s in app.store.list_trajectories(limit=100_000)}
        ids = [short_id(status) for *_, status in results]
        missing = [i for i in ids if stored.get(i) != "finished"]
    finally:
        app.close()

    ttfu = [r[0] for r in results]
    ttft = [r[1] for r in results]
    runs = [r[2] for r in results]
    figures = {
        "visitors": VISITORS, "seconds": elapsed, "pieces": WORDS + 5, "delay": DELAY,
        "runs": len(results), "errors": len(errors), "stored": len(ids) - len(missing),
        "ttfu_p50": percentile(ttfu, 50), "ttfu_p95": percentile(ttfu, 95),
        "ttfu_max": max(ttfu), "ttft_p50": percentile(ttft, 50),
        "ttft_p95": percentile(ttft, 95), "run_p50": percentile(runs, 50),
        "run_p95": percentile(runs, 95), "run_max": max(runs),
        "alone": statistics.median(r[0] for r in alone),
        "alone_text": statistics.median(r[1] for r in alone),
        "alone_run": statistics.median(r[2] for r in alone),
    }
    print(f"\n{VISITORS} visitors for {elapsed:.0f} s: {len(results)} runs, {len(errors)} errors; "
          f"time to first update p50 {figures['ttfu_p50'] * 1000:.0f} ms, p95 "
          f"{figures['ttfu_p95'] * 1000:.0f} ms; to first text p50 "
          f"{figures['ttft_p50'] * 1000:.0f} ms, p95 {figures['ttft_p95'] * 1000:.0f} ms; run "
          f"p50 {figures['run_p50']:.2f} s, p95 {figures['run_p95']:.2f} s (alone: first update "
          f"{figures['alone'] * 1000:.0f} ms, run {figures['alone_run']:.2f} s)")
    ledger.figures.update(figures)
    ledger.record(fault, what=f"{len(results)} runs, {len(errors)} errors, {len(missing)} "
                              "not stored", lost=len(missing))
    assert not errors, errors[:5]
    assert not missing, missing[:5]
    assert len(results) >= VISITORS * 5
