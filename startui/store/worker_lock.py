"""One batch worker process per SQLite database.

SQLite takes one writer at a time; several ``generate`` workers on one file would queue behind
each other's commits at best. So a batch worker holds an OS lock (``flock``) on a file beside
the database for its whole life, and a second worker process fails at once with a message that
names the holder and says what to do (several workers: PostgreSQL). The kernel drops the lock
when the process ends, however it ends (SIGKILL included): a lock file left behind by a dead
worker never blocks anyone. Batches of one process (the web app's, a test's) share the lock.

The web app itself never takes it: only while it runs a batch.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from startui.store.repository import StoreError

try:
    import fcntl
except ImportError:  # not on Windows: no lock there (SQLite's own locking still holds)
    fcntl = None  # type: ignore[assignment]

_guard = threading.Lock()
_held: dict[str, list[int]] = {}  # lock file → [fd, batches of this process holding it]


class WorkerLockError(StoreError):
    """Another process holds the batch worker lock of this SQLite database."""


def lock_path(database: str | os.PathLike[str]) -> Path:
    db = Path(database).expanduser().resolve()
    return db.with_name(db.name + ".worker-lock")


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another process"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("since", 0)))
    return (f"pid {info.get('pid', '?')} on host {info.get('host', '?')} (worker "
            f"{info.get('worker', '?')}, since {since})")


@contextmanager
def hold(database: str | os.PathLike[str], worker: str) -> Iterator[bool]:
    """Hold the lock of ``database`` while the block runs; yields True for the process's first
    holder (nobody else was working on the database: claims found there are dead ones)."""
    path = lock_path(database)
    key = str(path)
    with _guard:
        entry = _held.get(key)
        if entry is not None:
            entry[1] += 1
            first = False
        else:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    raise WorkerLockError(
                        f"another generate worker is writing to {Path(database)}: "
                        f"{_holder(path)}. A SQLite store takes one worker process at a time: "
                        "wait for it to finish or stop it (Ctrl-C; the same command finishes the "
                        "run later). To run several workers on one run — on this machine or "
                        "many — use PostgreSQL: --db postgresql+psycopg://USER:PASSWORD@HOST/DB "
                        "(README, \"Many machines\")") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                      "worker": worker, "since": time.time()}).encode(), 0)
            _held[key] = entry = [fd, 1]
            first = True
    try:
        yield first
    finally:
        with _guard:
            entry[1] -= 1
            if entry[1] == 0:
                del _held[key]
                os.ftruncate(entry[0], 0)
                os.close(entry[0])  # closing the last descriptor drops the flock
