"""Batch Hint-infer: every problem × ``samples`` hinted trajectories (+ a greedy baseline), many
in flight at once, saved as they go, resumable.

Each piece of work is a *task* ``(problem, mode, sample)`` whose trajectory id is derived from the
run and the task, so a re-run of the same ``--run`` knows exactly what is done: finished tasks are
skipped, interrupted or cancelled ones resume from their last stored segment (the engine rebuilds
the kernel state), and nothing is ever generated twice. A stop (Ctrl-C) stops every session in
flight; each is saved as "cancelled" and finished next time.

The greedy baseline is the paper's: plain inference, temperature 0, no hints — Hint-RFT's D_seed
keeps problems where it is wrong and a hinted trajectory is right.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from startui.answers import SCORER
from startui.events import TrajectoryStarted
from startui.infer.engine import Engine, EngineConfig
from startui.infer.hints import HintPolicy
from startui.rft.scoring import score_trajectory
from startui.rft.select import GREEDY, HINTED
from startui.store.recorder import Recorder
from startui.trajectory import CODE_OPEN, Problem, Segment, Trajectory

if TYPE_CHECKING:
    from startui.infer.backends.base import Backend
    from startui.infer.kernels import Kernel, KernelPool
    from startui.store import Store

PAPER_PRESET = {"temperature": 0.6, "top_p": 0.95, "max_tool_calls": 6}


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

    def __post_init__(self) -> None:
        if not self.run or len(self.run) > 100:
            raise ValueError("a run needs a name of 1 to 100 characters (--run NAME)")
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
    tasks: int = 0
    skipped: int = 0  # finished in an earlier invocation
    busy_elsewhere: int = 0  # running in another live process
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
        return self.tasks - self.skipped - self.busy_elsewhere

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
                 + (f", {self.busy_elsewhere} running elsewhere" if self.busy_elsewhere else "")
                 + f" ({self.resumed} resumed) in {self.elapsed:.1f} s, {self.rate:.2f} "
                 f"trajectories/s, kernel pool {self.kernel_utilisation:.0%} utilised"]
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
    cell, so the model finishes it and it runs, as if the batch had never stopped."""
    segs = traj.segments
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
    """One invocation of a batch run. ``await batch.run(problems)``; ``stop()`` from a signal
    handler or another task ends it cleanly."""

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
        self.report = BatchReport(run=config.run)
        self.recorder = Recorder(store)
        # id(session) -> (session, [started]); sessions are not hashable
        self._sessions: dict[int, tuple[Any, list[bool]]] = {}
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

    # -- the run ----------------------------------------------------------------------------

    async def run(self, problems: Sequence[Problem], *, handle_signals: bool = False,
                  ) -> BatchReport:
        tasks = plan(problems, self.config)
        existing = await asyncio.to_thread(self.store.trajectory_statuses, self.config.run)
        todo = []
        for t in tasks:
            status = existing.get(t.id(self.config.run))
            if status == "finished":
                self.report.skipped += 1
            elif status == "running":  # a live process is on it (dead ones were marked)
                self.report.busy_elsewhere += 1
            else:
                todo.append((t, status))
        self.report.tasks = len(tasks)
        self._t0 = time.perf_counter()
        loop = asyncio.get_running_loop()
        installed = []
        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, self._on_signal, sig)
                    installed.append(sig)
        queue = iter(todo)
        try:
            self._progress()
            workers = [asyncio.create_task(self._worker(queue))
                       for _ in range(min(self.config.concurrency, max(1, len(todo))))]
            try:
                await asyncio.gather(*workers)
            except asyncio.CancelledError:
                self.stop()
                await asyncio.gather(*workers, return_exceptions=True)
                raise
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            await asyncio.to_thread(self.recorder.flush)
            self._finish_report()
        return self.report

    def _finish_report(self) -> None:
        self.report.elapsed = time.perf_counter() - self._t0
        if self.kernels is not None:
            self.report.kernel_utilisation = self.kernels.utilisation()
        self.report.interrupted = self._stopping or self.report.done < self.report.todo

    def _on_signal(self, sig: int) -> None:
        if self._stopping:  # a second Ctrl-C: stop waiting politely
            raise KeyboardInterrupt
        self.stop()

    def stop(self) -> None:
        """Stop every session in flight (each is saved as cancelled) and start no new one."""
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

    def _watch(self, session: Any, started: list[bool]) -> Callable[[Any], None]:
        loop = asyncio.get_running_loop()

        def on_event(event: Any) -> None:
            if isinstance(event, TrajectoryStarted) and not started[0]:
                started[0] = True
                if self._stopping:  # after this step, inside the engine's own try
                    loop.call_soon(self._stop_session, session, started)
        return on_event

    async def _worker(self, queue: Any) -> None:
        while not self._stopping:
            item = next(queue, None)
            if item is None:
                return
            try:
                await self._one(*item)
            except Exception as e:  # noqa: BLE001 - one broken task must not end the batch
                self.report.errors += 1
                self.report.error_messages.append(
                    f"{item[0].problem.id} ({item[0].mode} {item[0].sample}): "
                    f"{type(e).__name__}: {e}")
                self._progress()

    async def _one(self, task: Task, status: str | None) -> None:
        run = self.config.run
        tid = task.id(run)
        engine = self.engine_for(task)
        if status is None:
            traj = await asyncio.to_thread(
                engine.new_trajectory, task.problem, run_id=run, run_name=run, mode=task.mode,
                sample=task.sample)
            traj.id = tid
            self.report.started += 1
        else:
            traj = await asyncio.to_thread(self.store.load_trajectory, tid)
            self.report.resumed += 1
            reopen_cut_cell(traj)
            if traj.segments and traj.segments[-1].kind == "answer":
                # it had answered when the process died: only the "finished" write was lost
                traj.status = "finished"
                await asyncio.to_thread(self.store.save_trajectory, traj)
                await self._finished(traj)
                return
        if self._stopping:
            return
        session = engine.start(traj)
        session.subscribe(self.recorder)
        started = [False]
        session.subscribe(self._watch(session, started))
        self._sessions[id(session)] = (session, started)
        running = asyncio.ensure_future(session.run())
        try:
            traj = await asyncio.shield(running)
        except asyncio.CancelledError:
            self._stopping = True
            self._stop_session(session, started)
            await asyncio.wait([running], timeout=30)
            raise
        finally:
            self._sessions.pop(id(session), None)
        await self._finished(traj)

    async def _finished(self, traj: Trajectory) -> None:
        r = self.report
        if traj.status == "finished":
            r.finished += 1
            r.kernel_seconds += sum(float(s.meta.get("duration") or 0) for s in traj.segments
                                    if s.kind == "output")
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

    def _progress(self) -> None:
        self.report.elapsed = time.perf_counter() - self._t0
        if self.on_progress is not None:
            self.on_progress(self.report)
