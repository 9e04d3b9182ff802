"""The app killed with SIGKILL mid-run, then restarted on the same database.

The app runs as its own process (``tests/faults/slow_app.py``: the real app around a slow
scripted model). A visitor streams a long run; five seconds in, the process gets SIGKILL. The
restarted app must show the run as interrupted, hold everything streamed up to two seconds before
the kill (the recorder checkpoints the open segment every second), and finish it on /continue.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.faults import ledger
from tests.faults.slow_app import FINISH, long_text
from tests.faults.support import ROOT, settings, short_id, texts

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

DELAY = 0.02  # seconds per streamed piece
WORDS = 3000  # a minute of streaming: far longer than the test lets it run
STREAM_BEFORE_KILL = 5.0
SAFE_MARGIN = 2.0  # what was streamed this long before the kill must be stored


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (the app's kernels), read from /proc."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


class AppProcess:
    def __init__(self, db_url: str, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.slow_app", "--port", str(self.port),
             "--db", db_url, "--delay", str(DELAY), "--words", str(WORDS)],
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.kernels: set[int] = set()

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the app exited with {self.proc.returncode}; see "
                                     f"{self.log.name}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(self.url, timeout=2) as r:
                    if r.status == 200:
                        return
            time.sleep(0.2)
        raise AssertionError(f"the app did not answer on {self.url} within {timeout} s")

    def note_kernels(self) -> None:
        self.kernels.update(children(self.proc.pid))

    def kill(self, sig: int = signal.SIGKILL) -> None:
        self.note_kernels()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=20)  # reaped: its pid is gone, as the restart must see
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=20)

    def close(self) -> None:
        self.kill(signal.SIGTERM)
        for pid in self.kernels:  # the kernels it started, by their ids, if still there
            with contextlib.suppress(OSError):
                if "sandbox_launch" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
                    os.kill(pid, signal.SIGKILL)
        self.log.close()


def think_text(chat: list[dict]) -> str:
    """The streamed thinking (the run's only model text until the kill)."""
    return texts(chat)[1] if len(chat) > 1 else ""


@pytest.mark.fault("app SIGKILL mid-run, restarted on the same database")
def test_sigkill_mid_run_loses_at_most_the_last_seconds_and_resumes(tmp_path, fault):
    from gradio_client import Client

    from startui.store import Store

    db_url = f"sqlite:///{tmp_path / 'killed.sqlite'}"
    log = tmp_path / "app.log"
    first = AppProcess(db_url, log)
    second = None
    try:
        first.wait_ready()
        client = Client(first.url, verbose=False)
        job = client.submit("Count for a long time, please.", *settings(max_tokens=8192),
                            api_name="/run")
        seen: list[tuple[float, str, str]] = []  # (when, streamed thinking, status line)
        started = None
        while True:
            outs = job.outputs()
            now = time.monotonic()
            if outs:
                chat, status, *_ = outs[-1]
                text = think_text(chat)
                if text and (not seen or seen[-1][1] != text):
                    seen.append((now, text, status))
                if text and started is None:
                    started = now
            if started is not None and now - started >= STREAM_BEFORE_KILL:
                break
            assert not job.done(), "the run ended before the kill"
            assert now - (started or now) < 60
            time.sleep(0.05)
        first.note_kernels()
        killed_at = time.monotonic()
        first.kill(signal.SIGKILL)
        with contextlib.suppress(Exception):
            job.cancel()
        safe = [text for when, text, _ in seen if when <= killed_at - SAFE_MARGIN]
        assert safe, "nothing was streamed two seconds before the kill"
        safe_text, last_text = safe[-1], seen[-1][1]
        tid = short_id(seen[-1][2])

        second = AppProcess(db_url, log)  # same database: it marks the run interrupted
        second.wait_ready()
        with Store(db_url, upgrade=False, recover=False) as store:
            [summary] = [s for s in store.list_trajectories(limit=100) if s.id.startswith(tid)]
            stored = store.load_trajectory(summary.id)
        assert stored.status == "interrupted"
        text = "".join(s.text for s in stored.segments if s.kind == "think")
        assert text.startswith(safe_text) and len(text) >= len(safe_text)
        assert long_text(WORDS).startswith(text.rstrip())  # nothing but what was streamed
        what = (f"interrupted; {len(text)} characters stored (the visitor had seen "
                f"{len(last_text)} at the kill, {len(safe_text)} of them ≥ {SAFE_MARGIN:g} s "
                "before it: all stored); /continue finished it")
        print(what)

        other = Client(second.url, verbose=False)
        _, status, _ = other.predict(stored.id, api_name="/open")
        assert "interrupted" in status, status
        chat, status, _ = other.predict(*settings(max_tokens=8192), api_name="/continue")
        assert "finished" in status, status
        assert texts(chat)[-1].rstrip().endswith("Final answer: $42$")
        with Store(db_url, upgrade=False, recover=False) as store:
            resumed = store.load_trajectory(stored.id)
        assert resumed.status == "finished" and resumed.answer == "42"
        assert resumed.completion().startswith(text) and FINISH.strip() in resumed.completion()
        ledger.record(fault, what=what, lost=0)
    finally:
        first.close()
        if second is not None:
            second.close()
