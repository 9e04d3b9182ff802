"""Kernels forked from a warm Python instead of started from scratch.

Most of a kernel's boot is importing IPython and ipykernel (~0.2 s of CPU of ~0.26 s). A
:class:`ForkServer` is one process, ``kernels/sandbox_launch.py --forkserver``, that imports
them once and forks a child per kernel; the child applies the same sandbox as a kernel started
on its own (its session, its environment from the allow-list, namespaces, user, Landlock,
rlimits) before any model code can run. So booting a kernel costs a fork and ipykernel's
initialisation, and kernels share the server's pages copy-on-write.

jupyter_client does the rest as for any kernel: a provisioner (:class:`ForkedProvisioner`) hands
it a :class:`ForkedProcess`, which answers like :class:`subprocess.Popen` (``poll``, ``wait``,
``send_signal``, ``kill``) from the exit codes the server reports for its children.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import uuid
from collections.abc import Sequence
from typing import Any

from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning import LocalProvisioner

log = logging.getLogger(__name__)


class ForkedProcess:
    """A kernel process forked by the server, with the part of Popen's interface that
    jupyter_client and the pool use. Its exit code comes from the server (its parent)."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int, server: ForkServer) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._server = server

    def poll(self) -> int | None:
        if self.returncode is None and not self._server.alive:
            # the server died: nobody will say how this child ended; is it still there?
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                self.returncode = -signal.SIGKILL
            except PermissionError:
                pass
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        return self.poll()

    def send_signal(self, sig: int) -> None:
        if self.returncode is not None:
            return  # ended (and reaped): its pid may belong to someone else by now
        os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class ForkServer:
    """One warm interpreter that forks kernels. ``await start()``, ``await spawn(...)`` per
    kernel, ``await close()`` (which kills every kernel it forked)."""

    def __init__(self, launcher: str, env: dict[str, str]) -> None:
        self.launcher = launcher
        self.env = env
        self.pid: int | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._children: dict[int, ForkedProcess] = {}
        self._exits: dict[int, int] = {}  # exits reported before the spawn reply was read
        self._next = 0
        self._lock = asyncio.Lock()

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None and (
            self._reader is not None and not self._reader.done())

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, self.launcher, "--forkserver", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, env=self.env, start_new_session=True,
            limit=1 << 20)
        assert self._proc.stdout is not None
        line = await asyncio.wait_for(self._proc.stdout.readline(), timeout=60)
        if not line:
            code = await self._proc.wait()
            raise RuntimeError(f"the kernel fork server exited at start (code {code})")
        self.pid = json.loads(line)["ready"]
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        try:
            while line := await self._proc.stdout.readline():
                msg = json.loads(line)
                if "exit" in msg:
                    child = self._children.pop(msg["exit"], None)
                    if child is None:
                        self._exits[msg["exit"]] = msg["code"]
                    else:
                        child.returncode = msg["code"]
                else:
                    fut = self._replies.pop(msg["id"], None)
                    if fut is not None and not fut.done():
                        fut.set_result(msg)
        finally:
            for fut in self._replies.values():
                if not fut.done():
                    fut.set_exception(RuntimeError("the kernel fork server exited"))
            self._replies.clear()

    async def spawn(self, argv: Sequence[str], *, env: dict[str, str], cwd: str,
                    log_path: str) -> ForkedProcess:
        """Fork a kernel: ``argv`` are the launcher's arguments (``-f connection_file``)."""
        async with self._lock:  # (re)start once, whoever asks first
            if not self.alive:
                await self.close()
                await self.start()
        assert self._proc is not None and self._proc.stdin is not None
        self._next += 1
        rid = self._next
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[rid] = fut
        self._proc.stdin.write((json.dumps({"id": rid, "argv": list(argv), "env": env,
                                            "cwd": cwd, "log": log_path}) + "\n").encode())
        await self._proc.stdin.drain()
        reply = await fut
        if "error" in reply:
            raise RuntimeError(reply["error"])
        child = ForkedProcess(int(reply["pid"]), self)
        if child.pid in self._exits:  # it died before we got here
            child.returncode = self._exits.pop(child.pid)
        else:
            self._children[child.pid] = child
        return child

    async def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(Exception):
                proc.stdin.close()  # the server kills its children and exits
        try:
            await asyncio.wait_for(proc.wait(), timeout=5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        if self._reader is not None:
            with contextlib.suppress(BaseException):
                await self._reader
        for child in self._children.values():
            child.returncode = child.returncode if child.returncode is not None else -9
        self._children.clear()


class ForkedProvisioner(LocalProvisioner):
    """jupyter_client's local provisioner, launching through the manager's fork server."""

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        km = self.parent
        self.process = await km.forkserver.spawn(
            cmd[2:], env=kwargs["env"], cwd=kwargs["cwd"], log_path=km.log_path)
        self.pid = self.pgid = self.process.pid  # the child made its own session
        self.cwd = kwargs["cwd"]
        return self.connection_info


class ForkedKernelManager(AsyncKernelManager):
    """An AsyncKernelManager whose kernels come from ``forkserver``."""

    forkserver: ForkServer
    log_path: str

    async def _async_pre_start_kernel(self, **kw: Any) -> Any:
        if self.provisioner is None:
            self.kernel_id = self.kernel_id or kw.pop("kernel_id", str(uuid.uuid4()))
            self.provisioner = ForkedProvisioner(kernel_id=self.kernel_id,
                                                 kernel_spec=self.kernel_spec, parent=self)
        return await super()._async_pre_start_kernel(**kw)
