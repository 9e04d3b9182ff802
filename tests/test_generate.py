"""Batch Hint-infer: many trajectories in flight against real kernels and a real SQLite store,
resumable after a stop, a Ctrl-C or a killed process; and the analytics of what it produced."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import standins as rft_scripts
from startui import cli
from startui.infer.hints import HintPolicy
from startui.rft.analytics import category_table, collect, figures, mode_table, scaling_curve
from startui.rft.generate import Batch, BatchConfig, plan, reopen_cut_cell, trajectory_id
from startui.rft.select import score_run
from startui.store import Store
from startui.trajectory import Problem, Segment, Trajectory

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'batch.sqlite'}")
    yield s
    s.close()


def run_rows(store: Store, run: str) -> list[tuple[str, str, str, int]]:
    return sorted((t.id, t.status, t.settings["mode"], t.settings["sample"])
                  for t in store.iter_trajectories(run_id=run))


async def test_a_batch_runs_every_task_once_and_a_rerun_skips_them(store, pool):
    problems = rft_scripts.rft_problems(3)
    store.upsert_problems(problems)
    cfg = BatchConfig(run="b1", samples=2, greedy_baseline=True, concurrency=3, score=True)
    seen = []
    batch = Batch(store, rft_scripts.rft_backend(), pool, cfg, policy=HintPolicy(rounds=1),
                  on_progress=lambda r: seen.append(r.done))
    report = await batch.run(problems)
    assert (report.tasks, report.finished, report.errors, report.skipped) == (9, 9, 0, 0)
    assert (report.correct, report.wrong) == (6, 3)  # hinted right, greedy wrong
    assert seen[0] == 0 and seen[-1] == 9 and not report.interrupted
    assert 0 < report.kernel_utilisation <= 1
    rows = run_rows(store, "b1")
    expected = sorted((trajectory_id("b1", p.id, m, s), "finished", m, s)
                      for p in problems for m, s in (("greedy", 0), ("hinted", 0),
                                                     ("hinted", 1)))
    assert rows == expected
    greedy = store.load_trajectory(trajectory_id("b1", problems[0].id, "greedy", 0))
    assert greedy.settings["engine"]["temperature"] == 0.0 and greedy.hints == 0
    assert greedy.settings["hints"]["rounds"] == 0
    hinted = store.load_trajectory(trajectory_id("b1", problems[0].id, "hinted", 1))
    assert hinted.settings["engine"]["temperature"] == 0.6 and hinted.tool_calls == 1
    again = await Batch(store, rft_scripts.rft_backend(), pool, cfg,
                        policy=HintPolicy(rounds=1)).run(problems)
    assert (again.skipped, again.started, again.finished) == (9, 0, 0)
    assert store.count_trajectories(run_id="b1") == 9


async def test_a_stopped_batch_resumes_where_it_stopped_without_duplicates(store, pool):
    problems = rft_scripts.rft_problems(4)
    store.upsert_problems(problems)
    cfg = BatchConfig(run="b2", samples=1, greedy_baseline=True, concurrency=2)
    batch: Batch

    def stop_after_the_first(r):  # a greedy one: the hinted one beside it is twice as long
        if r.finished >= 1:
            batch.stop()

    batch = Batch(store, rft_scripts.rft_backend(delay=0.02), pool, cfg,
                  policy=HintPolicy(rounds=1), on_progress=stop_after_the_first)
    first = await batch.run(problems)
    assert first.interrupted and first.finished >= 1 and first.cancelled >= 1
    statuses = [s for _, s, _, _ in run_rows(store, "b2")]
    assert "running" not in statuses  # a consistent store: every row finished or cancelled
    assert statuses.count("cancelled") == first.cancelled
    second = await Batch(store, rft_scripts.rft_backend(delay=0.005), pool, cfg,
                         policy=HintPolicy(rounds=1)).run(problems)
    assert second.skipped == first.finished and second.resumed == first.cancelled
    assert second.finished == 8 - first.finished and not second.interrupted
    rows = run_rows(store, "b2")
    assert len(rows) == 8 and {s for _, s, _, _ in rows} == {"finished"}
    scored = await score_run(store, ["b2"], kernels=pool)
    assert (scored.correct, scored.wrong) == (4, 4)  # resumed ones end exactly as fresh ones
    for t in store.iter_trajectories(run_id="b2"):
        assert t.completion().count("\\boxed") == (1 if t.settings["mode"] == "greedy" else 2)


DRIVER = """
import asyncio, json, sys
sys.path.insert(0, {root!r})
from startui.rft.generate import Batch, BatchConfig
from startui.infer.hints import HintPolicy
from startui.infer.kernels import KernelPool
from startui.store import Store
from startui.trajectory import Problem, Segment, Trajectory
from bench import standins as rft_scripts

async def main():
    store = Store({url!r})
    problems = rft_scripts.rft_problems(6)
    store.upsert_problems(problems)
    cfg = BatchConfig(run="sig", samples=1, greedy_baseline=True, concurrency=2)
    async with KernelPool(size=2, timeout=10) as pool:
        batch = Batch(store, rft_scripts.rft_backend(delay={delay}), pool, cfg,
                      policy=HintPolicy(rounds=1))
        report = await batch.run(problems, handle_signals=True)
    store.close()
    print(json.dumps(report.to_dict()))
    return 130 if report.interrupted else 0

sys.exit(asyncio.run(main()))
"""


def _statuses(db: Path) -> dict[str, int]:
    if not db.exists():
        return {}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return dict(con.execute("SELECT status, count(*) FROM trajectories GROUP BY status"))
    except sqlite3.OperationalError:  # not migrated yet
        return {}
    finally:
        con.close()


def _driver(tmp_path: Path, delay: float) -> subprocess.Popen[str]:
    db = tmp_path / "sig.sqlite"
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(root=str(ROOT), url=f"sqlite:///{db}", delay=delay))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_finished(db: Path, n: int, proc: subprocess.Popen[str], limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while _statuses(db).get("finished", 0) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, _statuses(db)
        time.sleep(0.1)


def test_ctrl_c_and_a_killed_process_leave_a_store_the_next_run_finishes(tmp_path):
    db = tmp_path / "sig.sqlite"
    # 1. Ctrl-C: in-flight sessions stop, are saved as cancelled; exit code 130
    proc = _driver(tmp_path, delay=0.02)
    _wait_finished(db, 2, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    first = json.loads(out.splitlines()[-1])
    after_sigint = _statuses(db)
    assert "running" not in after_sigint  # whatever was in flight was saved as cancelled
    assert after_sigint.get("cancelled", 0) == first["cancelled"]
    assert after_sigint["finished"] == first["finished"] < 12
    # 2. a hard kill mid-way: rows stay "running" until the next process finds the writer dead
    proc = _driver(tmp_path, delay=0.02)
    _wait_finished(db, after_sigint["finished"] + 1, proc)
    proc.kill()
    proc.communicate(timeout=30)
    # 3. the next run resumes everything and finishes; no duplicates, nothing lost
    proc = _driver(tmp_path, delay=0.0)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    last = json.loads(out.splitlines()[-1])
    assert last["skipped"] + last["finished"] == 12 and last["errors"] == 0
    assert _statuses(db) == {"finished": 12}
    con = sqlite3.connect(db)
    ids = [r[0] for r in con.execute("SELECT id FROM trajectories")]
    answers = dict(con.execute("SELECT id, answer FROM trajectories"))
    con.close()
    assert len(ids) == len(set(ids)) == 12
    assert all(a is not None for a in answers.values())


def test_the_generate_command(tmp_path, capsys, monkeypatch):
    problems = tmp_path / "problems.jsonl"
    problems.write_text(json.dumps({"id": "six-seven", "question": "What is 6*7?",
                                    "answer": "42"}) + "\n")
    script = tmp_path / "script.json"
    script.write_text(json.dumps(["Let me compute.\n```python\nprint(6 * 7)\n```",
                                  "So \\boxed{42}."]))
    args = ["generate", str(problems), "--run", "cli", "--backend", "scripted", "--model",
            str(script), "--rounds", "0", "--concurrency", "1", "--score", "--preset", "paper"]
    assert cli.main(args) == 0
    out, err = capsys.readouterr()
    assert "1 finished" in out and "scored: 1 correct" in out
    assert "generate cli 1/1 100%" in err and "1 new" in err  # import report + progress bar
    assert cli.main(args) == 0
    out, _ = capsys.readouterr()
    assert "1 already done" in out
    with Store() as store:
        [t] = list(store.iter_trajectories(run_id="cli"))
        assert t.settings["engine"]["temperature"] == 0.6 and t.settings["engine"]["top_p"] == 0.95
    assert cli.main(["generate", "--run", "x", "--backend", "scripted"]) == 1
    assert "say which problems" in capsys.readouterr().err
    assert cli.main(["generate", str(tmp_path / "missing.jsonl"), "--run", "x",
                     "--backend", "scripted"]) == 1
    assert "missing.jsonl" in capsys.readouterr().err


async def test_analytics_of_a_batch_with_two_hint_rounds(store, pool, tmp_path):
    problems = rft_scripts.rft_problems(3, easy_every=3)  # problem 0 is easy: greedy gets it
    store.upsert_problems(problems)
    cfg = BatchConfig(run="tts", samples=1, greedy_baseline=True, concurrency=2, score=True)
    await Batch(store, rft_scripts.rft_backend(), pool, cfg, policy=HintPolicy(rounds=2)).run(
        problems)
    data = collect(store, ["tts"])
    assert len(data) == 6
    curve = scaling_curve(data)
    # after 0 rounds the hinted runs answer like greedy (2 of 3 wrong); a round fixes them
    assert [(r["rounds"], round(r["accuracy"], 3), r["n"]) for r in curve] == [
        (0, 0.333, 3), (1, 1.0, 3), (2, 1.0, 3)]
    modes = {r["mode"]: r for r in mode_table(data)}
    assert round(modes["greedy"]["accuracy"], 3) == 0.333 and modes["hinted"]["accuracy"] == 1.0
    cats = {r["category"]: r for r in category_table(data)}
    assert set(cats) == {"self-reflection", "meticulous check"}
    assert cats["self-reflection"]["tool_use_rate"] == 1.0
    assert cats["meticulous check"]["correct_rate"] == 1.0
    figs = figures(data)
    assert [len(figs[k].data) for k in ("scaling", "categories", "modes")] == [1, 3, 2]
    # the report command writes one self-contained page
    page = tmp_path / "report.html"
    url = store.url
    assert cli.main(["report", "tts", "--html", str(page), "--db", url]) == 0
    html = page.read_text()
    assert html.count("<script") >= 3 and len(html) > 1_000_000  # plotly.js inline
    assert 'src="http' not in html  # nothing fetched: the page works offline
    assert html.index("plotly.js v") < html.index('id="fig-modes"')  # loaded before any figure
    assert "Sequential test-time scaling" in html and "meticulous check" in html
    assert cli.main(["report", "nope", "--html", str(page), "--db", url]) == 1


def test_plan_is_stable_and_needs_stored_problems():
    problems = rft_scripts.rft_problems(2)
    tasks = plan(problems, BatchConfig(run="r", samples=2, greedy_baseline=True))
    assert [(t.problem.id, t.mode, t.sample) for t in tasks] == [
        ("rft:0", "greedy", 0), ("rft:0", "hinted", 0), ("rft:0", "hinted", 1),
        ("rft:1", "greedy", 0), ("rft:1", "hinted", 0), ("rft:1", "hinted", 1)]
    assert trajectory_id("r", "p", "hinted", 0) == trajectory_id("r", "p", "hinted", 0)
    assert trajectory_id("r", "p", "hinted", 0) != trajectory_id("r", "p", "hinted", 1)
    problems[0].id = None
    with pytest.raises(ValueError, match="no id"):
        plan(problems, BatchConfig(run="r"))
    with pytest.raises(ValueError, match="concurrency"):
        BatchConfig(run="r", concurrency=0)


def test_a_cell_cut_by_the_batchs_own_stop_is_reopened_on_resume():
    cut = Segment("think", "```python\nprint(6 *", meta={"unfinished_code": True, "x": 1})
    t = Trajectory(problem=Problem("q"), prompt="", segments=[
        Segment("think", "Hmm."), Segment("hint", "Wait, use Python.\n", "auto"), cut])
    before = t.completion()
    assert reopen_cut_cell(t)
    assert t.segments[-1] == Segment("code", "print(6 *", meta={"x": 1}, closed=False)
    assert t.completion() == before  # the model continues from the very same text
    assert not reopen_cut_cell(t)
