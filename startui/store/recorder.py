"""The store's subscriber to the engine's events: every finished segment is committed as it ends.

Lives apart from ``startui.store`` so the engine side (events) and the database side meet in one
small place; ``from startui.store import Recorder`` works too.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import threading
import time
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from startui.events import (
    Event,
    SegmentFinished,
    SegmentStarted,
    TextDelta,
    TrajectoryFinished,
    TrajectoryStarted,
)
from startui.store import repository
from startui.store.repository import StoreError

if TYPE_CHECKING:
    from startui.store.facade import Store

log = logging.getLogger(__name__)


class Recorder:
    """Persists the engine's events: subscribe it (``engine.subscribe(recorder)`` or call
    ``recorder.handle(event)``).

    TrajectoryStarted writes the trajectory row (and, on a resume or rewind, syncs its segments);
    SegmentFinished upserts that position; TrajectoryFinished makes the stored trajectory equal the
    final one. The open segment is checkpointed as it grows (at most once per
    ``checkpoint_every`` seconds, still marked open), so a crash — even a SIGKILL — loses at most
    the last ``checkpoint_every`` seconds of streamed text.

    An ad-hoc problem (``problem.id`` None) gets its store id on the engine's own trajectory at
    TrajectoryStarted, so what the engine returns equals what :meth:`Store.load_trajectory` gives.

    ``await recorder(event)`` queues the write on the store's writer thread and returns at once,
    except for TrajectoryFinished, which it awaits so that "the run returned" means "it is saved".
    Write errors are logged and kept in ``errors``; :meth:`flush` waits and re-raises the first.
    """

    def __init__(self, store: Store, *, checkpoint_every: float = 1.0) -> None:
        self.store = store
        self.checkpoint_every = checkpoint_every
        self.errors: list[BaseException] = []
        self._pending: set[Future[Any]] = set()
        self._lock = threading.Lock()
        # (trajectory id, index) → [the open segment as streamed so far, last checkpoint time]
        self._open: dict[tuple[str, int], list[Any]] = {}

    def submit(self, event: Event) -> Future[Any] | None:
        """Queue the write for ``event`` (copied now: the engine may mutate its objects)."""
        store = self.store
        if isinstance(event, TrajectoryFinished):
            for key in [k for k in self._open if k[0] == event.trajectory.id]:
                del self._open[key]
        if isinstance(event, TrajectoryStarted | TrajectoryFinished):
            if event.trajectory.problem.id is None:  # same id the store would give it
                event.trajectory.problem.id = repository.problem_identity(
                    event.trajectory.problem)[0]
            traj = copy.deepcopy(event.trajectory)
            fut = store.submit(lambda s: repository.save_trajectory(s, traj,
                                                                    worker=store.worker))
        elif isinstance(event, SegmentFinished):
            tid, index, seg = event.trajectory_id, event.index, copy.deepcopy(event.segment)
            self._open.pop((tid, index), None)
            fut = store.submit(lambda s: repository.record_segment(s, tid, index, seg))
        elif isinstance(event, SegmentStarted):
            self._open[(event.trajectory_id, event.index)] = [
                copy.deepcopy(event.segment), time.monotonic()]
            return None
        elif isinstance(event, TextDelta):
            fut = self._checkpoint(event)
            if fut is None:
                return None
        else:
            return None
        with self._lock:
            self._pending.add(fut)
        fut.add_done_callback(self._done)
        return fut

    def _checkpoint(self, event: TextDelta) -> Future[Any] | None:
        entry = self._open.get((event.trajectory_id, event.index))
        if entry is None:
            return None
        entry[0].text += event.text
        now = time.monotonic()
        if now - entry[1] < self.checkpoint_every:
            return None
        entry[1] = now
        tid, index = event.trajectory_id, event.index
        seg = copy.deepcopy(entry[0])
        seg.closed = False
        return self.store.submit(lambda s: repository.checkpoint_segment(s, tid, index, seg))

    def _done(self, fut: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(fut)
        if (e := fut.exception()) is not None:
            self.errors.append(e)
            log.error("could not save an engine event: %s", e)

    def handle(self, event: Event) -> None:
        """Write ``event`` now (blocking), raising if the write fails."""
        fut = self.submit(event)
        if fut is not None:
            fut.result()

    async def __call__(self, event: Event) -> None:
        fut = self.submit(event)
        if fut is not None and isinstance(event, TrajectoryFinished):
            await asyncio.wrap_future(fut)

    def flush(self, timeout: float | None = None) -> None:
        """Wait for every queued write; raise the first error any of them had."""
        with self._lock:
            pending = list(self._pending)
        for fut in pending:
            try:
                fut.result(timeout=timeout)
            except Exception:  # noqa: BLE001 - collected in self.errors by _done
                pass
        if self.errors:
            raise StoreError(f"{len(self.errors)} engine events could not be saved; first: "
                             f"{self.errors[0]}") from self.errors[0]
