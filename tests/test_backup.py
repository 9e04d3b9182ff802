"""Backups: a consistent copy of a store that is being written, and the schedule that pushes it.

The hub is unreachable here, so the push goes to an ``HfApi`` that records the commit it was
asked to make (the one stand-in in this file); the copy it uploads is real and is opened as a
store."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from startui.store import Store, StoreError
from startui.store.backup import BackupConfig, schedule, snapshot
from startui.trajectory import Problem, Segment, Trajectory


def _traj(i: int) -> Trajectory:
    return Trajectory(problem=Problem(f"q{i}"), prompt="p", status="finished",
                      segments=[Segment("think", "x" * 200), Segment("answer", f"\\boxed{{{i}}}")])


def test_a_snapshot_is_consistent_while_the_app_writes(tmp_path):
    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    with Store(url) as store:
        store.save_trajectories([_traj(i) for i in range(50)])
        stop = threading.Event()

        def writer() -> None:
            i = 50
            while not stop.is_set():
                store.save_trajectory(_traj(i))
                i += 1

        t = threading.Thread(target=writer)
        t.start()
        try:
            copies = [snapshot(url, tmp_path / f"b{n}") for n in range(3)]
        finally:
            stop.set()
            t.join()
    for copy in copies:
        assert sqlite3.connect(copy).execute("PRAGMA integrity_check").fetchone() == ("ok",)
        with Store(f"sqlite:///{copy}") as backup:
            n = backup.stats()["trajectories"]
            assert n >= 50
            assert len(backup.list_trajectories(limit=1000)) == n


def test_only_a_sqlite_file_can_be_snapshotted(tmp_path):
    with pytest.raises(StoreError, match="pg_dump"):
        snapshot("postgresql+psycopg://u:p@localhost/db", tmp_path)
    with pytest.raises(StoreError, match="no database file"):
        snapshot(f"sqlite:///{tmp_path / 'missing.sqlite'}", tmp_path)


def test_the_environment_turns_the_schedule_on(monkeypatch, tmp_path):
    monkeypatch.delenv("STARTUI_BACKUP_REPO", raising=False)
    assert BackupConfig.from_env(tmp_path) is None
    monkeypatch.setenv("STARTUI_BACKUP_REPO", "team/startui-backup")
    monkeypatch.setenv("HF_TOKEN", "hf_x")
    monkeypatch.setenv("STARTUI_BACKUP_MINUTES", "30")
    cfg = BackupConfig.from_env(tmp_path)
    assert (cfg.repo_id, cfg.every_minutes, cfg.folder) == (
        "team/startui-backup", 30.0, str(tmp_path / "backup"))


def test_each_push_uploads_a_fresh_copy(tmp_path):
    from huggingface_hub import HfApi

    class RecordingApi(HfApi):
        def __init__(self, folder) -> None:
            super().__init__(token="hf_x")
            self.folder = folder
            self.commits: list[list[str]] = []

        def create_repo(self, repo_id, **kw):  # the hub is unreachable here
            from huggingface_hub import RepoUrl

            return RepoUrl(f"https://huggingface.co/datasets/{repo_id}")

        def create_commit(self, *a, operations, **kw):
            self.commits.append([op.path_in_repo for op in operations])
            # what is uploaded is the folder's copy: a store that opens
            with Store(f"sqlite:///{self.folder / 'startui.sqlite'}") as s:
                self.uploaded = s.stats()["trajectories"]
            return None

    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    with Store(url) as store:
        store.save_trajectory(_traj(1))
    api = RecordingApi(tmp_path / "backup")
    cfg = BackupConfig("team/b", "hf_x", every_minutes=60, folder=str(tmp_path / "backup"))
    scheduler = schedule(url, cfg, hf_api=api)
    try:
        scheduler.trigger().result(timeout=30)
        # (the scheduler also pushes once as it starts)
        assert api.commits[-1] == ["startui.sqlite"] and api.uploaded == 1
        with Store(url) as store:
            store.save_trajectory(_traj(2))
        scheduler.trigger().result(timeout=30)
        assert api.uploaded == 2  # each push copies the store anew
    finally:
        scheduler.stop()
