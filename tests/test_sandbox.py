"""The sandbox holds: each rule is proved by a cell that tries to break it, in a real kernel.

The app here is this test process (the kernel's parent). Every test asserts what the model's
code could NOT do, and that the kernel — and the app — go on serving afterwards.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import threading
from pathlib import Path

import pytest

from startui.infer.kernels import KernelPool
from startui.infer.sandbox import describe_isolation, isolation_is_weak

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "kernels"))
import isolation  # noqa: E402  (kernels/, what runs in the kernel process)
import landlock  # noqa: E402

pytestmark = pytest.mark.skipif(landlock.abi() < 1, reason="this Linux has no Landlock")


@pytest.fixture(scope="module")
async def kernels():
    async with KernelPool(size=1, timeout=20) as pool:
        yield pool


async def run(pool: KernelPool, code: str) -> tuple[str, str | None]:
    k = await pool.acquire()
    try:
        r = await k.execute(code)
        return r.text, r.error
    finally:
        await pool.release(k)


async def test_the_layers_are_reported(kernels):
    report = kernels.isolation
    assert report["landlock"]["abi"] == landlock.abi()
    assert report["landlock"]["tcp"] and report["landlock"]["scoped"]
    line = describe_isolation(report)
    assert f"Landlock ABI {landlock.abi()}" in line and not isolation_is_weak(report)
    assert "WEAK" in describe_isolation({"rlimits": True, "uid": 1000})


@pytest.mark.parametrize("path", [
    str(ROOT / "db" / "env.py"),  # the app's source tree (and its database beside it)
    str(ROOT / "startui" / "store" / "facade.py"),
    os.path.expanduser("~/.bashrc"),
])
async def test_cannot_read_the_app_or_home(kernels, path):
    if not os.path.exists(path):
        Path(path).touch()
    text, err = await run(kernels, f"print(open({path!r}).read()[:40])")
    assert err == "PermissionError", text


async def test_cannot_read_the_apps_environment(kernels, monkeypatch):
    monkeypatch.setenv("STARTUI_TEST_SECRET", "hunter2-secret")
    os.environ["STARTUI_TEST_SECRET"] = "hunter2-secret"
    text, err = await run(kernels, "import os\n"
                                   "print(open(f'/proc/{os.getppid()}/environ').read())")
    assert err == "PermissionError" and "hunter2" not in text
    text, _ = await run(kernels, "import os; print(sorted(os.environ))")
    assert "STARTUI_TEST_SECRET" not in text and "STARTUI_DB_URL" not in text


@pytest.mark.parametrize("target", ["/tmp/startui-escape.txt", "~/startui-escape.txt",
                                    str(ROOT / "startui-escape.txt")])
async def test_cannot_write_outside_the_scratch_dir(kernels, target):
    path = os.path.expanduser(target)
    text, err = await run(kernels, f"open({path!r}, 'w').write('escaped')")
    assert err == "PermissionError", text
    assert not os.path.exists(path)


async def test_the_scratch_dir_is_writable_and_goes_with_the_kernel(kernels):
    k = await kernels.acquire()
    r = await k.execute("open('notes.txt', 'w').write('hi'); import os; print(os.getcwd())")
    workdir = r.text.strip()
    assert Path(workdir, "notes.txt").read_text() == "hi"
    await kernels.release(k)  # the shutdown goes on in the background
    await kernels.settle()
    assert not os.path.exists(workdir)


async def test_cannot_signal_the_app_or_other_kernels(kernels):
    other = await kernels.acquire()
    try:
        for code in ("import os, signal; os.kill(os.getppid(), signal.SIGKILL)",
                     f"import os, signal; os.kill({other.pid}, signal.SIGKILL)",
                     "import os, signal; os.kill(-1, signal.SIGKILL)"):
            await run(kernels, code)
        assert other.alive
        assert (await other.execute("print(6*7)")).text == "42"
    finally:
        await kernels.release(other)


async def test_no_network_not_even_loopback(kernels):
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    accepted: list[object] = []
    server.settimeout(5)
    t = threading.Thread(target=lambda: accepted.append(_accept(server)), daemon=True)
    t.start()
    try:
        text, err = await run(kernels, "import socket\n"
                                       f"socket.create_connection(('127.0.0.1', {port}), 3)")
        assert err in ("PermissionError", "ConnectionRefusedError", "OSError"), text
        text, err = await run(kernels, "import socket; s = socket.socket(); "
                                       "s.bind(('127.0.0.1', 0)); s.listen(); print('bound')")
        assert err is not None and "bound" not in text.splitlines(), text
    finally:
        t.join(6)
        server.close()
    assert accepted == [None]


def _accept(server: socket.socket) -> object:
    try:
        return server.accept()
    except OSError:
        return None


async def test_cannot_reach_an_abstract_socket_of_the_app(kernels):
    name = f"\0startui-test-{os.getpid()}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(name)
    server.listen()
    try:
        text, err = await run(kernels, "import socket; s = socket.socket(socket.AF_UNIX); "
                                       f"s.connect({name!r}); print('reached')")
        assert err is not None and "reached" not in text.splitlines(), text
    finally:
        server.close()


async def test_a_fork_bomb_is_capped_and_the_kernel_survives(kernels):
    if os.geteuid() == 0 and not kernels.isolation.get("cgroup") \
            and not kernels.isolation.get("user"):
        pytest.fail("running as root with neither a pids cgroup nor a sandbox user: nothing "
                    "bounds a fork bomb here")
    k = await kernels.acquire()
    try:
        r = await k.execute("import os, time\nn = 0\nfor i in range(5000):\n    try:\n"
                            "        pid = os.fork()\n    except OSError:\n        break\n"
                            "    if pid == 0:\n        time.sleep(2); os._exit(0)\n    n += 1\n"
                            "print('forked', n)", timeout=30)
        assert "forked" in r.text and int(r.text.split()[-1]) < 1000, r.text
        await asyncio.sleep(2.5)
        assert (await k.execute("print(1 + 1)")).text.strip().endswith("2")
    finally:
        await kernels.release(k)


def test_a_checkout_on_sys_path_is_not_readable(monkeypatch):
    monkeypatch.setattr(sys, "path", [str(ROOT), "/usr/lib/python3/dist-packages", ""])
    paths = isolation.python_paths([str(ROOT / "db")])
    assert str(ROOT) not in paths and all(not str(ROOT / "db").startswith(p + "/") for p in paths)


def test_landlock_restricts_a_child_process(tmp_path):
    """The ctypes binding on its own, in a forked child: a read outside the rules fails."""
    allowed, secret = tmp_path / "ok", tmp_path / "secret.txt"
    allowed.mkdir()
    secret.write_text("s")
    pid = os.fork()
    if pid == 0:  # the child restricts itself, then tries
        code = 1
        try:
            landlock.restrict(["/usr", "/lib", "/lib64"], [str(allowed)])
            (allowed / "f").write_text("x")
            try:
                secret.read_text()
            except PermissionError:
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


async def test_a_full_pool_answers_busy_and_serves_in_turn():
    """With every allowed kernel handed out, the next caller waits in line and is told how many
    are ahead of it; it gets a kernel as soon as one is released."""
    async with KernelPool(size=1, timeout=20, max_busy=1) as pool:
        first = await pool.acquire()
        told: list[int] = []
        second = asyncio.create_task(pool.acquire(on_wait=told.append))
        await asyncio.sleep(0.3)
        assert told == [1] and not second.done() and pool.waiting == 1
        await pool.release(first)
        k = await asyncio.wait_for(second, 30)
        assert (await k.execute("print(3 * 3)")).text == "9"
        await pool.release(k)
        assert pool.waiting == 0
