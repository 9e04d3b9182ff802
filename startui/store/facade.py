"""The trajectory store: where every problem, run, trajectory, review and revision lives.

``Store(url)`` opens any SQLAlchemy URL — by default a SQLite file (``STARTUI_DB_URL``, else
``/data/startui.sqlite`` on Hugging Face Spaces, else ``db/startui.sqlite`` in the repository) —
upgrades its schema with Alembic and marks trajectories left "running" by a dead process as
"interrupted". :class:`~startui.store.recorder.Recorder` subscribes it to the engine's events.

Concurrency, datasette style: every write runs on the store's single writer thread (one writer
path, so SQLite never sees two writers from this process, and ``BEGIN IMMEDIATE`` plus a busy
timeout handles other processes); reads run on the caller's thread from a connection pool and,
under WAL, never wait for the writer.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import socket
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from startui import resources
from startui.store import digests, queries, records, repository
from startui.store.models import TrajectoryRow
from startui.store.queries import TrajectorySummary
from startui.store.repository import ConflictError, NotFoundError, StoreError
from startui.store.reviewing import Reviewing
from startui.store.tasks import RunTasks, expired_claims
from startui.trajectory import Problem, Segment, Trajectory

__all__ = ["ConflictError", "NotFoundError", "Store", "StoreError", "default_url", "normalize_url"]

log = logging.getLogger(__name__)
R = TypeVar("R")

BUSY_TIMEOUT_S = 30
# A running trajectory whose writer we cannot check (another host) and that has not been written
# for this long is considered abandoned.
STALE_AFTER = timedelta(hours=6)

_HOST = socket.gethostname()
_LIVE: set[str] = set()  # worker tokens of the stores open in this process


def default_url() -> str:
    """``STARTUI_DB_URL``, else ``startui.sqlite`` in :func:`startui.resources.data_dir`
    (``/data`` on Spaces, ``db/`` in a checkout, the user's data folder when installed)."""
    if os.environ.get("STARTUI_DB_URL"):
        return os.environ["STARTUI_DB_URL"]
    folder = resources.data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'startui.sqlite'}"


def normalize_url(url: str) -> str:
    """Accept what people paste: a bare file path means SQLite, ``postgres://`` and
    ``postgresql://`` mean the psycopg 3 driver (the one we ship)."""
    url = url.strip()
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def describe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


GROUP_MAX = 64  # writes committed together at most (see _Writer)


class _Writer:
    """One thread that runs every write of a store, in submission order.

    Group commit: transactions queued while one ran (``submit(..., group=True)``) are run one
    after the other in ONE transaction, each in its own savepoint (a failing one is rolled
    back alone and its caller gets the error), and committed once — a commit (an fsync on
    SQLite) per group instead of per write, which is what bounds a batch run with many
    trajectories in flight. Each caller's future resolves after the commit."""

    def __init__(self, name: str,
                 run_group: Callable[[list[tuple[Any, Future[Any]]]], None] | None = None,
                 ) -> None:
        self._q: queue.Queue[tuple[Any, Future[Any], bool] | None] = queue.Queue()
        self._run_group = run_group
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        carry: Any = False  # an item taken off the queue while gathering a group: next up
        while True:
            item = self._q.get() if carry is False else carry
            carry = False
            if item is None:
                return
            fn, fut, group = item
            if group and self._run_group is not None:
                items = [(fn, fut)]
                while len(items) < GROUP_MAX:
                    try:
                        nxt = self._q.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None or not nxt[2]:
                        carry = nxt  # not groupable (or the end): right after this group
                        break
                    items.append((nxt[0], nxt[1]))
                live = [(f, u) for f, u in items if u.set_running_or_notify_cancel()]
                if live:
                    self._run_group(live)
                continue
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn())
                except BaseException as e:  # noqa: BLE001 - handed to the waiting caller
                    fut.set_exception(e)

    def submit(self, fn: Any, *, group: bool = False) -> Future[Any]:
        fut: Future[Any] = Future()
        self._q.put((fn, fut, group))
        return fut

    def on_writer(self) -> bool:
        return threading.current_thread() is self._thread

    def call(self, fn: Callable[[], R]) -> R:
        if threading.current_thread() is self._thread:
            return fn()  # a write composed of writes: already on the writer
        return self.submit(fn).result()

    def stop(self) -> None:
        self._q.put(None)
        self._thread.join(timeout=60)


class Store(Reviewing, RunTasks):
    """The trajectory store (see the module docstring). Thread-safe; use one per process and
    database, and ``close()`` it (or use it as a context manager)."""

    def __init__(self, url: str | None = None, *, upgrade: bool = True,
                 recover: bool = True) -> None:
        self.url = normalize_url(url or default_url())
        self.token = uuid.uuid4().hex[:12]
        self.worker = f"{_HOST}:{os.getpid()}:{self.token}"
        self._memory_lock: threading.RLock | None = None
        self._engine, self._reader = self._connect()
        self._writer = _Writer(f"startui-store-writer-{self.token}", self._tx_group)
        self._closed = False
        _LIVE.add(self.token)
        # Queued writes (a Recorder's segments) must land even if nobody calls close().
        atexit.register(_close_at_exit, weakref.ref(self))
        self._opened = False
        try:
            if upgrade:
                self._writer.call(self._upgrade)
            if recover:
                self.mark_interrupted()
            self._opened = True
        except BaseException:
            self.close()
            raise

    # --- connection and schema ---------------------------------------------------------------

    @property
    def is_sqlite(self) -> bool:
        return self._engine.dialect.name == "sqlite"

    def _connect(self) -> tuple[Engine, Engine]:
        try:
            url = make_url(self.url)
        except ArgumentError as e:
            raise StoreError(f"not a database URL: {self.url!r} ({e}); expected e.g. "
                             "sqlite:///path/to/startui.sqlite or "
                             "postgresql+psycopg://user:password@host/dbname") from e
        shown = describe_url(self.url)
        try:
            if url.get_backend_name() != "sqlite":
                args = {"connect_args": {"connect_timeout": 10}} if (
                    url.get_backend_name() == "postgresql") else {}
                engine = create_engine(url, pool_pre_ping=True, **args)
                self._check(engine, shown)
                return engine, engine
            memory = url.database in (None, "", ":memory:")
            if not memory:
                folder = Path(url.database).expanduser().parent
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                except OSError as e:
                    raise StoreError(f"cannot create the folder for {shown}: {e}") from e
            args: dict[str, Any] = {"connect_args": {"timeout": BUSY_TIMEOUT_S,
                                                     "check_same_thread": False}}
            if memory:  # one shared connection, or every connection is a different database
                args["poolclass"] = StaticPool
                self._memory_lock = threading.RLock()  # ... so reads and writes take turns
            writer = create_engine(url, **args)
            _sqlite_setup(writer, immediate=True)
            self._check(writer, shown)
            if memory:
                return writer, writer
            reader = create_engine(url, **args)
            _sqlite_setup(reader, immediate=False)
            return writer, reader
        except NoSuchModuleError as e:
            raise StoreError(f"no SQLAlchemy dialect/driver for {shown!r} ({e}); for PostgreSQL "
                             "use postgresql+psycopg://... (pip install 'psycopg[binary]')") from e
        except ModuleNotFoundError as e:
            raise StoreError(f"the driver for {shown!r} is not installed: {e}") from e

    @staticmethod
    def _check(engine: Engine, shown: str) -> None:
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except OperationalError as e:
            engine.dispose()
            raise StoreError(f"cannot open database {shown}: {e.orig}") from e

    def _upgrade(self) -> None:
        """Bring the schema to the newest Alembic revision (a no-op when it is already there)."""
        from startui.store.migrations import upgrade

        upgrade(self._engine, shown=describe_url(self.url))

    def close(self) -> None:
        """Mark this store's still-running trajectories interrupted, stop the writer, release
        connections. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._opened:
                self._writer.call(self._interrupt_own)
        except Exception:  # noqa: BLE001 - closing must not fail on a broken database
            log.exception("could not mark running trajectories interrupted on close")
        _LIVE.discard(self.token)
        self._writer.stop()
        self._engine.dispose()
        self._reader.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({describe_url(self.url)!r})"

    # --- transactions ------------------------------------------------------------------------

    def write(self, fn: Callable[[Session], R]) -> R:
        """Run ``fn(session)`` on the writer thread, all or nothing, and return once it is
        committed. The building block for composed writes (a batch job, the review UI). Writes
        that queue up while others run share a commit (see ``_Writer``), each in its own
        savepoint."""
        if self._closed:
            raise StoreError("the store is closed")
        if self._writer.on_writer():
            return self._tx(fn)  # a write composed of writes: already on the writer
        return self._writer.submit(fn, group=True).result()  # type: ignore[no-any-return]

    def submit(self, fn: Callable[[Session], R]) -> Future[R]:
        """Like :meth:`write`, without waiting. Writes submitted while others run are
        committed together (group commit, see ``_Writer``); each is still all or nothing, and
        its future resolves once it is committed."""
        if self._closed:
            raise StoreError("the store is closed")
        return self._writer.submit(fn, group=True)

    def _tx(self, fn: Callable[[Session], R]) -> R:
        with self._turn(), Session(self._engine, expire_on_commit=False) as s, s.begin():
            return fn(s)

    def _tx_group(self, items: list[tuple[Callable[[Session], Any], Future[Any]]]) -> None:
        """Run each write in its own savepoint of one transaction, commit once, then resolve
        the futures: a failed write is rolled back alone; a failed commit fails them all."""
        done: list[tuple[Future[Any], bool, Any]] = []
        try:
            with self._turn(), Session(self._engine, expire_on_commit=False) as s, s.begin():
                for fn, fut in items:
                    try:
                        with s.begin_nested():
                            done.append((fut, True, fn(s)))
                    except Exception as e:  # noqa: BLE001 - this write's caller gets it
                        done.append((fut, False, e))
        except BaseException as e:  # noqa: BLE001 - the commit failed: nothing was stored
            for _, fut in items:
                fut.set_exception(e)
            return
        for fut, ok, value in done:
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read transaction (one consistent snapshot) on the caller's thread."""
        with self._turn(), Session(self._reader) as s, s.begin():
            yield s

    def _turn(self) -> Any:
        return self._memory_lock or nullcontext()

    # --- problems ----------------------------------------------------------------------------

    def upsert_problem(self, problem: Problem) -> str:
        """Insert or update; returns the problem's id (also written to ``problem.id``)."""
        pid, _ = self.write(lambda s: repository.upsert_problems(s, [problem]))[0]
        problem.id = pid
        return pid

    def upsert_problems(self, problems: list[Problem]) -> list[tuple[str, str]]:
        """All in one transaction; (id, "inserted" | "updated" | "unchanged") per problem."""
        return self.write(lambda s: repository.upsert_problems(s, problems))

    def get_problem(self, problem_id: str) -> Problem:
        with self.read() as s:
            return repository.get_problem(s, problem_id)

    def list_problems(self, *, kind: str | None = None, source: str | None = None,
                      limit: int | None = 100, offset: int = 0) -> list[Problem]:
        """Problems (optionally of one kind or source) in a stable order; ``limit=None``: all."""
        with self.read() as s:
            return repository.list_problems(s, kind=kind, source=source, limit=limit,
                                            offset=offset)

    def seed_samples(self, *, only_if_empty: bool = False) -> int:
        """Add the bundled sample problems (startui/data); returns how many were new."""
        from startui.store.problems import load_sample_problems

        if only_if_empty and self.stats()["problems"]:
            return 0
        return sum(a == "inserted" for _, a in self.upsert_problems(load_sample_problems()))

    # --- trajectories ------------------------------------------------------------------------

    def save_trajectory(self, traj: Trajectory) -> None:
        """Insert or fully replace a trajectory (row, problem, run, segments, artifacts)."""
        self.write(lambda s: repository.save_trajectory(s, traj, worker=self.worker))

    def save_trajectories(self, trajs: Iterable[Trajectory], *, batch_size: int = 500) -> int:
        """Bulk insert (one transaction per batch); existing ids are fully updated instead."""
        n, batch = 0, []
        for t in trajs:
            batch.append(t)
            if len(batch) >= batch_size:
                n += self._save_batch(batch)
                batch = []
        return n + (self._save_batch(batch) if batch else 0)

    def _save_batch(self, batch: list[Trajectory]) -> int:
        self.write(lambda s: repository.insert_trajectories(s, batch, worker=self.worker))
        return len(batch)

    def load_trajectory(self, trajectory_id: str) -> Trajectory:
        return self.load_trajectory_versioned(trajectory_id)[0]

    def load_trajectory_versioned(self, trajectory_id: str) -> tuple[Trajectory, int]:
        """The trajectory and the version to pass to :meth:`update_trajectory_segments`."""
        with self.read() as s:
            return repository.load_trajectory(s, trajectory_id)

    def record_segment(self, trajectory_id: str, index: int, segment: Segment) -> None:
        """Upsert the segment at ``index`` (the engine's SegmentFinished)."""
        self.write(lambda s: repository.record_segment(s, trajectory_id, index, segment))

    def truncate_segments(self, trajectory_id: str, keep: int) -> int:
        """Delete segments at positions ``>= keep`` (a rewind); returns how many."""
        return self.write(lambda s: repository.truncate_segments(s, trajectory_id, keep))

    def delete_trajectory(self, trajectory_id: str) -> None:
        self.write(lambda s: repository.delete_trajectory(s, trajectory_id))

    def list_trajectories(self, status: str | None = None, problem_id: str | None = None, *,
                          run_id: str | None = None, review_status: str | None = None,
                          parent_id: str | None = None, kind: str | None = None,
                          visitor: str | None = None, limit: int = 50, offset: int = 0,
                          newest_first: bool = True) -> list[TrajectorySummary]:
        with self.read() as s:
            return queries.list_trajectories(
                s, status=status, problem_id=problem_id, run_id=run_id,
                review_status=review_status, parent_id=parent_id, kind=kind, visitor=visitor,
                limit=limit, offset=offset, newest_first=newest_first)

    def trajectory_summary(self, trajectory_id: str) -> TrajectorySummary:
        """One trajectory's line (status, review status, counters), without its segments."""
        with self.read() as s:
            return queries.summary(s, trajectory_id)

    def count_trajectories(self, **filters: Any) -> int:
        with self.read() as s:
            return queries.count_trajectories(s, **filters)

    def review_queue(self, *, run_id: str | None = None, kind: str | None = None,
                     limit: int = 50, offset: int = 0, after: tuple[str, str] | None = None,
                     ) -> list[TrajectorySummary]:
        """Finished, not yet reviewed, oldest first; ``after`` = (created_at, id) of the last
        row seen pages without OFFSET."""
        with self.read() as s:
            return queries.review_queue(s, run_id=run_id, kind=kind, limit=limit,
                                        offset=offset, after=after)

    def iter_trajectories(self, *, batch_size: int = 200, **filters: Any) -> Iterator[Trajectory]:
        """Every matching trajectory, fully loaded, oldest first (for exports)."""
        return queries.iter_trajectories(lambda: self.read(), batch_size=batch_size, **filters)

    def resolve_runs(self, names: Sequence[str]) -> list[str]:
        """Run ids for the names a user typed (a run's id or its name)."""
        with self.read() as s:
            return records.resolve_runs(s, names)

    def iter_records(self, run_ids: Sequence[str], *, status: str | None = None,
                     batch_size: int = 500) -> Iterator[records.Record]:
        """Every trajectory of the runs with its review and current rule score, in
        (created_at, id) order, a keyset page per short read transaction."""
        after: tuple[Any, str] | None = None
        while True:
            with self.read() as s:
                page = records.records_page(s, run_ids, status=status, after=after,
                                            limit=batch_size)
            if not page:
                return
            yield from page
            after = (page[-1].created_at, page[-1].trajectory.id)

    def load_records(self, ids: Sequence[str], *, batch_size: int = 500,
                     ) -> Iterator[records.Record]:
        """Records for ``ids``, in that order (unknown ids are left out)."""
        for i in range(0, len(ids), batch_size):
            chunk = list(ids[i:i + batch_size])
            with self.read() as s:
                by_id = records.records_by_id(s, chunk)
            yield from (by_id[t] for t in chunk if t in by_id)

    def digest_records(self, run_ids: Sequence[str], *, schema: int,
                       ) -> list[digests.DigestRecord]:
        """Every trajectory of the runs without its text: row, standing with people and the
        scorer, and its digest in format ``schema`` where a valid one is stored (one read)."""
        with self.read() as s:
            return digests.digest_records(s, run_ids, schema=schema)

    def load_texts(self, ids: Sequence[str]) -> list[tuple[Trajectory, int, int]]:
        """(trajectory, version, n_segments) for ``ids``: what a digest is made of."""
        with self.read() as s:
            return digests.load_texts(s, ids)

    def put_digests(self, items: Sequence[tuple[str, int, int, int, dict[str, Any]]]) -> int:
        """Store ``(trajectory id, version, n_segments, schema, data)`` digests."""
        return self.write(lambda s: digests.put(s, items)) if items else 0

    def trajectory_statuses(self, run_id: str) -> dict[str, str]:
        """{trajectory id: status} of one run (what a resumed batch skips or finishes)."""
        with self.read() as s:
            return queries.trajectory_statuses(s, run_id)

    def get_problems(self, ids: Sequence[str]) -> list[Problem]:
        """Problems by id, in that order (unknown ids are left out)."""
        with self.read() as s:
            return repository.get_problems(s, ids)

    def list_runs(self) -> list[dict[str, Any]]:
        with self.read() as s:
            return repository.list_runs(s)

    def stats(self) -> dict[str, Any]:
        with self.read() as s:
            return queries.stats(s)

    # --- dashboards (read only) --------------------------------------------------------------

    def _campaign_id(self, campaign: str | int | None) -> int | None:
        return None if campaign is None else self.get_campaign(campaign).id

    def funnel_counts(self, run_ids: Sequence[str] | None = None, *,
                      campaign: str | int | None = None) -> dict[str, int]:
        """Generated, finished, scored, correct, reviewed, accepted, rejected: of the runs
        (None: every trajectory), of one campaign's items when ``campaign`` is named."""
        cid = self._campaign_id(campaign)
        with self.read() as s:
            return queries.funnel_counts(s, run_ids=run_ids, campaign_id=cid)

    def review_throughput(self, run_ids: Sequence[str] | None = None, *,
                          campaign: str | int | None = None) -> list[dict[str, Any]]:
        """Decisions per reviewer per UTC day (``reviewer``, ``day``, ``decisions``)."""
        cid = self._campaign_id(campaign)
        with self.read() as s:
            return queries.review_throughput(s, run_ids=run_ids, campaign_id=cid)

    def campaign_rating_times(self, campaign: str | int,
                              ) -> list[tuple[str, str, str, float | None, datetime]]:
        """(trajectory id, reviewer, decision, score, when) of a campaign's live votes."""
        cid = self.get_campaign(campaign).id
        with self.read() as s:
            return queries.campaign_rating_times(s, cid)

    def campaign_label_times(self, campaign: str | int,
                             ) -> list[tuple[str, int, int, str, int, datetime]]:
        """(trajectory id, version, position, reviewer, label, when) of a campaign's step
        labels, in the order they were last set."""
        cid = self.get_campaign(campaign).id
        with self.read() as s:
            return queries.campaign_label_times(s, cid)

    def problem_sources(self) -> list[dict[str, Any]]:
        """Problem sources (``source``, ``problems``, ``by_kind``), largest first."""
        with self.read() as s:
            return queries.problem_sources(s)

    # --- crash recovery ----------------------------------------------------------------------

    def mark_interrupted(self, *, stale_after: timedelta = STALE_AFTER) -> int:
        """Mark "running" trajectories whose writer is gone as "interrupted"; returns how many.

        Gone means: written by a process on this host that no longer exists (or by a store of
        this process that was closed), a batch task whose claim nobody holds any more (its
        lease ran out: a worker on another machine died), or not written for ``stale_after``.
        A batch worker opening the database while the web app streams leaves the app's
        trajectories alone.
        """
        return self.write(lambda s: self._mark(s, stale_after))

    def _mark(self, s: Session, stale_after: timedelta) -> int:
        now = datetime.now(UTC)
        dead, elsewhere = [], []
        for tid, worker, updated in s.execute(select(
                TrajectoryRow.id, TrajectoryRow.worker, TrajectoryRow.updated_at)
                .where(TrajectoryRow.status == "running")):
            parts = (worker or "").rsplit(":", 2)
            host, pid, token = parts if len(parts) == 3 else ("", "", "")
            if updated is not None and now - updated > stale_after:
                dead.append(tid)
            elif host == _HOST and pid.isdigit():
                alive = (token in _LIVE) if int(pid) == os.getpid() else _pid_alive(int(pid))
                if not alive:
                    dead.append(tid)
            elif host != _HOST and worker:
                elsewhere.append(tid)
            else:
                dead.append(tid)
        dead += sorted(expired_claims(s, elsewhere)) if elsewhere else []
        for i in range(0, len(dead), 500):
            s.execute(update(TrajectoryRow).where(
                TrajectoryRow.id.in_(dead[i:i + 500]), TrajectoryRow.status == "running")
                .values(status="interrupted", version=TrajectoryRow.version + 1,
                        updated_at=now, worker=None)
                .execution_options(synchronize_session=False))
        if dead:
            log.info("marked %d running trajectories interrupted", len(dead))
        return len(dead)

    def _interrupt_own(self) -> int:
        def run(s: Session) -> int:
            return s.execute(update(TrajectoryRow).where(
                TrajectoryRow.status == "running", TrajectoryRow.worker == self.worker)
                .values(status="interrupted", version=TrajectoryRow.version + 1,
                        updated_at=datetime.now(UTC), worker=None)
                .execution_options(synchronize_session=False)).rowcount
        return self._tx(run)


def _now() -> datetime:
    return datetime.now(UTC)


def _close_at_exit(ref: weakref.ref[Store]) -> None:
    store = ref()
    if store is not None:
        store.close()


def _sqlite_setup(engine: Engine, *, immediate: bool) -> None:
    """Pragmas on every connection, and transactions we begin ourselves: the writer takes the
    write lock up front (``BEGIN IMMEDIATE``) so it waits for another process's writer instead
    of failing half-way with "database is locked"."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _: Any) -> None:
        dbapi_conn.isolation_level = None  # the driver must not BEGIN on its own
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
        cur.execute("PRAGMA foreign_keys = ON")
        if immediate:
            cur.execute("PRAGMA journal_mode = WAL")
            # FULL: a commit survives power loss, not only a killed process. Writes are a few
            # per segment, so the fsync is invisible next to generation.
            cur.execute("PRAGMA synchronous = FULL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
