"""One batch worker's claims on its run's tasks: what it holds, renews, finishes and gives back.

The store keeps the run's tasks and the claims on them (:mod:`startui.store.tasks`); this is the
worker's side, which :class:`startui.rft.generate.Batch` drives:

- ``write_plan``: every worker writes the plan (the store keeps one copy) and learns which of
  its tasks are done already;
- ``next``: a task for one of the worker's coroutines, claimed for every coroutine asking at
  once (a few at a time); when other workers hold the rest, it waits for them to finish or for
  their leases to run out, and then takes those tasks over; None when nothing is left;
- a heartbeat thread renews the leases every lease/3 (a thread, so a busy event loop cannot let
  them run out) and reports a claim the store no longer has as this worker's: it was lost (the
  worker hung past its lease and another took the task over);
- ``settle``: the task done, or released for a later run (cancelled, error);
- ``wind_down``: every claim still held released, and what the other workers did counted.

A task that ended in error here is not claimed again by this worker in this invocation (a
re-run retries it; another worker may meanwhile), so no error is retried forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from startui.store.tasks import Claim, PlannedTask, Scope, TaskCounts

if TYPE_CHECKING:
    from startui.store import Store

log = logging.getLogger(__name__)


class WorkerClaims:
    """See the module docstring. ``on_lost(trajectory_id, attempt)`` runs on the event loop
    when a claim was lost."""

    def __init__(self, store: Store, run: str, worker: str, lease: float,
                 on_lost: Callable[[str, int], None]) -> None:
        self.store = store
        self.run = run
        self.worker = worker
        self.lease = lease
        self.on_lost = on_lost
        self.scope = Scope(())
        self.claimed = 0  # claims made
        self.skipped = 0  # tasks done before this worker started
        self.by_others = 0  # tasks other workers finished while this one ran
        self.busy_elsewhere = 0  # tasks other workers hold now
        self._held: dict[str, int] = {}  # queued or running: trajectory id -> claim number
        self._lock = threading.Lock()  # the heartbeat thread reads _held
        self._ready: deque[Claim] = deque()  # claimed, not started yet
        self._failed: set[str] = set()
        self._marked_done = 0
        self._waiting = 0  # coroutines asking for a task
        self._drained = False
        self._claiming: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._beat = threading.Event()
        self._heartbeat: threading.Thread | None = None

    # -- the plan -----------------------------------------------------------------------------

    def write_plan(self, tasks: Sequence[PlannedTask], settings: dict[str, Any],
                   modes: tuple[tuple[str, int], ...]) -> int:
        """Write the plan; returns how many of these tasks are not done yet."""
        self.scope = Scope(modes)
        if not tasks:
            return 0
        written = self.store.write_plan(self.run, tasks, settings, self.scope)
        done = written.done
        mine = {t.problem_id for t in tasks}
        if written.run_problems != len(mine):  # other workers planned problems this one lacks
            self.scope = Scope(modes, tuple(sorted(mine)))
            done = self.store.task_counts(self.run, self.worker, self.scope).done
        self.skipped = done
        return len(tasks) - done

    # -- claiming -----------------------------------------------------------------------------

    async def next(self, stopping: Callable[[], bool]) -> Claim | None:
        """The next task for one of the worker's coroutines (see the module docstring)."""
        if self._claiming is None:
            self._claiming = asyncio.Lock()
        self._waiting += 1
        try:
            async with self._claiming:
                while not stopping() and not self._drained:
                    if self._ready:
                        return self._ready.popleft()
                    got = await asyncio.to_thread(
                        self.store.claim_tasks, self.run, self.worker, n=self._waiting,
                        lease=self.lease, scope=self.scope, exclude=self._exclude())
                    if got:
                        with self._lock:
                            self._held.update((c.trajectory_id, c.attempt) for c in got)
                        self._ready.extend(got)
                        self.claimed += len(got)
                        continue
                    counts = await asyncio.to_thread(self.store.task_counts, self.run,
                                                     self.worker, self.scope, self._exclude())
                    self._note(counts)
                    with self._lock:
                        mine = len(self._held)
                    # (claims under this worker's name it does not hold: its previous life's,
                    # killed less than a lease ago; they are taken over when they run out)
                    if counts.claimable == counts.held_elsewhere == 0 \
                            and counts.held_here <= mine:
                        self._drained = True
                    else:  # locked by a claim in flight (ms), or held by live workers (a lease)
                        await asyncio.sleep(0.05 if counts.claimable else self._poll)
                return None
        finally:
            self._waiting -= 1

    def _exclude(self) -> list[str]:
        """Tasks not to claim: those that failed here this time, and those this worker holds
        (a claim of its own whose lease ran out while it hung is for another worker to take
        over, not for a second session here)."""
        with self._lock:
            return sorted(self._failed | self._held.keys())

    @property
    def _poll(self) -> float:
        return min(0.5, max(0.1, self.lease / 4))

    def fail(self, trajectory_id: str) -> None:
        """It ended in error here: not claimed again by this worker this time."""
        self._failed.add(trajectory_id)

    def settle(self, claim: Claim, done: bool) -> None:
        """Mark the task done, or release it for a later run (cancelled, error)."""
        with self._lock:
            if self._held.get(claim.trajectory_id) != claim.attempt:
                return  # lost meanwhile
            del self._held[claim.trajectory_id]
        held = [(claim.trajectory_id, claim.attempt)]
        if done:
            n = self.store.finish_tasks(self.worker, held)
            with self._lock:
                self._marked_done += n
        else:
            self.store.release_tasks(self.worker, held)

    def forget(self, trajectory_id: str, attempt: int) -> bool:
        """The claim was lost: drop it; False when it was not held (settled, or older)."""
        with self._lock:
            if self._held.get(trajectory_id) != attempt:
                return False
            del self._held[trajectory_id]
        self._ready = deque(c for c in self._ready if c.trajectory_id != trajectory_id)
        return True

    def lost_soon(self, trajectory_id: str, attempt: int) -> None:
        """From any thread: tell the event loop the claim was lost."""
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to stop
                self._loop.call_soon_threadsafe(self.on_lost, trajectory_id, attempt)

    # -- the heartbeat ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the heartbeat (call from the event loop)."""
        self._loop = asyncio.get_running_loop()
        self._beat.clear()
        self._heartbeat = threading.Thread(target=self._beating, daemon=True,
                                           name=f"startui-heartbeat-{self.run}")
        self._heartbeat.start()

    def _beating(self) -> None:
        while not self._beat.wait(self.lease / 3):
            with self._lock:
                held = list(self._held.items())
            try:
                if held:
                    kept = self.store.renew_claims(self.worker, held, self.lease)
                    for tid, attempt in held:
                        if tid not in kept:
                            self.lost_soon(tid, attempt)
                self._note(self.store.task_counts(self.run, self.worker, self.scope))
            except Exception as e:  # noqa: BLE001 - the database may come back before they run out
                log.warning("could not renew %d claims (%s): trying again", len(held), e)

    def wind_down(self) -> None:
        """Stop the heartbeat, release the claims still held (a later run, or another worker,
        takes them), count what the other workers did. Blocking: run it in a thread."""
        self._beat.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
        with self._lock:
            held, self._held = list(self._held.items()), {}
        self._ready.clear()
        if held:
            self.store.release_tasks(self.worker, held)
        self._note(self.store.task_counts(self.run, self.worker, self.scope))

    def _note(self, counts: TaskCounts) -> None:
        with self._lock:
            mine = self._marked_done
        self.by_others = max(0, counts.done - self.skipped - mine)
        self.busy_elsewhere = counts.held_elsewhere
