"""The live demo's logic, without a web framework: what one visitor can do.

A :class:`Studio` is one visitor (one browser session): at most one live Hint-infer session at a
time, steered with hints, stopped, continued, rewound into branches, and saved to the store as it
streams. :class:`Services` is what visitors share: the store, the kernel pool (each trajectory
still gets its own kernel) and the loaded backends. The Gradio app only wires these calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from startui.events import Notice, SegmentFinished, SegmentStarted, TextDelta, TrajectoryFinished
from startui.infer.backends import Backend, make_backend
from startui.infer.engine import Engine, EngineConfig, Session
from startui.infer.hints import HintLibrary, HintPolicy
from startui.trajectory import Problem, Segment, Trajectory
from startui.ui.deployment import Deployment, NotAllowed, RateLimiter
from startui.ui.settings import RunSettings

log = logging.getLogger(__name__)


@dataclass
class Timing:
    started: float
    finished: float | None = None


class Services:
    """Shared by every visitor of one app process."""

    def __init__(self, store: Any = None, *, pool_size: int = 2,
                 backend_factory: Callable[..., Backend] | None = None,
                 library: HintLibrary | None = None, deployment: Deployment | None = None,
                 max_kernels: int | None = None) -> None:
        self.store = store
        self.pool_size = pool_size
        self.max_kernels = max_kernels  # kernels handed out at once; beyond: "busy — N ahead"
        self.deployment = deployment or Deployment()
        self.limiter = RateLimiter(self.deployment.runs_per_minute)
        self.isolation: dict[str, Any] | None = None  # what the kernels' sandbox holds here
        self.backend_factory = backend_factory or _default_factory
        self.library = library or HintLibrary()
        self._backends: dict[tuple[str, str | None, str | None], Backend] = {}
        self._pool: Any = None
        self._lock = asyncio.Lock()

    async def pool(self) -> Any:
        async with self._lock:
            if self._pool is None:
                from startui.infer.kernels import KernelPool

                self._pool = KernelPool(size=self.pool_size, max_busy=self.max_kernels)
                await self._pool.start()
                self.isolation = self._pool.isolation or self.isolation
            return self._pool

    def admit(self, settings: RunSettings, visitor: str) -> RunSettings:
        """What a visitor's run may use: the deployment's choice for what they picked (in public
        mode nothing else reaches a backend), within their rate limit. Raises NotAllowed."""
        resolved = self.deployment.resolve(settings)
        self.limiter.check(visitor)
        return resolved

    def backend(self, settings: RunSettings) -> Backend:
        key = settings.backend_key()
        if key not in self._backends:
            self._backends[key] = self.backend_factory(settings)
        return self._backends[key]

    def recent(self, limit: int = 30, *, visitor: str | None = None) -> list[Any]:
        """Summaries of the latest saved trajectories (none without a store); ``visitor``: only
        theirs (public mode: a visitor sees their own runs, reviewers see all)."""
        if self.store is None:
            return []
        return self.store.list_trajectories(limit=limit, visitor=visitor)

    def branches(self, trajectory_id: str | None) -> list[Any]:
        """Summaries of every saved trajectory of the same problem: the original and its
        branches (none when it is not saved yet)."""
        if self.store is None or not trajectory_id:
            return []
        try:
            problem_id = self.store.load_trajectory(trajectory_id).problem.id
        except Exception:  # noqa: BLE001 - not saved (yet): no branches to list
            return []
        return self.store.list_trajectories(problem_id=problem_id, limit=50) if problem_id else []

    def warm(self, settings: RunSettings | None = None) -> threading.Thread:
        """Load the default model in the background, so the first visitor does not wait for it
        (the embedded model is assembled, verified and loaded: a few seconds)."""
        backend = self.backend(settings or RunSettings())

        def load() -> None:
            try:
                if hasattr(backend, "load"):
                    backend.load()
            except Exception as e:  # noqa: BLE001 - the first run will show the error
                log.warning("could not preload %s: %s", backend.name, e)

        thread = threading.Thread(target=load, name="startui-warm", daemon=True)
        thread.start()
        return thread

    async def close(self) -> None:
        for backend in self._backends.values():
            with contextlib.suppress(Exception):
                await backend.close()
        self._backends.clear()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


def _default_factory(settings: RunSettings) -> Backend:
    kw: dict[str, Any] = {}
    if settings.base_url:
        kw["base_url"] = settings.base_url
    return make_backend(settings.backend, settings.model, **kw)


@dataclass
class Studio:
    """One visitor's live session and its history."""

    services: Services
    visitor: str | None = None  # who this browser session is (public mode: whose runs are whose)
    client: str | None = None  # whose rate limit its runs count against (a login, an address)
    session: Session | None = None
    trajectory: Trajectory | None = None
    timings: dict[int, Timing] = field(default_factory=dict)
    notices: list[Notice] = field(default_factory=list)
    # Streamed text goes to the page in batches: every update costs a few hundred bytes of
    # framing, so one goes out after ``refresh`` seconds once ``batch_bytes`` of new text built up,
    # or after ``max_wait`` seconds whatever came (bench/bench_ui.py measures the trade-off).
    refresh: float = 0.1
    batch_bytes: int = 384
    max_wait: float = 0.4

    # -- runs -----------------------------------------------------------------------------

    async def engine(self, settings: RunSettings) -> Engine:
        backend = self.services.backend(settings)
        policy = HintPolicy(rounds=settings.rounds, conjunction_p=settings.conjunction_p,
                            categories=tuple(settings.categories) if settings.categories else None,
                            seed=settings.seed, library=self.services.library)
        config = EngineConfig(max_tool_calls=settings.max_tool_calls,
                              max_tokens=settings.max_tokens, temperature=settings.temperature,
                              top_p=settings.top_p, seed=settings.seed,
                              kernel_timeout=settings.kernel_timeout)
        return Engine(backend, await self.services.pool(), policy, config)

    async def run(self, problem: Problem | str, settings: RunSettings) -> AsyncIterator[Trajectory]:
        """Start a new trajectory and stream it: yields the (live) trajectory as it grows."""
        if isinstance(problem, str):
            if not problem.strip():
                raise ValueError("type a problem first (or pick an example)")
            problem = Problem(question=problem.strip())
        engine = await self.engine(settings)
        owner = {"visitor": self.visitor} if self.visitor else {}
        traj = await asyncio.to_thread(engine.new_trajectory, problem, ui=asdict(settings),
                                       **owner)
        async with contextlib.aclosing(self._drive(engine, traj)) as updates:
            async for t in updates:
                yield t

    async def resume(self, trajectory: Trajectory, settings: RunSettings,
                     ) -> AsyncIterator[Trajectory]:
        """Continue a stopped (or interrupted) trajectory from its exact text."""
        if trajectory.status == "finished":
            raise ValueError("this trajectory is finished: rewind to a segment to branch from it")
        owner = trajectory.settings.get("visitor")
        if self.services.deployment.public and owner and owner != self.visitor:
            raise NotAllowed("this run is someone else's: branch from it instead (Rewind & "
                             "branch) to continue it as your own")
        engine = await self.engine(settings)
        async with contextlib.aclosing(self._drive(engine, trajectory)) as updates:
            async for t in updates:
                yield t

    def branch(self, trajectory: Trajectory, index: int, text: str | None) -> Trajectory:
        """A new trajectory that shares ``trajectory``'s segments before ``index``; segment
        ``index`` is replaced by ``text`` (kept as it was when None, dropped when empty)."""
        if not 0 <= index < len(trajectory.segments):
            raise ValueError(f"no segment {index}: this trajectory has "
                             f"{len(trajectory.segments)}")
        segments = [Segment.from_dict(s.to_dict()) for s in trajectory.segments[:index]]
        old = trajectory.segments[index]
        if text is None:
            segments.append(Segment.from_dict(old.to_dict()))
        elif text.strip():
            source = old.source if text == old.text else "human"
            meta = dict(old.meta) if text == old.text else {"edited_from": old.source}
            if old.kind == "output":  # an edited output is a person's, not the kernel's
                meta["edited"] = True
            segments.append(Segment(old.kind, text, source, meta))  # type: ignore[arg-type]
        settings = dict(trajectory.settings)
        settings.update(parent_id=trajectory.id, branch_point=index)
        settings.pop("visitor", None)
        if self.visitor:
            settings["visitor"] = self.visitor
        return Trajectory(problem=trajectory.problem, prompt=trajectory.prompt,
                          segments=segments, status="cancelled", settings=settings)

    async def rewind(self, trajectory: Trajectory, index: int, text: str | None,
                     settings: RunSettings) -> AsyncIterator[Trajectory]:
        """Branch at ``index`` and regenerate from there; the original is kept."""
        branch = self.branch(trajectory, index, text)
        engine = await self.engine(settings)
        async with contextlib.aclosing(self._drive(engine, branch)) as updates:
            async for t in updates:
                yield t

    async def _drive(self, engine: Engine, traj: Trajectory) -> AsyncIterator[Trajectory]:
        if self.running:
            raise RuntimeError("a run is in progress: stop it first")
        self.trajectory, self.timings, self.notices = traj, {}, []
        session = self.session = engine.start(traj)
        if self.services.store is not None:
            from startui.store import Recorder

            session.subscribe(Recorder(self.services.store))
        last, pending = 0.0, 0
        try:
            async for event in session.events():
                now = time.monotonic()
                if isinstance(event, SegmentStarted):
                    self.timings[event.index] = Timing(now)
                elif isinstance(event, SegmentFinished):
                    self.timings.setdefault(event.index, Timing(now)).finished = now
                elif isinstance(event, Notice):
                    self.notices.append(event)
                if isinstance(event, SegmentStarted):
                    continue  # shown with its first text, or when it finishes (hints, outputs)
                if isinstance(event, TextDelta):
                    pending += len(event.text)
                    waited = now - last
                    if waited < self.refresh or (pending < self.batch_bytes
                                                 and waited < self.max_wait):
                        continue
                last, pending = now, 0
                if not isinstance(event, TrajectoryFinished):
                    yield traj
            yield traj
        finally:
            if session.running:  # the page went away mid-run: stop for real
                session.stop()
                with contextlib.suppress(Exception):
                    async for _ in session.events():
                        pass

    def open(self, trajectory_id: str | None) -> Trajectory:
        """The trajectory on screen: the live one, or a saved one from the store."""
        live = self.trajectory
        if live is not None and (trajectory_id is None or live.id == trajectory_id):
            return live
        if not trajectory_id:
            raise ValueError("no trajectory on screen: run one or open a saved one")
        if self.services.store is None:
            raise ValueError("this app runs without a store")
        try:
            return self.services.store.load_trajectory(trajectory_id)
        except Exception as e:  # noqa: BLE001 - said to the person; the app keeps serving
            raise ValueError(f"cannot open {trajectory_id[:12]}: {e}") from e

    # -- steering -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.session is not None and self.session.running

    def insert_hint(self, text: str) -> str:
        if not self.running:
            raise ValueError("nothing is running: a hint goes into a live run")
        hint = self.session.insert_hint(text)  # type: ignore[union-attr]
        return hint.text

    def stop(self) -> bool:
        if not self.running:
            return False
        self.session.stop()  # type: ignore[union-attr]
        return True
