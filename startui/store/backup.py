"""Backups of a SQLite store: a consistent copy, and a schedule that pushes it to a Hugging Face
dataset repository (what a Space needs: its disk may be wiped, reviewers' hours must not be).

The copy uses SQLite's online backup API, so it is consistent while the app keeps writing (a
plain file copy of a WAL database can tear). The schedule is ``huggingface_hub``'s
``CommitScheduler``: every ``every`` minutes it takes a fresh copy, then commits the folder.
Configured by environment: ``STARTUI_BACKUP_REPO`` (a dataset repo id) and ``HF_TOKEN``.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from startui.store.repository import StoreError

log = logging.getLogger(__name__)
FILENAME = "startui.sqlite"


def sqlite_path(url: str) -> Path:
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        raise StoreError(f"only a SQLite file store can be backed up this way, not {url!r} "
                         "(back up PostgreSQL with pg_dump)")
    return Path(u.database)


def snapshot(url: str, folder: str | Path) -> Path:
    """A consistent copy of the store at ``url`` as ``folder/startui.sqlite`` (replaced
    atomically: a reader of the folder never sees half a file)."""
    src = sqlite_path(url)
    if not src.is_file():
        raise StoreError(f"no database file at {src}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{FILENAME}.tmp{os.getpid()}"
    try:
        with sqlite3.connect(f"file:{src}?mode=ro", uri=True) as source, \
                sqlite3.connect(tmp) as target:
            source.backup(target)
        os.replace(tmp, folder / FILENAME)
    finally:
        tmp.unlink(missing_ok=True)
    return folder / FILENAME


@dataclass
class BackupConfig:
    repo_id: str
    token: str
    every_minutes: float = 10.0
    folder: str = ""

    @classmethod
    def from_env(cls, data_dir: Path) -> BackupConfig | None:
        """The schedule the environment asks for, or None when it asks for none."""
        repo, token = os.environ.get("STARTUI_BACKUP_REPO"), os.environ.get("HF_TOKEN")
        if not repo or not token:
            return None
        every = float(os.environ.get("STARTUI_BACKUP_MINUTES", "10"))
        return cls(repo, token, every, str(data_dir / "backup"))


def schedule(url: str, cfg: BackupConfig, *, hf_api: Any = None) -> Any:
    """Start pushing copies of the store to ``cfg.repo_id`` every ``cfg.every_minutes``;
    returns the scheduler (``.stop()`` ends it, ``.trigger()`` pushes now)."""
    from huggingface_hub import CommitScheduler

    sqlite_path(url)  # refuse a non-SQLite store at once, not at the first push

    class StoreBackup(CommitScheduler):
        def push_to_hub(self) -> Any:
            with self.lock:  # no push reads the folder while the copy is replaced
                snapshot(url, self.folder_path)
            return super().push_to_hub()

    return StoreBackup(repo_id=cfg.repo_id, repo_type="dataset", folder_path=cfg.folder,
                       every=cfg.every_minutes, token=cfg.token, private=True,
                       allow_patterns=[FILENAME], hf_api=hf_api)
