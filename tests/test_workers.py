"""Many workers on one batch run: `python -m startui generate` processes sharing one PostgreSQL
store claim the run's tasks, take over the claims of a worker that was killed once its lease ran
out, and never generate anything twice; a SQLite store refuses a second worker process; one
worker spreads its trajectories over several model servers, one server per trajectory."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bench import standins
from startui import cli
from startui.infer.backends.openai import OpenAIBackend
from startui.infer.hints import HintPolicy
from startui.rft.generate import Batch, BatchConfig, trajectory_id
from startui.store import Store
from startui.store.tasks import ClaimLost, PlannedTask, Scope
from startui.trajectory import Trajectory
from tests.fakeserver import FakeServer, Reply, Request, event, sse

ROOT = Path(__file__).resolve().parents[1]
HOST = socket.gethostname()
RUN = "many"
BOTH = Scope((("greedy", 1), ("hinted", 1)))


def _inputs(tmp_path: Path, n: int, delay: float) -> tuple[Path, Path]:
    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(json.dumps({"id": p.id, "question": p.question,
                                            "answer": p.answer}) + "\n"
                                for p in standins.rft_problems(n)))
    script = tmp_path / f"script-{delay}.json"  # the stateless Hint-RFT model, word by word
    script.write_text(json.dumps({"respond": "bench.standins:rft_respond", "delay": delay}))
    return problems, script


def _args(problems: Path, script: Path, db: str, name: str, lease: float) -> list[str]:
    return ["generate", str(problems), "--run", RUN, "--backend", "scripted", "--model",
            str(script), "--greedy-baseline", "--samples", "1", "--rounds", "1",
            "--concurrency", "2", "--db", db, "--worker-name", name, "--lease", str(lease),
            "--no-progress", "--json"]


def _worker(tmp_path: Path, args: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the script's model lives in bench/
    return subprocess.Popen([sys.executable, "-m", "startui", *args], cwd=tmp_path, env=env,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _rows(engine, sql: str, **params) -> list:
    with engine.connect() as c:
        return list(c.execute(text(sql), params))


def _wait(what, proc: subprocess.Popen[str], limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while not what():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_two_workers_share_a_run_and_take_over_a_killed_ones_claims(tmp_path, pg_url,
                                                                    capsys):
    problems, script = _inputs(tmp_path, 8, delay=0.03)  # 8 × (greedy + hinted) = 16 tasks
    with Store(pg_url):
        pass  # the schema, before two processes race to create it
    a = _worker(tmp_path, _args(problems, script, pg_url, "A", lease=2))
    b = _worker(tmp_path, _args(problems, script, pg_url, "B", lease=2))
    db = create_engine(pg_url)
    try:
        def b_is_mid_way() -> bool:  # B finished some, and holds claims with segments stored
            [(done, mid)] = _rows(db, """
                SELECT count(*) FILTER (WHERE t.state = 'done'),
                       count(*) FILTER (WHERE t.state = 'claimed' AND EXISTS (
                           SELECT 1 FROM segments s WHERE s.trajectory_id = t.trajectory_id)
                           AND EXISTS (SELECT 1 FROM trajectories j
                                       WHERE j.id = t.trajectory_id AND j.status = 'running'))
                FROM run_tasks t WHERE t.worker = 'B'""")
            return done >= 1 and mid >= 1

        _wait(b_is_mid_way, b)
        b.send_signal(signal.SIGKILL)
        b.communicate(timeout=30)
        held_by_b = {r[0] for r in _rows(db, "SELECT trajectory_id FROM run_tasks "
                                             "WHERE worker = 'B' AND state = 'claimed'")}
        done_by_b = _rows(db, "SELECT count(*) FROM run_tasks WHERE worker = 'B' "
                              "AND state = 'done'")[0][0]
        assert held_by_b and done_by_b
        # B's trajectories cut mid-way (segments stored, not finished): A must go on from them
        cut = _rows(db, "SELECT count(*) FROM run_tasks t JOIN trajectories j "
                        "ON j.id = t.trajectory_id WHERE t.worker = 'B' AND t.state = 'claimed' "
                        "AND j.status != 'finished' AND EXISTS (SELECT 1 FROM segments s "
                        "WHERE s.trajectory_id = t.trajectory_id)")[0][0]
        assert cut >= 1
        out, err = a.communicate(timeout=120)
        assert a.returncode == 0, err
        report = json.loads(out.splitlines()[-1])
        # A finished the rest, B's claims included once their lease ran out
        assert (report["tasks"], report["errors"], report["lost"]) == (16, 0, 0)
        assert report["by_others"] == done_by_b
        # (skipped: a trajectory B finished but was killed before it marked its task done)
        assert report["finished"] + report["skipped"] + report["by_others"] == 16
        tasks = _rows(db, "SELECT t.trajectory_id, t.state, t.worker, t.attempts, j.status, "
                          "j.worker, j.answer FROM run_tasks t "
                          "JOIN trajectories j ON j.id = t.trajectory_id")
        assert len(tasks) == 16 and _rows(db, "SELECT count(*) FROM trajectories")[0][0] == 16
        pids = {"A": a.pid, "B": b.pid}
        taken = {tid: writer.startswith(f"{HOST}:{b.pid}:")
                 for tid, _, _, attempts, _, writer, _ in tasks if attempts == 2}
        assert held_by_b <= set(taken) and len(taken) == report["taken_over"]
        assert sum(taken.values()) == report["skipped"]  # the rest A generated: resumed or new
        assert report["resumed"] >= cut  # B's trajectories with segments stored go on from them
        for tid, state, worker, attempts, status, writer, answer in tasks:
            assert (state, status) == ("done", "finished") and answer is not None, tid
            # a task claimed once was written by its worker; a taken-over one is A's claim #2
            assert (worker, attempts) == (("A", 2) if tid in taken else (worker, 1)), tid
            if tid not in taken:
                assert writer.startswith(f"{HOST}:{pids[worker]}:"), (tid, worker, writer)
        # nothing generated twice: every trajectory reads as one pass of the model, its
        # segments at positions 0..n-1
        with Store(pg_url) as store:
            for t in store.iter_trajectories(run_id=RUN):
                done = t.completion()
                assert done.count("Let me think about") == 1, done
                assert done.count("\\boxed") == (1 if t.settings["mode"] == "greedy" else 2)
                if t.settings["mode"] == "hinted":
                    assert done.count("```output") == 1 and done.count("The kernel says") == 1
            positions = _rows(db, "SELECT trajectory_id, count(*), max(position) FROM segments "
                                  "GROUP BY trajectory_id")
            assert len(positions) == 16 and all(n == top + 1 for _, n, top in positions)
        # the same command again finishes nothing twice, and says so
        capsys.readouterr()
        assert cli.main(_args(problems, script, pg_url, "C", lease=2)[:-1]) == 0
        said = capsys.readouterr().out
        assert "0 finished" in said and "16 already done" in said
        assert "worker C: 0 finished here, 0 by other workers, 0 taken over" in said
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.kill()
                p.communicate()
        db.dispose()


def test_sqlite_refuses_a_second_worker_process_and_a_killed_ones_lock_goes(tmp_path, capsys):
    problems, slow = _inputs(tmp_path, 6, delay=0.05)
    _, fast = _inputs(tmp_path, 6, delay=0.0)
    db = f"sqlite:///{tmp_path / 'one.sqlite'}"
    first = _worker(tmp_path, _args(problems, slow, db, "first", lease=60))
    try:
        lock = tmp_path / "one.sqlite.worker-lock"
        _wait(lambda: lock.exists() and lock.read_text().strip(), first)
        assert cli.main(_args(problems, fast, db, "second", lease=60)) == 2
        err = capsys.readouterr().err
        assert "another generate worker" in err and f"pid {first.pid} on host {HOST}" in err
        assert "worker first" in err and "PostgreSQL" in err and "Many machines" in err
        con = create_engine(db)
        _wait(lambda: _rows(con, "SELECT count(*) FROM run_tasks WHERE state = 'claimed' "
                                 "AND trajectory_id IN (SELECT trajectory_id FROM segments)"
                            )[0][0] >= 1, first)
        first.send_signal(signal.SIGKILL)  # mid-run: claims held, lease 60 s
        first.communicate(timeout=30)
        con.dispose()
        # the kernel dropped the lock; the next worker releases the dead one's claims at once
        # (no lease to wait for: nobody else can be working) and finishes the run
        assert cli.main(_args(problems, fast, db, "second", lease=60)) == 0
        report = json.loads(capsys.readouterr().out.splitlines()[-1])
        assert report["taken_over"] == 0 and report["resumed"] >= 1
        assert report["skipped"] + report["finished"] == 12 and report["errors"] == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()


# --- the claims themselves, both databases ---------------------------------------------------

def _plan(store: Store, n: int) -> list[PlannedTask]:
    problems = standins.rft_problems(n)
    store.upsert_problems(problems)
    tasks = [PlannedTask(trajectory_id(RUN, p.id, m, 0), p.id, m, 0, 2 * i + j)
             for i, p in enumerate(problems) for j, m in enumerate(("greedy", "hinted"))]
    settings = {"run_id": RUN, "run_name": RUN, "backend": "scripted"}
    plans = []
    threads = [threading.Thread(target=lambda: plans.append(
        store.write_plan(RUN, tasks, settings, BOTH))) for _ in range(3)]
    for t in threads:  # every worker writes the plan, at once
        t.start()
    for t in threads:
        t.join()
    assert [p.done for p in plans] == [0, 0, 0]
    return tasks


def test_claims_are_exclusive_leased_renewed_fenced_and_taken_over(url):
    with Store(url) as store:
        tasks = _plan(store, 4)
        with store.read() as s:
            assert s.execute(text("SELECT count(*) FROM run_tasks")).scalar() == 8
        got: dict[str, list] = {}
        threads = [threading.Thread(target=lambda w=w: got.__setitem__(w, store.claim_tasks(
            RUN, w, n=3, lease=60, scope=BOTH))) for w in ("A", "B")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ids = [c.trajectory_id for w in "AB" for c in got[w]]
        assert len(ids) == 6 == len(set(ids))  # nobody gets a task twice
        assert set(ids) == {t.trajectory_id for t in tasks[:6]}  # in the plan's order
        c_held = store.claim_tasks(RUN, "C", n=5, lease=1, scope=BOTH)
        runs_out = time.monotonic() + 1.1
        assert [c.trajectory_id for c in c_held] == [t.trajectory_id for t in tasks[6:]]
        assert store.claim_tasks(RUN, "D", n=5, lease=60, scope=BOTH) == []
        counts = store.task_counts(RUN, "D", BOTH)
        assert (counts.claimable, counts.held_elsewhere, counts.held_here) == (0, 8, 0)
        # A renews its claims; B finishes one and releases one (an error: a later run retries)
        a = [(c.trajectory_id, c.attempt) for c in got["A"]]
        assert store.renew_claims("A", a, 60) == {t for t, _ in a}
        b = got["B"]
        assert store.finish_tasks("B", [(b[0].trajectory_id, b[0].attempt)]) == 1
        assert store.release_tasks("B", [(b[1].trajectory_id, b[1].attempt)]) == 1
        assert store.finish_tasks("A", [(b[2].trajectory_id, b[2].attempt)]) == 0  # not A's
        # C's lease runs out: D takes its tasks over, on claim #2; C's writes are refused
        time.sleep(max(0.0, runs_out - time.monotonic()))
        taken = store.claim_tasks(RUN, "D", n=5, lease=60, scope=BOTH,
                                  exclude=[b[1].trajectory_id])
        assert {(c.trajectory_id, c.attempt, c.taken_over) for c in taken} == {
            (c.trajectory_id, 2, "C") for c in c_held}
        assert store.renew_claims("C", [(c.trajectory_id, c.attempt) for c in c_held], 60) \
            == set()
        lost = []
        old = store.fenced(c_held[0], "C", on_lost=lambda: lost.append(1))
        with pytest.raises(ClaimLost, match="no longer C's claim #1"):
            old.write(lambda s: s.execute(text("DELETE FROM run_tasks")))
        assert lost == [1]
        with store.read() as s:  # the refused write changed nothing
            assert s.execute(text("SELECT count(*) FROM run_tasks")).scalar() == 8
        new = store.fenced(taken[0], "D")
        assert new.write(lambda s: 42) == 42
        fut = old.submit(lambda s: 1)  # the Recorder's path
        with pytest.raises(ClaimLost):
            fut.result(timeout=10)
        # the released one is claimable again; done ones never are
        again = store.claim_tasks(RUN, "E", n=9, lease=60, scope=BOTH)
        assert [(c.trajectory_id, c.attempt) for c in again] == [(b[1].trajectory_id, 2)]


def test_a_running_trajectory_of_a_dead_worker_elsewhere_is_interrupted_when_its_lease_ends(
        url):
    with Store(url) as store:
        tasks = _plan(store, 1)
        t = tasks[0]
        [c] = store.claim_tasks(RUN, "far", n=1, lease=1, scope=BOTH)
        runs_out = time.monotonic() + 1.1
        row = Trajectory(problem=store.get_problem(t.problem_id), prompt="p", id=t.trajectory_id,
                         settings={"run_id": RUN}, status="running")
        store.fenced(c, "far").save_trajectory(row)  # as a worker on another host left it
        store.write(lambda s: s.execute(text("UPDATE trajectories SET worker = 'elsewhere:1:x' "
                                             "WHERE id = :i"), {"i": t.trajectory_id}))
        assert store.mark_interrupted() == 0  # its lease runs: the other host may be working
        time.sleep(max(0.0, runs_out - time.monotonic()))
        assert store.mark_interrupted() == 1  # not after STALE_AFTER's hours: now
        assert store.trajectory_summary(t.trajectory_id).status == "interrupted"


# --- one worker, several model servers ---------------------------------------------------------

async def _rft_server(reply: Reply, request: Request) -> None:
    await sse(reply, [event(standins.rft_respond(request.body["prompt"])),
                      event("", "stop")])


async def test_a_worker_spreads_trajectories_over_servers_one_server_each(tmp_path, pool):
    problems = standins.rft_problems(6)
    with Store(f"sqlite:///{tmp_path / 'spread.sqlite'}") as store:
        store.upsert_problems(problems)
        async with FakeServer(_rft_server) as a, FakeServer(_rft_server) as b:
            backend = OpenAIBackend("rft-script", base_urls=[a.url + "/v1", b.url],
                                    chat_template=standins.CHATML_TEMPLATE)
            cfg = BatchConfig(run="spread", samples=1, concurrency=4)
            report = await Batch(store, backend, pool, cfg, policy=HintPolicy(rounds=1)).run(
                problems)
            await backend.close()
        assert (report.finished, report.errors) == (6, 0)
        assert {t.answer for t in store.iter_trajectories(run_id="spread")} == {
            p.answer for p in problems}
    servers: dict[str, set[str]] = {}  # question → the servers its trajectory's requests went to
    for name, server in (("a", a), ("b", b)):
        assert server.requests, f"server {name} got no work"
        for r in server.requests:
            question = r.body["prompt"].split("<|im_start|>user\n")[1].split("<|im_end|>")[0]
            servers.setdefault(question, set()).add(name)
    assert len(servers) == 6 and all(len(s) == 1 for s in servers.values()), servers
    assert sum(len(s.requests) for s in (a, b)) == 18  # 3 requests a trajectory: none repeated


def test_a_cell_a_hint_opened_before_the_worker_died_is_opened_again():
    from startui.rft.generate import reopen_cut_cell
    from startui.trajectory import Problem, Segment

    opened = Segment("hint", "\n\nWait, I can use Python to check.\n", "auto")
    t = Trajectory(problem=Problem("q"), prompt="", segments=[Segment("think", "So 7."), opened])
    assert reopen_cut_cell(t)  # the fence the hint opened was never stored: it is back
    assert t.segments[-1] == Segment("code", "", "model", closed=False)
    assert t.completion().endswith("check.\n```python\n")
    plain = Segment("hint", "\n\nWait, think again.\n\n", "auto")  # opens no cell
    t = Trajectory(problem=Problem("q"), prompt="", segments=[Segment("think", "So 7."), plain])
    assert not reopen_cut_cell(t) and t.segments[-1] == plain


async def test_a_worker_whose_lease_ran_out_while_it_hung_loses_the_task_and_writes_nothing(
        pg_url, pool):
    problems = standins.rft_problems(2)
    with Store(pg_url) as hung_store, Store(pg_url) as store:
        store.upsert_problems(problems)
        # its heartbeat hangs (a paused process, a cut network): the leases are not renewed
        hung_store.renew_claims = lambda worker, held, lease: {t for t, _ in held}
        cfg = BatchConfig(run="hang", samples=1, greedy_baseline=True, concurrency=4, lease=1,
                          worker="hung")
        hung = Batch(hung_store, standins.rft_backend(delay=0.1), pool, cfg,
                     policy=HintPolicy(rounds=1))
        first = asyncio.create_task(hung.run(problems))
        await asyncio.sleep(1.3)
        other = Batch(store, standins.rft_backend(delay=0.01), pool,
                      BatchConfig(run="hang", samples=1, greedy_baseline=True, concurrency=4,
                                  lease=5, worker="other"), policy=HintPolicy(rounds=1))
        second = await other.run(problems)
        lost = await first
        assert lost.lost >= 1 and second.taken_over >= lost.lost  # the hinted ones, mid-way
        assert second.errors == lost.errors == 0
        assert lost.finished + second.finished == 4  # each finished once, by one of them
        trajectories = list(store.iter_trajectories(run_id="hang"))
        assert len(trajectories) == 4
        for t in trajectories:  # the hung worker's late writes were refused: one pass each
            said = t.completion()
            assert t.status == "finished" and said.count("Let me think about") == 1, said
            assert said.count("\\boxed") == (1 if t.settings["mode"] == "greedy" else 2)
