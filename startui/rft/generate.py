"""Batch Hint-infer: every problem × ``samples`` hinted trajectories (+ a greedy baseline), many
in flight at once, saved as they go, resumable.

Each piece of work is a *task* ``(problem, mode, sample)`` whose trajectory id is derived from the
run and the task, so a re-run of the same ``--run`` knows exactly what is done: finished tasks are
skipped, interrupted or cancelled ones resume from their last stored segment (the engine rebuilds
the kernel state), and nothing is ever generated twice. A stop (Ctrl-C) stops every session in
flight; each is saved as "cancelled" and finished next time.

The tasks are claimed from the store (:mod:`startui.store.tasks`), so several workers — processes
on one machine or on many, sharing one PostgreSQL store — can run the same command on the same
run: each claims a few tasks at a time, renews its leases while it works, and takes over the
claims of a worker that died once their lease ran out.

The greedy baseline is the paper's: plain inference, temperature 0, no hints — Hint-RFT's D_seed
keeps problems where it is wrong and a hinted trajectory is right.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from startui.answers import SCORER
from startui.events import TrajectoryStarted
from startui.infer.engine import Engine, EngineConfig
from startui.infer.hints import HintPolicy
from startui.rft import digest
from startui.rft.claims import WorkerClaims
from startui.rft.scoring import score_trajectory
from startui.rft.select import GREEDY, HINTED
from startui.store.recorder import Recorder
from startui.store.repository import NotFoundError
from startui.store.tasks import Claim, ClaimLost, PlannedTask
from startui.trajectory import CODE_OPEN, Problem, Segment, Trajectory

if TYPE_CHECKING:
    from startui.infer.backends.base import Backend
    from startui.infer.kernels import Kernel, KernelPool
    from startui.store import Store

log = logging.getLogger(__name__)

PAPER_PRESET = {"temperature": 0.6, "top_p": 0.95, "max_tool_calls": 6}


def default_worker_name() -> str:
    """``host:pid``: unique among the workers of a run, wherever they run."""
    return f"{socket.gethostname()}:{os.getpid()}"


def clock(seconds: float | None) -> str:
    """A batch's elapsed time or ETA as a terminal and the Dataset tab show it: m:ss, h:mm:ss."""
    if seconds is None:
        return "--:--"
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else \
        f"{s // 60}:{s % 60:02d}"


def trajectory_id(run: str, problem_id: str, mode: str, sample: int) -> str:
    """The deterministic id of a task's trajectory: what makes "skip finished" exact."""
    key = f"{run}\x00{problem_id}\x00{mode}\x00{sample}"
    return "b" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:31]


@dataclass(frozen=True)
class Task:
    problem: Problem
    mode: str  # "greedy" | "hinted"
    sample: int

    def id(self, run: str) -> str:
        return trajectory_id(run, self.problem.id or "", self.mode, self.sample)


@dataclass
class BatchConfig:
    run: str
    samples: int = 1
    greedy_baseline: bool = False
    concurrency: int = 4
    score: bool = False  # rule-score each trajectory as it finishes
    score_timeout: float = 10.0
    worker: str | None = None  # this worker's name in the run's claims (default host:pid)
    lease: float = 60.0  # seconds a claim lasts unless renewed (every lease/3 while it works)

    def __post_init__(self) -> None:
        if not self.run or len(self.run) > 100:
            raise ValueError("a run needs a name of 1 to 100 characters (--run NAME)")
        if self.worker is not None and not 0 < len(self.worker) <= 200:
            raise ValueError("a worker needs a name of 1 to 200 characters (--worker-name)")
        if not self.lease >= 0.5:
            raise ValueError(f"the lease must be at least 0.5 seconds, got {self.lease}")
        if self.samples < 0:
            raise ValueError(f"samples must be >= 0, got {self.samples}")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency}")


def plan(problems: Sequence[Problem], cfg: BatchConfig) -> list[Task]:
    """Every task of the batch, in a stable order (per problem: the baseline, then samples)."""
    tasks = []
    for p in problems:
        if p.id is None:
            raise ValueError(f"problem {p.question[:40]!r} has no id; save it to the store first")
        if cfg.greedy_baseline:
            tasks.append(Task(p, GREEDY, 0))
        tasks += [Task(p, HINTED, s) for s in range(cfg.samples)]
    return tasks


class KernelMeter:
    """A kernel pool wrapper that measures utilisation: the time integral of kernels held by
    trajectories, over wall time × pool size. The engine only calls acquire and release."""

    def __init__(self, pool: KernelPool) -> None:
        self.pool = pool
        self.size = pool.size
        self.held = 0
        self.peak = 0
        self.busy_seconds = 0.0
        self._since = time.perf_counter()
        self._started = self._since

    def _tick(self, delta: int) -> None:
        now = time.perf_counter()
        self.busy_seconds += self.held * (now - self._since)
        self._since = now
        self.held += delta
        self.peak = max(self.peak, self.held)

    async def acquire(self, on_wait: Callable[[int], Any] | None = None) -> Kernel:
        kernel = await self.pool.acquire(on_wait)
        self._tick(+1)
        return kernel

    def expect(self, n: int) -> None:
        self.pool.expect(n)

    async def release(self, kernel: Kernel) -> None:
        self._tick(-1)
        await self.pool.release(kernel)

    def utilisation(self) -> float:
        self._tick(0)
        wall = self._since - self._started
        return self.busy_seconds / (wall * self.size) if wall > 0 and self.size else 0.0


@dataclass
class BatchReport:
    run: str
    worker: str = ""
    tasks: int = 0
    skipped: int = 0  # finished in an earlier invocation
    busy_elsewhere: int = 0  # held by another live worker when this one ended
    by_others: int = 0  # finished by other workers while this one ran
    claimed: int = 0  # claims this worker made
    taken_over: int = 0  # ... of tasks whose worker's lease had run out
    lost: int = 0  # claims lost to another worker (this one's lease ran out)
    started: int = 0
    resumed: int = 0
    finished: int = 0
    cancelled: int = 0
    errors: int = 0
    correct: int = 0
    wrong: int = 0
    unscorable: int = 0
    elapsed: float = 0.0
    kernel_utilisation: float = 0.0
    kernel_seconds: float = 0.0  # time cells spent executing (from the outputs' durations)
    interrupted: bool = False
    error_messages: list[str] = field(default_factory=list)

    @property
    def done(self) -> int:
        return self.finished + self.cancelled + self.errors

    @property
    def todo(self) -> int:
        return self.tasks - self.skipped - self.busy_elsewhere - self.by_others

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["rate"] = round(self.rate, 4)
        return d

    def summary(self) -> str:
        lines = [f"run {self.run!r}: {self.tasks} tasks — {self.finished} finished, "
                 f"{self.cancelled} cancelled, {self.errors} errors, {self.skipped} already done"
                 + (f", {self.by_others} by other workers" if self.by_others else "")
                 + (f", {self.busy_elsewhere} running elsewhere" if self.busy_elsewhere else "")
                 + f" ({self.resumed} resumed) in {self.elapsed:.1f} s, {self.rate:.2f} "
                 f"trajectories/s, kernel pool {self.kernel_utilisation:.0%} utilised"]
        if self.worker:
            lines.append(f"worker {self.worker}: {self.finished} finished here, {self.by_others} "
                         f"by other workers, {self.taken_over} taken over from workers that "
                         "stopped" + (f", {self.lost} lost to other workers (lease ran out)"
                                      if self.lost else ""))
        if self.correct or self.wrong or self.unscorable:
            lines.append(f"scored: {self.correct} correct, {self.wrong} wrong, "
                         f"{self.unscorable} without a reference")
        lines += [f"  error: {m}" for m in self.error_messages[:5]]
        if self.interrupted:
            lines.append("stopped before the end: run the same command again to finish")
        return "\n".join(lines)


def reopen_cut_cell(traj: Trajectory) -> bool:
    """A session stopped while the model wrote a code cell keeps the cell as plain text (the
    engine never runs half a cell). When the stop was the batch's own, the resume reopens the
    cell, so the model finishes it and it runs, as if the batch had never stopped.

    A worker killed right after a hint that opens a cell (its text ends with one newline; a
    hint that does not ends with two) left the cell unsaved, not even its fence: it is opened
    again, so the model writes the code the hint asked for."""
    segs = traj.segments
    if segs and segs[-1].kind == "hint" and segs[-1].text.endswith("\n") \
            and not segs[-1].text.endswith("\n\n"):
        segs.append(Segment("code", "", "model", closed=False))
        return True
    if segs and segs[-1].kind == "think" and segs[-1].meta.get("unfinished_code") \
            and segs[-1].text.startswith(CODE_OPEN):
        last = segs[-1]
        meta = {k: v for k, v in last.meta.items() if k != "unfinished_code"}
        segs[-1] = Segment("code", last.text[len(CODE_OPEN):], last.source, meta, closed=False)
        return True
    return False


def _derived_seed(seed: int | None, task: Task) -> int | None:
    if seed is None:
        return None
    key = f"{seed}\x00{task.problem.id}\x00{task.mode}\x00{task.sample}"
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)


class Batch:
    """One invocation of a batch run: one *worker* of it. ``await batch.run(problems)``;
    ``stop()`` from a signal handler or another task ends it cleanly.

    The worker claims the run's tasks from the store a few at a time
    (:class:`startui.rft.claims.WorkerClaims`), so any number of workers — processes on one
    machine or many, one PostgreSQL store — share a run: each task's trajectory is generated by
    one worker at a time (its writes are fenced by its claim), a worker that dies leaves claims
    that run out after ``lease`` seconds, and another worker takes them over, resuming from the
    stored segments. One worker alone takes the same path (on SQLite, one worker process at a
    time: ``Store.batch_lock``)."""

    def __init__(self, store: Store, backend: Backend, kernels: KernelPool | None,
                 config: BatchConfig, *, policy: HintPolicy | None = None,
                 engine_config: EngineConfig | None = None,
                 on_progress: Callable[[BatchReport], Any] | None = None) -> None:
        self.store = store
        self.backend = backend
        self.kernels = KernelMeter(kernels) if kernels is not None else None
        self.config = config
        self.policy = policy or HintPolicy()
        self.engine_config = engine_config or EngineConfig()
        self.on_progress = on_progress
        self.worker = config.worker or default_worker_name()
        self.report = BatchReport(run=config.run, worker=self.worker)
        self.claims = WorkerClaims(store, config.run, self.worker, config.lease, self._lose)
        # (trajectory id, claim number) -> (session, [started]); sessions are not hashable
        self._sessions: dict[tuple[str, int], tuple[Any, list[bool]]] = {}
        self._lost: set[tuple[str, int]] = set()
        self._plan: dict[str, Task] = {}
        self._recorders: list[Recorder] = []
        self._stopping = False
        self._t0 = 0.0

    # -- engines per task -------------------------------------------------------------------

    def engine_for(self, task: Task) -> Engine:
        """Each task gets its own policy and seed, so a sample is the same whatever ran beside
        it; the greedy baseline gets temperature 0 and no hints."""
        seed = _derived_seed(self.engine_config.seed, task)
        p = self.policy
        if task.mode == GREEDY:
            policy = HintPolicy(rounds=0, conjunction_p=0.0, seed=seed, library=p.library)
            cfg = dataclasses.replace(self.engine_config, temperature=0.0, top_p=1.0, seed=seed)
        else:
            policy = HintPolicy(rounds=p.rounds, conjunction_p=p.conjunction_p,
                                conjunctions=p.conjunctions, categories=p.categories, seed=seed,
                                library=p.library)
            cfg = dataclasses.replace(self.engine_config, seed=seed)
        return Engine(self.backend, self.kernels, policy, cfg)  # type: ignore[arg-type]

    def _new_trajectory(self, task: Task) -> Trajectory:
        run = self.config.run
        traj = self.engine_for(task).new_trajectory(task.problem, run_id=run, run_name=run,
                                                     mode=task.mode, sample=task.sample)
        traj.id = task.id(run)
        return traj

    # -- the run ----------------------------------------------------------------------------

    async def run(self, problems: Sequence[Problem], *, handle_signals: bool = False,
                  ) -> BatchReport:
        tasks = plan(problems, self.config)
        self.report.tasks = len(tasks)
        self._t0 = time.perf_counter()
        with self.store.batch_lock(self.worker):
            return await self._run(tasks, handle_signals)

    async def _run(self, tasks: list[Task], handle_signals: bool) -> BatchReport:
        todo = await asyncio.to_thread(self._write_plan, tasks)
        loop = asyncio.get_running_loop()
        installed = []
        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, self._on_signal, sig)
                    installed.append(sig)
        self.claims.start()
        try:
            self._progress()
            workers = [asyncio.create_task(self._worker())
                       for _ in range(min(self.config.concurrency, todo))]
            try:
                await asyncio.gather(*workers)
            except asyncio.CancelledError:
                self.stop()
                await asyncio.gather(*workers, return_exceptions=True)
                raise
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            try:
                await asyncio.to_thread(self.claims.wind_down)
                await asyncio.to_thread(self._flush)
            finally:
                self._finish_report()
        return self.report

    def _flush(self) -> None:
        """Raise the first write of a session that failed, if any (as the Recorder says)."""
        for recorder in self._recorders:
            recorder.flush()

    def _write_plan(self, tasks: list[Task]) -> int:
        """Every worker writes the run's plan; returns how many of its tasks are not done."""
        cfg = self.config
        self._plan = {t.id(cfg.run): t for t in tasks}
        planned = [PlannedTask(t.id(cfg.run), t.problem.id or "", t.mode, t.sample, i)
                   for i, t in enumerate(tasks)]
        # the run's row is written with the plan: its settings as a trajectory's
        settings = self._new_trajectory(tasks[0]).settings if tasks else {}
        todo = self.claims.write_plan(planned, settings, (
            (GREEDY, 1 if cfg.greedy_baseline else 0), (HINTED, cfg.samples)))
        self.report.skipped = self.claims.skipped
        return todo

    def _finish_report(self) -> None:
        self._tally()
        self.report.elapsed = time.perf_counter() - self._t0
        if self.kernels is not None:
            self.report.kernel_utilisation = self.kernels.utilisation()
        self.report.interrupted = self._stopping or self.report.done < self.report.todo

    def _on_signal(self, sig: int) -> None:
        if self._stopping:  # a second Ctrl-C: stop waiting politely
            raise KeyboardInterrupt
        self.stop()

    def stop(self) -> None:
        """Stop every session in flight (each is saved as cancelled, its claim released) and
        start no new one."""
        self._stopping = True
        for session, started in list(self._sessions.values()):
            self._stop_session(session, started)

    @staticmethod
    def _stop_session(session: Any, started: list[bool]) -> None:
        """Stop a session only while it generates. The engine's Session.stop() cancels its task,
        and a task cancelled before its first step, or while it winds down (releasing its
        kernel, reporting the end), never signals its end: run() would wait forever. A session
        not started yet is stopped when it starts (see _watch); one winding down ends alone."""
        if started[0] and session.trajectory.status == "running":
            session.stop()

    def _watch(self, session: Any, started: list[bool],
               key: tuple[str, int]) -> Callable[[Any], None]:
        loop = asyncio.get_running_loop()

        def on_event(event: Any) -> None:
            if isinstance(event, TrajectoryStarted) and not started[0]:
                started[0] = True
                if self._stopping or key in self._lost:  # after this step, in the engine's try
                    loop.call_soon(self._stop_session, session, started)
        return on_event

    def _lose(self, tid: str, attempt: int) -> None:
        """Another worker took the task over (this one's lease ran out: it was paused or cut
        off): stop generating it here. The store refuses this worker's writes to it anyway."""
        if not self.claims.forget(tid, attempt):
            return
        self._lost.add((tid, attempt))
        self.report.lost += 1
        log.warning("task %s was taken over by another worker (this worker's lease ran out): "
                    "stopped here", tid)
        entry = self._sessions.get((tid, attempt))
        if entry is not None:
            self._stop_session(*entry)
        self._progress()

    def _task_of(self, claim: Claim) -> Task:
        """A task another worker planned (a problem this one was not given)."""
        problems = self.store.get_problems([claim.problem_id])
        if not problems:
            raise LookupError(f"problem {claim.problem_id} is not in the store")
        return Task(problems[0], claim.mode, claim.sample)

    # -- one task ---------------------------------------------------------------------------

    async def _worker(self) -> None:
        while not self._stopping:
            claim = await self.claims.next(lambda: self._stopping)
            if claim is None:
                return
            try:
                await self._one(claim)
            except ClaimLost:
                self._lose(claim.trajectory_id, claim.attempt)
            except Exception as e:  # noqa: BLE001 - one broken task must not end the batch
                self.report.errors += 1
                self.report.error_messages.append(
                    f"{claim.problem_id} ({claim.mode} {claim.sample}): "
                    f"{type(e).__name__}: {e}")
                self.claims.fail(claim.trajectory_id)
                try:
                    await asyncio.to_thread(self.claims.settle, claim, False)
                except Exception:  # noqa: BLE001 - its lease runs out: a later run retries it
                    log.exception("could not release task %s", claim.trajectory_id)
                self._progress()

    async def _one(self, claim: Claim) -> None:
        tid, key = claim.trajectory_id, (claim.trajectory_id, claim.attempt)
        task = self._plan.get(tid) or await asyncio.to_thread(self._task_of, claim)
        fenced = self.store.fenced(claim, self.worker,
                                   on_lost=lambda: self.claims.lost_soon(tid, claim.attempt))
        if claim.taken_over:
            self.report.taken_over += 1
        try:
            traj = await asyncio.to_thread(self.store.load_trajectory, tid)
        except NotFoundError:
            traj = await asyncio.to_thread(self._new_trajectory, task)
            self.report.started += 1
        else:
            if traj.status == "finished":  # its worker died before marking the task done
                self.report.skipped += 1
                await asyncio.to_thread(self.claims.settle, claim, True)
                return
            # interrupted, cancelled, error — or "running" for a worker whose lease ran out
            self.report.resumed += 1
            reopen_cut_cell(traj)
            if traj.segments and traj.segments[-1].kind == "answer":
                # it had answered when the process died: only the "finished" write was lost
                traj.status = "finished"
                await asyncio.to_thread(fenced.save_trajectory, traj)
                await asyncio.to_thread(self.claims.settle, claim, True)
                await self._finished(traj)
                return
        if self._stopping:
            return
        recorder = Recorder(fenced)  # type: ignore[arg-type]
        session = self.engine_for(task).start(traj)
        session.subscribe(recorder)
        started = [False]
        session.subscribe(self._watch(session, started, key))
        self._sessions[key] = (session, started)
        running = asyncio.ensure_future(session.run())
        try:
            traj = await asyncio.shield(running)
        except asyncio.CancelledError:
            self._stopping = True
            self._stop_session(session, started)
            await asyncio.wait([running], timeout=30)
            raise
        finally:
            self._sessions.pop(key, None)
        if key in self._lost:
            return
        if recorder.errors:  # (its writes are all done: the end's was awaited, after them)
            self._recorders.append(recorder)
        await asyncio.to_thread(self.claims.settle, claim, traj.status == "finished")
        if traj.status == "error":
            self.claims.fail(tid)
        await self._finished(traj)

    async def _finished(self, traj: Trajectory) -> None:
        r = self.report
        if traj.status == "finished":
            r.finished += 1
            r.kernel_seconds += sum(float(s.meta.get("duration") or 0) for s in traj.segments
                                    if s.kind == "output")
            await asyncio.to_thread(digest.keep_current, self.store, [traj.id])  # Dataset tab
            if self.config.score and not self._stopping:
                await self._score(traj)
        elif traj.status == "cancelled":
            r.cancelled += 1
        else:
            r.errors += 1
            r.error_messages.append(f"{traj.problem.id}: {traj.error}")
        self._progress()

    async def _score(self, traj: Trajectory) -> None:
        try:
            result = await score_trajectory(traj, self.kernels,  # type: ignore[arg-type]
                                            timeout=self.config.score_timeout)
        except Exception as e:  # noqa: BLE001 - a scoring failure must not stop the batch
            self.report.error_messages.append(f"scoring {traj.id}: {type(e).__name__}: {e}")
            return
        await asyncio.to_thread(self.store.add_score, traj.id, scorer=SCORER,
                                correct=result.correct, value=result.value, detail=result.detail)
        if result.correct is None:
            self.report.unscorable += 1
        elif result.correct:
            self.report.correct += 1
        else:
            self.report.wrong += 1

    def _tally(self) -> None:
        c, r = self.claims, self.report
        r.claimed, r.by_others, r.busy_elsewhere = c.claimed, c.by_others, c.busy_elsewhere

    def _progress(self) -> None:
        self._tally()
        self.report.elapsed = time.perf_counter() - self._t0
        if self.on_progress is not None:
            self.on_progress(self.report)
