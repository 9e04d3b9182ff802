"""Hostile model code, the backend dying mid-stream and the kernel dying mid-cell, over the API.

One app is launched in this process (so a kernel that kills its parent kills the test run) with
a fake secret in its environment. For every fault: the faulting run is stored with an output
that says what happened, the trajectories stored before are intact, no secret reached the store,
and another visitor is still served (the recent list and a short run with a cell).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from startui.infer.sandbox import describe_isolation
from tests.faults import ledger
from tests.faults.support import (
    DROP_AFTER,
    DROP_TEXT,
    ROOT,
    SECRET,
    SECRET_VAR,
    launch_app,
    lost_items,
    outputs,
    question,
    secret_leaks,
    settings,
    snapshot,
    still_serving,
    stored_id,
    texts,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ESCAPES = [f"/tmp/startui-fault-escape-{uuid.uuid4().hex[:8]}.txt",
           str(ROOT / f"startui-fault-escape-{uuid.uuid4().hex[:8]}.txt")]


@dataclass
class Ctx:
    """What a hostile cell aims at."""

    db: Path
    app_port: int
    listen_port: int
    escapes: list[str]


@dataclass
class Attack:
    code: Callable[[Ctx], str]
    errors: tuple[str | None, ...]  # what the output may say went wrong (None: no error)
    says: tuple[str, ...] = ()  # text the output must hold (any of them)
    never: tuple[str, ...] = ()  # text the output must not hold
    timeout: float = 10.0


ATTACKS: dict[str, Attack] = {
    "kill-parent": Attack(lambda c: "import os, signal; os.kill(os.getppid(), signal.SIGKILL)",
                          ("PermissionError",)),
    "killpg-own-group": Attack(lambda c: "import os; os.killpg(0, 9)", ("KernelDied",),
                               says=("restarted",)),
    "killpg-parent-group": Attack(lambda c: "import os; os.killpg(os.getpgid(os.getppid()), 9)",
                                  ("PermissionError", "ProcessLookupError")),
    "kill-every-process": Attack(lambda c: "import os; os.kill(-1, 9); print('still here')",
                                 (None, "KernelDied", "PermissionError"),
                                 says=("still here", "KernelDied", "PermissionError")),
    "fork-bomb": Attack(lambda c: "import os\nprint('group', os.getpgid(0), flush=True)\n"
                                  "while True:\n    os.fork()",
                        ("BlockingIOError", "Timeout", "KernelDied", "MemoryError"),
                        timeout=5),
    "memory-bomb": Attack(lambda c: "hog = []\nwhile True:\n    hog.append(b'x' * 250_000_000)",
                          ("MemoryError", "KernelDied")),
    "os-exit": Attack(lambda c: "import os; os._exit(1)", ("KernelDied",),
                      says=("exited with code 1",)),
    "segfault": Attack(lambda c: "import ctypes; ctypes.string_at(0)", ("KernelDied",),
                       says=("SIGSEGV",)),
    "50MB-output-one-write": Attack(lambda c: "print('x' * 50_000_000)", (None,),
                                    says=("characters cut",)),
    "50MB-output-many-writes": Attack(
        lambda c: "import sys\nfor _ in range(50):\n    sys.stdout.write('y' * 1_000_000)",
        (None,), says=("characters cut",)),
    "read-environ": Attack(
        lambda c: f"import os\nprint('secret:', os.environ.get({SECRET_VAR!r}))\n"
                  "print(sorted(os.environ))",
        (None,), says=("secret: None",), never=(SECRET_VAR, "STARTUI_DB_URL")),
    "read-parent-environ": Attack(
        lambda c: "import os; print(open(f'/proc/{os.getppid()}/environ', 'rb').read())",
        ("PermissionError",)),
    "read-database": Attack(lambda c: f"print(open({str(c.db)!r}, 'rb').read(64))",
                            ("PermissionError",), never=("SQLite format",)),
    "read-source-tree": Attack(
        lambda c: f"import os\nprint(os.listdir({str(ROOT)!r}))\n"
                  f"print(open({str(ROOT / 'startui' / 'store' / 'facade.py')!r}).read(200))",
        ("PermissionError",), never=("pyproject.toml", "The trajectory store")),
    "connect-app-port": Attack(
        lambda c: f"import socket; socket.create_connection(('127.0.0.1', {c.app_port}), 3); "
                  "print('CONN' + 'ECTED')",
        ("PermissionError", "ConnectionRefusedError", "OSError", "TimeoutError"),
        never=("CONNECTED",)),
    "connect-loopback-port": Attack(
        lambda c: f"import socket; socket.create_connection(('127.0.0.1', {c.listen_port}), 3); "
                  "print('CONN' + 'ECTED')",
        ("PermissionError", "ConnectionRefusedError", "OSError", "TimeoutError"),
        never=("CONNECTED",)),
    "write-outside-scratch": Attack(
        lambda c: f"for p in {[*c.escapes, str(c.db.parent / 'escape.txt')]!r}:\n"
                  "    try:\n        open(p, 'w').write('escaped'); print('WRO' + 'TE', p)\n"
                  "    except OSError as e:\n        print('refused', type(e).__name__)",
        (None,), says=("refused PermissionError",), never=("WROTE",)),
    "ignores-SIGINT-and-loops": Attack(
        lambda c: "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                  "while True:\n    pass",
        ("Timeout",), says=("restarted",), timeout=1),
}
# The ones also sent as an edited code cell through the live tab's /branch.
BRANCHED = ["kill-parent", "killpg-own-group", "killpg-parent-group", "kill-every-process",
            "os-exit", "segfault", "read-environ", "read-database"]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    db = tmp_path_factory.mktemp("hostile") / "hostile.sqlite"
    launched = launch_app(db)
    server = socket.create_server(("127.0.0.1", 0))  # a loopback service the cells must not reach
    server.settimeout(0.2)
    accepted: list[object] = []
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                conn, _ = server.accept()
                accepted.append(conn)
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ctx = Ctx(db=db, app_port=launched.port, listen_port=server.getsockname()[1],
              escapes=ESCAPES)
    # stored before any fault, it must come through every one of them intact; the /branch
    # faults edit its code cell
    _, status, _ = launched.visitor.predict(question("print(6 * 7)", tag="baseline"),
                                            *settings(), api_name="/run")
    launched.baseline = stored_id(launched.store, status)
    yield launched, ctx, accepted
    pool = getattr(launched.services, "_pool", None)
    if pool is not None and pool.isolation:  # what `startui doctor` prints, from a real kernel
        ledger.figures["isolation"] = describe_isolation(pool.isolation)
    done.set()
    thread.join(2)
    server.close()
    launched.close()
    for path in ESCAPES:
        assert not os.path.exists(path), f"a cell wrote {path}"


def summary(segment, attack: Attack | None = None) -> str:
    """One line of what the output says: the line the test looked for, else the last one."""
    lines = [ln for ln in segment.text.splitlines() if ln.strip()]
    wanted = [ln for ln in lines for s in (attack.says if attack else ()) if s in ln]
    line = (wanted or lines[-1:] or [""])[0]
    error = segment.meta.get("error")
    return f"{error}: {line[:120]}" if error and error not in line else line[:120]


def check_output(attack: Attack, segment, chat_text: str) -> None:
    text = segment.text
    assert segment.meta.get("error") in attack.errors, (segment.meta.get("error"), text)
    assert text.strip(), "the output says nothing"
    if attack.says:
        assert any(s in text for s in attack.says), text
    for bad in attack.never:
        assert bad not in text, text
    assert SECRET not in text
    assert len(text) < 5_000  # 50 MB of output is stored as its head and tail
    last = text.strip().splitlines()[-1]
    assert last[:60] in chat_text, "the page does not show what happened"


def group_members(pgid: int) -> list[int]:
    """Processes still in process group ``pgid`` (a fork bomb's children)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid:
                    out.append(int(entry.name))
    return out


def after_the_fault(fault: str, app, before, attack: Attack | None, tid: str,
                    accepted: list[object]) -> None:
    """What every fault ends with: stored, nothing lost, no secret, the app serves others."""
    launched = app
    store = launched.store
    traj = store.load_trajectory(tid)
    assert traj.status == "finished", (traj.status, traj.error)
    outs = outputs(traj)
    assert outs, "no output segment was stored"
    lost = lost_items(before, snapshot(store))
    ledger.record(fault, what=summary(outs[0], attack), lost=len(lost))
    assert not lost, f"stored trajectories changed: {lost}"
    assert not secret_leaks(store, launched.db)
    assert not accepted, "a cell reached the test's loopback service"
    still_serving(launched, tid)


@pytest.mark.fault("hostile cell, API /run")
@pytest.mark.parametrize("name", list(ATTACKS))
def test_hostile_cell_through_run(app, name, fault):
    launched, ctx, accepted = app
    attack, store = ATTACKS[name], launched.store
    before = snapshot(store)
    code = attack.code(ctx)
    chat, status, _ = launched.visitor.predict(question(code, tag=name),
                                               *settings(timeout=attack.timeout),
                                               api_name="/run")
    assert "finished" in status, status
    tid = stored_id(store, status)
    traj = store.load_trajectory(tid)
    assert [s.text for s in traj.segments if s.kind == "code"] == [code]
    check_output(attack, outputs(traj)[0], "\n".join(texts(chat)))
    if name == "fork-bomb":  # its children went with the kernel
        group = int(outputs(traj)[0].text.split("group", 1)[1].split()[0])
        deadline = time.monotonic() + 10
        while group_members(group) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not group_members(group), "the fork bomb's processes outlived its kernel"
    after_the_fault(fault, launched, before, attack, tid, accepted)


@pytest.mark.fault("hostile cell, API /branch (an edited code cell)")
@pytest.mark.parametrize("name", BRANCHED)
def test_hostile_cell_through_branch(app, name, fault):
    launched, ctx, accepted = app
    attack, store = ATTACKS[name], launched.store
    original = launched.baseline
    before = snapshot(store)
    launched.visitor.predict(original, api_name="/open")  # on screen: a run that ran its cell
    code = attack.code(ctx)
    chat, status, _ = launched.visitor.predict(1, code, *settings(timeout=attack.timeout),
                                               api_name="/branch")
    assert "finished" in status and "branch of" in status, status
    tid = stored_id(store, status)
    branch = store.load_trajectory(tid)
    assert branch.settings["parent_id"] == original
    [cell] = [s for s in branch.segments if s.kind == "code"]
    assert cell.text == code and cell.source == "human"
    check_output(attack, outputs(branch)[0], "\n".join(texts(chat)))
    after_the_fault(fault, launched, before, attack, tid, accepted)


@pytest.mark.fault("kernel killed mid-cell")
def test_the_kernel_dying_mid_cell_is_reported_and_the_next_cell_gets_a_fresh_one(app, fault):
    launched, _, accepted = app
    store = launched.store
    before = snapshot(store)
    q = question("x = 41\nimport os, signal\nprint('about to die', flush=True)\n"
                 "os.kill(os.getpid(), signal.SIGKILL)",
                 "print('x' in globals(), 6 * 7)", tag="kernel death")
    chat, status, _ = launched.visitor.predict(q, *settings(), api_name="/run")
    assert "finished" in status and "KernelDied" in status, status  # the page's notice
    tid = stored_id(store, status)
    traj = store.load_trajectory(tid)
    died, fresh = outputs(traj)
    assert died.meta["error"] == "KernelDied" and "SIGKILL" in died.text
    assert "restarted" in died.text
    assert fresh.meta.get("error") is None and fresh.text.strip() == "False 42"  # fresh state
    assert traj.answer == "1"
    assert any("KernelDied" in t for t in texts(chat))
    after_the_fault(fault, launched, before, None, tid, accepted)


@pytest.mark.fault("backend drops the stream mid-run")
def test_the_backend_dying_mid_stream_is_shown_and_the_partial_run_kept(app, fault):
    launched, _, accepted = app
    store = launched.store
    before = snapshot(store)
    chat, status, _ = launched.visitor.predict(question(tag="drop") + "<drop>", *settings(),
                                               api_name="/run")
    assert "error" in status and "dropped the stream" in status, status  # the page's message
    tid = stored_id(store, status)
    traj = store.load_trajectory(tid)
    assert traj.status in ("error", "interrupted") and "dropped the stream" in (traj.error or "")
    streamed = " ".join(DROP_TEXT.split()[:DROP_AFTER])
    assert "".join(s.text for s in traj.segments).strip() == streamed  # the text so far
    assert texts(chat)[-1].strip() == streamed
    lost = lost_items(before, snapshot(store))
    ledger.record(fault, what=f"{traj.status}: {traj.error}; {len(streamed)} characters kept",
                  lost=len(lost))
    assert not lost
    assert not accepted
    still_serving(launched, tid, cell=True)  # and the kernels still serve, after every fault
