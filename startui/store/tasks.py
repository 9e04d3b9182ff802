"""The tasks of a batch run, claimed by workers: many processes, many machines, one store.

A batch run's *plan* is one ``run_tasks`` row per task ``(problem, mode, sample)``, keyed by the
task's deterministic trajectory id. Every worker writes the plan when it starts
(``INSERT … ON CONFLICT DO NOTHING``: the first writer's rows and order win, nothing is
duplicated, concurrent writers are safe), then *claims* a few tasks at a time:

- a claim takes ``todo`` tasks, or ``claimed`` ones whose lease ran out (their worker died or
  hung), in the plan's order; on PostgreSQL the candidates are read ``FOR UPDATE SKIP LOCKED``,
  so workers claiming at once never wait on each other and never get the same task; on SQLite
  the store's single writer transaction (``BEGIN IMMEDIATE``) is the same guarantee;
- it writes the worker's name, ``lease_until`` (the database's clock plus the lease) and bumps
  ``attempts``: the claim's number, its *fencing token*;
- the worker renews its leases while it works (a heartbeat), marks a task ``done`` once its
  trajectory finished, and releases it (``todo`` again) when it ended cancelled or in error, so
  a later run retries it.

Every write a worker makes for a claimed trajectory is *fenced* (:class:`Fenced`): the same
transaction first checks that the task is still claimed by this worker under this claim's number
(``FOR SHARE`` on PostgreSQL, so a take-over waits for the write or the write sees the
take-over). A worker whose lease ran out while it was paused therefore cannot write over the
trajectory another worker took over: one writer per trajectory at a time, whatever the clocks do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import and_, case, exists, false, func, or_, select, tuple_, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from startui.store import repository
from startui.store.models import RunTaskRow, TrajectoryRow, utcnow
from startui.store.repository import StoreError

if TYPE_CHECKING:
    from startui.trajectory import Trajectory

log = logging.getLogger(__name__)
R = TypeVar("R")
T = RunTaskRow
TODO, CLAIMED, DONE = "todo", "claimed", "done"
_CHUNK = 500  # rows per INSERT / IN list


class ClaimLost(StoreError):
    """The task is no longer this worker's claim (its lease ran out and another worker took it
    over): the write was refused, nothing was changed."""


@dataclass(frozen=True)
class PlannedTask:
    trajectory_id: str
    problem_id: str
    mode: str
    sample: int
    position: int


@dataclass(frozen=True)
class Scope:
    """Which of a run's tasks a worker takes: ``modes`` maps a mode to how many samples of it
    (``{"greedy": 1, "hinted": 4}``); ``problem_ids`` None means every problem of the run."""

    modes: tuple[tuple[str, int], ...]
    problem_ids: tuple[str, ...] | None = None

    def where(self, run_id: str) -> Any:
        modes = [and_(T.mode == m, T.sample < n) for m, n in self.modes if n > 0]
        cond = and_(T.run_id == run_id, or_(*modes) if modes else false())
        if self.problem_ids is not None:
            cond = and_(cond, T.problem_id.in_(self.problem_ids))
        return cond


@dataclass(frozen=True)
class Claim:
    """A task this worker holds. ``attempt`` is the claim's number (the fencing token);
    ``taken_over`` names the worker whose lease ran out, when the task was someone's."""

    trajectory_id: str
    problem_id: str
    mode: str
    sample: int
    attempt: int
    taken_over: str | None = None


@dataclass(frozen=True)
class Plan:
    """What a worker learns from writing the plan: its tasks already done, and how many
    problems the run has (more than the worker's own: other workers planned more)."""

    done: int
    run_problems: int


@dataclass(frozen=True)
class TaskCounts:
    """A run's tasks (within a scope) as one worker sees them."""

    done: int = 0
    done_here: int = 0  # done by this worker (this or an earlier invocation under its name)
    claimable: int = 0  # todo, or claimed with a lease that ran out (and not excluded)
    held_here: int = 0
    held_elsewhere: int = 0  # claimed by other workers, lease running


def db_now(s: Session) -> datetime:
    """The database's clock on PostgreSQL (workers on several machines compare leases against
    one clock), this process's on SQLite (one machine)."""
    if s.get_bind().dialect.name == "postgresql":
        return s.scalar(select(func.now()))  # type: ignore[return-value]
    return utcnow()


def _insert(s: Session) -> Any:
    dialect = s.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(T)
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(T)
    raise StoreError(f"batch runs need PostgreSQL or SQLite, not {dialect}")


# --- the plan ------------------------------------------------------------------------------

def write_plan(s: Session, run_id: str, tasks: Sequence[PlannedTask], settings: dict[str, Any],
               scope: Scope) -> Plan:
    """Write the run (its settings row) and every task not written yet; tasks whose trajectory
    already finished (runs from before claims existed, a worker killed between its last write
    and marking the task done) are done."""
    repository.ensure_run(s, settings)
    now = utcnow()
    for i in range(0, len(tasks), _CHUNK):
        rows = [{"trajectory_id": t.trajectory_id, "run_id": run_id, "problem_id": t.problem_id,
                 "mode": t.mode, "sample": t.sample, "position": t.position, "state": TODO,
                 "worker": None, "lease_until": None, "attempts": 0, "updated_at": now}
                for t in tasks[i:i + _CHUNK]]
        s.execute(_insert(s).values(rows).on_conflict_do_nothing(index_elements=["trajectory_id"]))
    finished = exists().where(TrajectoryRow.id == T.trajectory_id,
                              TrajectoryRow.status == "finished")
    s.execute(update(T).where(T.run_id == run_id, T.state == TODO, finished)
              .values(state=DONE, updated_at=now).execution_options(synchronize_session=False))
    done = s.scalar(select(func.count()).select_from(T).where(scope.where(run_id),
                                                              T.state == DONE)) or 0
    problems = s.scalar(select(func.count(func.distinct(T.problem_id)))
                        .where(T.run_id == run_id)) or 0
    return Plan(done=done, run_problems=problems)


# --- claims ----------------------------------------------------------------------------------

def claim(s: Session, run_id: str, worker: str, *, n: int, lease: float, scope: Scope,
          exclude: Sequence[str] = ()) -> list[Claim]:
    """Claim up to ``n`` tasks (see the module docstring)."""
    now = db_now(s)
    free = or_(T.state == TODO, and_(T.state == CLAIMED, T.lease_until < now))
    q = select(T.trajectory_id, T.problem_id, T.mode, T.sample, T.state, T.worker).where(
        scope.where(run_id), free)
    if exclude:
        q = q.where(T.trajectory_id.not_in(list(exclude)))
    q = q.order_by(T.position).limit(n)
    if s.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    rows = s.execute(q).all()
    if not rows:
        return []
    attempts = dict(s.execute(
        update(T).where(T.trajectory_id.in_([r.trajectory_id for r in rows]))
        .values(state=CLAIMED, worker=worker, lease_until=now + timedelta(seconds=lease),
                attempts=T.attempts + 1, updated_at=now)
        .returning(T.trajectory_id, T.attempts)
        .execution_options(synchronize_session=False)).all())
    return [Claim(r.trajectory_id, r.problem_id, r.mode, r.sample, attempts[r.trajectory_id],
                  r.worker if r.state == CLAIMED else None) for r in rows]


def _held(worker: str, held: Sequence[tuple[str, int]]) -> Any:
    return and_(T.worker == worker, T.state == CLAIMED,
                tuple_(T.trajectory_id, T.attempts).in_([tuple(h) for h in held]))


def renew(s: Session, worker: str, held: Sequence[tuple[str, int]], lease: float) -> set[str]:
    """The heartbeat: extend the leases of the claims still held; returns their ids (a claim
    missing from the answer was lost: its lease ran out and another worker took it)."""
    now = db_now(s)
    kept: set[str] = set()
    for i in range(0, len(held), _CHUNK):
        kept.update(s.execute(
            update(T).where(_held(worker, held[i:i + _CHUNK]))
            .values(lease_until=now + timedelta(seconds=lease), updated_at=now)
            .returning(T.trajectory_id).execution_options(synchronize_session=False)).scalars())
    return kept


def settle(s: Session, worker: str, held: Sequence[tuple[str, int]], *, done: bool) -> int:
    """Mark claims done (their trajectory finished) or release them (``todo`` again: a later
    claim resumes the trajectory); returns how many were still held."""
    now = utcnow()
    values: dict[str, Any] = ({"state": DONE, "lease_until": None} if done else
                              {"state": TODO, "worker": None, "lease_until": None})
    n = 0
    for i in range(0, len(held), _CHUNK):
        n += s.execute(update(T).where(_held(worker, held[i:i + _CHUNK]))
                       .values(updated_at=now, **values)
                       .execution_options(synchronize_session=False)).rowcount
    return n


def release_all(s: Session) -> int:
    """Every claim back to ``todo``: for the SQLite worker lock's new holder, which knows that
    whoever made them is gone (see :mod:`startui.store.worker_lock`)."""
    return s.execute(update(T).where(T.state == CLAIMED)
                     .values(state=TODO, worker=None, lease_until=None, updated_at=utcnow())
                     .execution_options(synchronize_session=False)).rowcount


def counts(s: Session, run_id: str, worker: str, scope: Scope,
           exclude: Sequence[str] = ()) -> TaskCounts:
    now = db_now(s)
    expired = and_(T.state == CLAIMED, T.lease_until < now)
    claimable = or_(T.state == TODO, expired)
    if exclude:
        claimable = and_(claimable, T.trajectory_id.not_in(list(exclude)))
    live = and_(T.state == CLAIMED, T.lease_until >= now)

    def n(cond: Any) -> Any:
        return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)

    row = s.execute(select(
        n(T.state == DONE), n(and_(T.state == DONE, T.worker == worker)), n(claimable),
        n(and_(live, T.worker == worker)), n(and_(live, T.worker != worker)))
        .where(scope.where(run_id))).one()
    return TaskCounts(*(int(v) for v in row))


def check(s: Session, trajectory_id: str, worker: str, attempt: int) -> None:
    """The fence: raise :class:`ClaimLost` unless ``worker`` holds the task under claim number
    ``attempt``. On PostgreSQL the row is read ``FOR SHARE``: a concurrent take-over waits
    until this transaction ends (SKIP LOCKED passes the row over), so no write lands after a
    take-over it did not see."""
    row = s.execute(select(T.state, T.worker, T.attempts).where(T.trajectory_id == trajectory_id)
                    .with_for_update(read=True)).first()
    if row is None or (row.state, row.worker, row.attempts) != (CLAIMED, worker, attempt):
        holder = "nobody" if row is None or row.state != CLAIMED else row.worker
        raise ClaimLost(f"task {trajectory_id} is no longer {worker}'s claim #{attempt} "
                        f"(now: {row.state if row else 'not planned'}, held by {holder})")


def expired_claims(s: Session, trajectory_ids: Sequence[str]) -> set[str]:
    """Of these (running) trajectories, those whose task nobody holds any more: released, or
    claimed by a worker whose lease ran out. Their writer is gone, wherever it ran."""
    now = db_now(s)
    out: set[str] = set()
    for i in range(0, len(trajectory_ids), _CHUNK):
        out.update(s.scalars(select(T.trajectory_id).where(
            T.trajectory_id.in_(trajectory_ids[i:i + _CHUNK]),
            or_(T.state != CLAIMED, T.lease_until < now))))
    return out


# --- the fenced store a claim's holder writes through ------------------------------------------

class Fenced:
    """The store as the holder of one claim sees it: every write first runs :func:`check` in
    its own transaction, so it lands only while the claim is this worker's. A
    :class:`~startui.store.recorder.Recorder` takes it in place of the store (it needs only
    ``submit`` and ``worker``). ``on_lost`` is called (from the store's writer thread) when a
    write was refused."""

    def __init__(self, store: Any, claim: Claim, holder: str,
                 on_lost: Callable[[], None] | None = None) -> None:
        self.store = store
        self.claim = claim
        self.holder = holder
        self.on_lost = on_lost

    @property
    def worker(self) -> str:
        return str(self.store.worker)

    def _guarded(self, fn: Callable[[Session], R]) -> Callable[[Session], R]:
        c = self.claim

        def run(s: Session) -> R:
            check(s, c.trajectory_id, self.holder, c.attempt)
            return fn(s)
        return run

    def _watch(self, fut: Future[Any]) -> None:
        if not fut.cancelled() and isinstance(fut.exception(), ClaimLost) and self.on_lost:
            self.on_lost()

    def submit(self, fn: Callable[[Session], R]) -> Future[R]:
        fut = self.store.submit(self._guarded(fn))
        fut.add_done_callback(self._watch)
        return fut

    def write(self, fn: Callable[[Session], R]) -> R:
        try:
            return self.store.write(self._guarded(fn))  # type: ignore[no-any-return]
        except ClaimLost:
            if self.on_lost:
                self.on_lost()
            raise

    def save_trajectory(self, traj: Trajectory) -> None:
        worker = self.worker
        self.write(lambda s: repository.save_trajectory(s, traj, worker=worker))


# --- the Store's methods -----------------------------------------------------------------------

class RunTasks:
    """A base class of :class:`~startui.store.facade.Store`: a batch run's tasks and claims.
    Claims, heartbeats and settling go through ``_retrying`` (on PostgreSQL on the caller's
    thread, concurrently with other writers, retried on a deadlock; on SQLite on the writer)."""

    def write_plan(self, run_id: str, tasks: Sequence[PlannedTask], settings: dict[str, Any],
                   scope: Scope) -> Plan:
        return self._retrying(  # type: ignore[attr-defined, no-any-return]
            lambda s: write_plan(s, run_id, tasks, settings, scope))

    def claim_tasks(self, run_id: str, worker: str, *, n: int, lease: float, scope: Scope,
                    exclude: Sequence[str] = ()) -> list[Claim]:
        return self._retrying(  # type: ignore[attr-defined, no-any-return]
            lambda s: claim(s, run_id, worker, n=n, lease=lease, scope=scope, exclude=exclude))

    def renew_claims(self, worker: str, held: Sequence[tuple[str, int]],
                     lease: float) -> set[str]:
        return self._retrying(  # type: ignore[attr-defined, no-any-return]
            lambda s: renew(s, worker, held, lease))

    def finish_tasks(self, worker: str, held: Sequence[tuple[str, int]]) -> int:
        return self._retrying(  # type: ignore[attr-defined, no-any-return]
            lambda s: settle(s, worker, held, done=True))

    def release_tasks(self, worker: str, held: Sequence[tuple[str, int]]) -> int:
        return self._retrying(  # type: ignore[attr-defined, no-any-return]
            lambda s: settle(s, worker, held, done=False))

    def task_counts(self, run_id: str, worker: str, scope: Scope,
                    exclude: Sequence[str] = ()) -> TaskCounts:
        with self.read() as s:  # type: ignore[attr-defined]
            return counts(s, run_id, worker, scope, exclude)

    def fenced(self, claim: Claim, holder: str,
               on_lost: Callable[[], None] | None = None) -> Fenced:
        return Fenced(self, claim, holder, on_lost)

    @contextmanager
    def batch_lock(self, worker: str) -> Iterator[None]:
        """Held by a batch worker for its life. On a SQLite file: the OS lock that makes a
        second worker process fail at once (:mod:`startui.store.worker_lock`); its new holder
        releases the claims of workers that died. Elsewhere (PostgreSQL): nothing to hold."""
        from startui.store import worker_lock

        url = make_url(self.url)  # type: ignore[attr-defined]
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            yield
            return
        with worker_lock.hold(url.database, worker) as first:
            if first:
                n = self.write(release_all)  # type: ignore[attr-defined]
                if n:
                    log.info("released %d claims of workers that stopped", n)
            yield
