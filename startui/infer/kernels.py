"""Jupyter kernel pool: where the model's Python runs (the "tool" of START).

One kernel per trajectory, so variables persist across its code cells; a released kernel is
shut down, never reused, so state cannot leak between trajectories.  Kernels are booted ahead
of time (a warm pool, sized to the trajectories in flight) because the engine is waiting with a
model mid-generation; they are forked from a warm interpreter (:mod:`startui.infer.forkserver`),
which makes a boot ~0.03 s of CPU instead of ~0.26 s from scratch.

The kernel process is `kernels/sandbox_launch.py` (the sandbox, then ipykernel) with an
environment built from an allow-list, so the app's secrets (API tokens, database URLs) never
reach code the model wrote.  What runs inside the kernel lives in
`kernels/`; this module only talks to it over ZeroMQ (ipc sockets in a private temp dir).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import inspect
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from queue import Empty
from typing import Any

import zmq.asyncio
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager

from startui import resources
from startui.infer.forkserver import ForkedKernelManager, ForkServer
from startui.infer.sandbox import (
    Isolation,
    isolation_config,
    make_cgroup,
    mpl_cache_dir,
    remove_cgroup,
)

log = logging.getLogger(__name__)

KERNELS_DIR = resources.kernels_dir()
LAUNCHER = KERNELS_DIR / "sandbox_launch.py"
PLOTLY_MIME = "application/vnd.plotly.v1+json"

# Variables the kernel may inherit; everything else (tokens, DB URLs, ...) is dropped.
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
ENV_ALLOW = (
    *"PATH LANG LC_ALL LC_CTYPE TZ PYTHONPATH VIRTUAL_ENV CONDA_PREFIX LD_LIBRARY_PATH".split(),
    "CUDA_VISIBLE_DEVICES",
    *_THREAD_VARS,
)
_POLL = 0.25  # seconds between liveness checks while a cell runs
_LOST = "all variables and imports are lost (fresh state)"
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


class KernelStartError(RuntimeError):
    """The kernel process did not come up; the message carries the tail of its log."""


@dataclass
class KernelLimits:
    """Resource limits applied inside each kernel process (0 = leave that limit alone).

    memory_mb is RLIMIT_AS: address space, not resident memory, so leave room for what
    numpy/matplotlib/pandas map at import (~0.25 GB bare kernel, ~0.75 GB with plotly
    express).  cpu_seconds is RLIMIT_CPU for the kernel's lifetime (a restart gets a fresh
    budget).  processes feeds RLIMIT_NPROC, which counts every process *and thread* of the
    user, so it is applied as headroom above what the user already runs; Linux does not
    enforce it for root with CAP_SYS_ADMIN/CAP_SYS_RESOURCE.  file_size_mb is RLIMIT_FSIZE.
    """

    memory_mb: int = 2048
    cpu_seconds: int = 300
    processes: int = 256
    file_size_mb: int = 64


@dataclass
class ExecutionResult:
    """One cell's outcome: `text` goes to the model, the rest to the UI and Segment.meta."""

    text: str
    error: str | None = None
    images: list[str] = field(default_factory=list)
    plotly: list[dict] = field(default_factory=list)
    duration: float = 0.0
    truncated: bool = False

    def meta(self) -> dict:
        d = asdict(self)
        del d["text"]
        d["duration"] = round(self.duration, 4)
        return d


def clean_text(text: str) -> str:
    """What a terminal would show: no ANSI codes, and `\\r` overwrites resolved.

    Progress bars (tqdm) redraw a line with `\\r`; the model only needs the last state.
    """
    text = _ANSI.sub("", text)
    if "\r" not in text:
        return text
    lines = text.replace("\r\n", "\n").split("\n")
    return "\n".join(([p for p in ln.split("\r") if p] or [""])[-1] for ln in lines)


def truncate(text: str, head: int, tail: int, dropped: int = 0) -> tuple[str, bool]:
    """Keep the first `head` and last `tail` characters: errors and results sit at the ends.

    `dropped` counts characters already thrown away from the middle while collecting.
    """
    if len(text) <= head + tail and not dropped:
        return text, False
    head, tail = min(head, len(text)), min(tail, max(len(text) - head, 0))
    cut = len(text) - head - tail + dropped
    return f"{text[:head]}\n... [{cut} characters cut] ...\n{text[len(text) - tail :]}", True


class _Output:
    """Accumulates one cell's IOPub messages in arrival order, in bounded memory.

    Only the ends of the text reach the model, so past `cap` characters the middle is
    dropped as it arrives; figures past MAX_FIGURES are counted but not kept.
    """

    MAX_FIGURES = 20

    def __init__(self, cap: int = 1 << 16) -> None:
        self.parts: list[str] = []
        self.images: list[str] = []
        self.plotly: list[dict] = []
        self.error: str | None = None
        self.cap, self.size, self.dropped = cap, 0, 0
        self._run: tuple[str, int] | None = None  # (kind, count) of a trailing placeholder

    def add(self, msg_type: str, content: dict[str, Any]) -> None:
        if msg_type == "stream":
            self.text(content.get("text", ""))
        elif msg_type in ("execute_result", "display_data"):
            data = content.get("data", {})
            if PLOTLY_MIME in data:
                self._figure("plotly", self.plotly, data[PLOTLY_MIME])
            elif "image/png" in data:
                self._figure("image", self.images, data["image/png"].replace("\n", ""))
            elif "text/plain" in data:
                self.text(data["text/plain"] + "\n")
        elif msg_type == "error":
            self.error = content.get("ename") or "Error"
            tb = content.get("traceback") or []
            self.text("\n".join(line.rstrip("\n") for line in tb) + "\n")
        elif msg_type == "clear_output":  # a redrawn display: only its final state matters
            self.parts, self.size, self._run = [], 0, None

    def text(self, text: str) -> None:
        if not text:
            return
        self.parts.append(text)
        self.size += len(text)
        self._run = None
        if self.size > self.cap:  # keep a quarter of `cap` at each end: amortised O(1)
            joined, keep = "".join(self.parts), self.cap // 4
            self.dropped += len(joined) - 2 * keep
            self.parts, self.size = [joined[:keep], joined[-keep:]], 2 * keep

    def _figure(self, kind: str, store: list, item: Any) -> None:
        if len(store) < self.MAX_FIGURES:
            store.append(item)
        n = self._run[1] + 1 if self._run and self._run[0] == kind else 1
        if n > 1:
            self.parts.pop()
        what = "figure" if kind == "image" else "interactive figure"
        self.parts.append(f"[{kind}: {n} {what}{'s' if n > 1 else ''} shown to the user]\n")
        self._run = (kind, n)


def _death_reason(code: int | None, limits: KernelLimits) -> str:
    if code is None or code >= 0:
        return f"exited with code {code}"
    reasons = {
        signal.SIGSEGV: "segmentation fault",
        signal.SIGXCPU: f"CPU time limit of {limits.cpu_seconds} s exceeded",
        signal.SIGKILL: "killed, possibly out of memory",
    }
    with contextlib.suppress(ValueError):
        sig = signal.Signals(-code)
        return f"{sig.name}: {reasons.get(sig, 'killed by a signal')}"
    return f"killed by signal {-code}"


class _SandboxSpecs(KernelSpecManager):
    """A single built-in kernelspec: our launcher under the app's own interpreter.

    Built in code rather than installed so a fresh `pip install ipykernel jupyter-client`
    is enough, and the kernel always sees the same packages as the app.
    """

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        return KernelSpec(
            argv=[sys.executable, str(LAUNCHER), "-f", "{connection_file}"],
            display_name="startui sandbox (Python)",
            language="python",
            interrupt_mode="signal",
            resource_dir=str(KERNELS_DIR),
            metadata={"debugger": False},
        )


def probe_isolation(isolation: Isolation | None = None) -> dict[str, Any] | None:
    """Start one kernel (in its own event loop) and return what its sandbox reported: the
    truth about this machine, for the app's status line and public mode's start-up check."""
    async def probe() -> dict[str, Any] | None:
        async with KernelPool(size=1, timeout=30, isolation=isolation) as pool:
            return pool.isolation

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(probe())
    with concurrent.futures.ThreadPoolExecutor(1) as ex:  # called from inside a running loop
        return ex.submit(asyncio.run, probe()).result()


def base_env() -> dict[str, str]:
    """What every kernel's environment starts from (an allow-list: secrets never get in);
    also the fork server's whole environment."""
    env = {k: os.environ[k] for k in ENV_ALLOW if k in os.environ}
    env.setdefault("PATH", os.defpath)
    env.setdefault("LANG", "C.UTF-8")
    # BLAS thread pools reserve address space per thread; unbounded they can exhaust
    # RLIMIT_AS on many-core machines before numpy has done anything.
    for var in _THREAD_VARS:
        env.setdefault(var, str(min(4, os.cpu_count() or 1)))
    env.update(MALLOC_ARENA_MAX="2",  # glibc reserves 64 MB of address space per arena
               PYTHONIOENCODING="utf-8")
    return env


def sandbox_env(workdir: str, runtime: str, limits: KernelLimits,
                isolation: Isolation | None = None, cgroup: str | None = None) -> dict[str, str]:
    """The kernel's whole environment, from an allow-list: secrets never get in."""
    env = base_env()
    env.update(
        HOME=workdir,
        TMPDIR=workdir,  # tempfile lands in the scratch dir, deleted with the kernel
        IPYTHONDIR=os.path.join(runtime, "ipython"),
        MPLCONFIGDIR=mpl_cache_dir(),
        STARTUI_SANDBOX=json.dumps({**asdict(limits), **isolation_config(
            workdir, runtime, isolation or Isolation(), cgroup)}),
    )
    return env


class Kernel:
    """One IPython kernel = one trajectory's interpreter.  Create with `await Kernel.start()`."""

    interrupt_grace = 2.0  # seconds a cell gets to stop after SIGINT before a restart
    startup_timeout = 60.0

    def __init__(
        self,
        *,
        timeout: float = 30.0,
        limits: KernelLimits | None = None,
        head: int = 400,
        tail: int = 400,
        workdir_root: str | None = None,
        isolation: Isolation | None = None,
        forkserver: ForkServer | None = None,
    ) -> None:
        self.timeout = timeout
        self.forkserver = forkserver
        self.limits = limits or KernelLimits()
        self.isolation_config = isolation or Isolation()
        self.isolation: dict[str, Any] | None = None  # what the launcher reported it applied
        self.head, self.tail = head, tail
        self._workdir_root = workdir_root
        self._km: AsyncKernelManager | None = None
        self._kc: Any = None
        self._lock = asyncio.Lock()
        self._closed = False
        self._broken = False  # a cancel left it in an unknown state: restart before next use
        self.workdir = ""
        self._runtime = ""
        self._cgroup: str | None = None
        self._log: Any = None
        self.warm_since = 0.0  # when the pool put it among its warm kernels

    @classmethod
    async def start(cls, **kwargs: Any) -> Kernel:
        """Boot a kernel and wait until it answers (kwargs as for __init__)."""
        self = cls(**kwargs)
        # (file system work in a thread: cgroupfs and rmtree are slow, and the loop serves
        # every trajectory in flight)
        await asyncio.to_thread(self._make_dirs)
        weakref.finalize(self, _remove_dirs, self._runtime, self.workdir)
        log_path = os.path.join(self._runtime, "kernel.log")
        km = (AsyncKernelManager if self.forkserver is None else ForkedKernelManager)(
            transport="ipc",
            ip=os.path.join(self._runtime, "ipc"),
            connection_file=os.path.join(self._runtime, "connection.json"),
            kernel_name="startui-sandbox",
            kernel_spec_manager=_SandboxSpecs(),
            context=zmq.asyncio.Context.instance(),
        )
        if self.forkserver is not None:
            km.forkserver, km.log_path = self.forkserver, log_path
        self._km = km
        try:
            await km.start_kernel(
                env=sandbox_env(self.workdir, self._runtime, self.limits,
                                self.isolation_config, self._cgroup),
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=self._log,
            )
            await self._connect()
        except BaseException:
            await self.shutdown()
            raise
        return self

    def _make_dirs(self) -> None:
        # ipc socket paths must stay under ~100 bytes, hence a short private dir in /tmp.
        short_tmp = "/tmp" if os.path.isdir("/tmp") else None
        self._runtime = tempfile.mkdtemp(prefix="startui-k", dir=short_tmp)
        self._cgroup = make_cgroup(os.path.basename(self._runtime))
        self.workdir = tempfile.mkdtemp(prefix="startui-work-", dir=self._workdir_root)
        self._log = open(os.path.join(self._runtime, "kernel.log"), "wb")  # noqa: SIM115

    async def _connect(self) -> None:
        assert self._km is not None
        # the app's one ZeroMQ context: a client making its own costs an I/O thread per kernel
        # and a blocking context teardown when it stops
        kc = self._km.client(context=zmq.asyncio.Context.instance())
        kc.start_channels(shell=True, iopub=True, stdin=False, hb=False, control=False)
        self._kc = kc
        try:
            await self._wait_ready(kc)
        except RuntimeError as exc:
            log_tail = Path(self._runtime, "kernel.log").read_text(errors="replace")[-2000:]
            raise KernelStartError(f"{exc}; kernel log:\n{log_tail}") from exc
        with contextlib.suppress(OSError, ValueError):
            self.isolation = json.loads(Path(self._runtime, "isolation.json").read_text())

    async def _wait_ready(self, kc: Any) -> None:
        """Ready = a kernel_info request answered on the shell channel AND its idle status seen
        on IOPub (so IOPub is connected too). jupyter_client's wait_for_ready checks the same
        but then listens to IOPub until it has been quiet for 0.2 s, on every boot; output of
        an earlier request never gets mixed in here, because cells read only their own."""
        deadline = time.monotonic() + self.startup_timeout
        while True:
            msg_id = kc.kernel_info()
            with contextlib.suppress(Empty):
                while True:  # the reply to this request (an older one's may come first)
                    reply = await kc.get_shell_msg(timeout=1)
                    if reply["parent_header"].get("msg_id") == msg_id:
                        break
                until = time.monotonic() + 0.1
                while (left := until - time.monotonic()) > 0:
                    msg = await kc.get_iopub_msg(timeout=left)
                    if msg["parent_header"].get("msg_id") == msg_id and (
                            msg["msg_type"] == "status"
                            and msg["content"]["execution_state"] == "idle"):
                        return
            if not self.alive:
                raise RuntimeError("the kernel died before it answered")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the kernel did not answer in {self.startup_timeout:g} s")

    @property
    def _process(self) -> subprocess.Popen | None:
        return getattr(self._km.provisioner, "process", None) if self._km else None

    @property
    def alive(self) -> bool:
        return not self._closed and self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def execute(self, code: str, timeout: float | None = None) -> ExecutionResult:
        """Run one cell; errors, timeouts and crashes come back as results, not exceptions.

        Cancelling the awaiting task interrupts the cell (restarting the kernel if it will
        not stop) before CancelledError propagates: that is how "Stop" stops a running cell.
        Raises only if the kernel is shut down or cannot be restarted (KernelStartError).
        """
        if self._closed:
            raise RuntimeError("kernel is shut down")
        limit = self.timeout if timeout is None else timeout
        async with self._lock:
            out = _Output(max(1 << 16, 4 * (self.head + self.tail)))
            if not self.alive or self._broken:  # died between cells: say the state is gone
                await self._restart()
                out.text(f"[the kernel had died and was restarted: {_LOST}]\n")
            start = time.monotonic()
            msg_id = self._kc.execute(code, allow_stdin=False, stop_on_error=False)
            try:
                status = await self._collect(msg_id, out, start + limit)
                if status == "timeout":
                    await self._on_timeout(msg_id, out, limit)
                elif status == "died":
                    await self._on_death(out)
                else:
                    await self._reply(msg_id, out)
            except asyncio.CancelledError:
                await asyncio.shield(self._stop(msg_id))
                raise
            text = clean_text("".join(out.parts)).rstrip()
            text, truncated = truncate(text, self.head, self.tail, out.dropped)
            duration = time.monotonic() - start
            return ExecutionResult(text, out.error, out.images, out.plotly, duration, truncated)

    async def _on_timeout(self, msg_id: str, out: _Output, limit: float) -> None:
        """Interrupt; a cell that ignores SIGINT (or a C loop) costs a restart."""
        await self.interrupt()
        lost = await self._collect(msg_id, out, time.monotonic() + self.interrupt_grace) != "idle"
        if lost:
            await self._restart()
        out.error = "Timeout"
        note = f"; the kernel did not stop, so it was restarted: {_LOST}" if lost else ""
        out.text(f"TimeoutError: execution exceeded {limit:g} s and was interrupted{note}\n")

    async def _on_death(self, out: _Output) -> None:
        assert self._km is not None and self._km.provisioner is not None
        reason = _death_reason(await self._km.provisioner.poll(), self.limits)
        await self._restart()
        out.error = "KernelDied"
        out.text(f"KernelDied: the kernel died ({reason}) and was restarted: {_LOST}\n")

    async def _collect(self, msg_id: str, out: _Output, deadline: float) -> str:
        """Drain IOPub until OUR cell goes idle -> "idle" | "timeout" | "died"."""
        kc = self._kc
        while True:
            wait = deadline - time.monotonic()
            if wait <= 0:
                return "timeout"
            try:
                msg = await kc.get_iopub_msg(timeout=min(wait, _POLL))
            except Empty:
                if not self.alive:
                    return "died"
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue  # another request's output (kernel_info, an interrupted cell)
            if msg["msg_type"] == "status":
                if msg["content"]["execution_state"] == "idle":
                    return "idle"
            else:
                out.add(msg["msg_type"], msg["content"])

    async def _reply(self, msg_id: str, out: _Output) -> None:
        """Take our execute_reply off the shell channel (skipping stale ones) for its payloads."""
        while True:
            try:
                msg = await self._kc.get_shell_msg(timeout=2.0)
            except Empty:
                return
            if msg["parent_header"].get("msg_id") == msg_id:
                break
        for payload in msg["content"].get("payload") or []:
            if payload.get("source") == "page":  # `obj?` help text
                text = payload.get("data", {}).get("text/plain", "")
                out.add("display_data", {"data": {"text/plain": text}})

    async def _stop(self, msg_id: str) -> None:
        """After a cancel: interrupt the cell and make sure the kernel is free again."""
        try:
            await self.interrupt()
            deadline = time.monotonic() + self.interrupt_grace
            if await self._collect(msg_id, _Output(), deadline) != "idle":
                await self._restart()
        except Exception:  # best effort: the caller is already being cancelled
            log.exception("could not stop the cancelled cell")
            self._broken = True

    async def interrupt(self) -> None:
        """SIGINT the kernel's process group: KeyboardInterrupt in the running cell."""
        if self._km is not None and not self._closed:
            await self._km.interrupt_kernel()

    async def _restart(self) -> None:
        """Replace the process (same workdir and limits); a fresh client avoids stale messages."""
        assert self._km is not None
        self._broken = True  # until it is back: a cancel half-way must not leave it unusable
        self._kc.stop_channels()
        await self._km.restart_kernel(now=True)
        await self._connect()
        self._broken = False

    async def shutdown(self) -> None:
        """Kill the kernel and its process group, then delete its scratch directory."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._kc is not None:
                self._kc.stop_channels()
            if self._km is not None and self._km.has_kernel:
                await self._km.shutdown_kernel(now=True)
        finally:
            if self._log is not None:
                self._log.close()
            await asyncio.to_thread(_remove_dirs, self._runtime, self.workdir)
            await asyncio.to_thread(remove_cgroup, self._cgroup)


def _remove_dirs(*paths: str) -> None:
    for path in paths:
        if path:
            shutil.rmtree(path, ignore_errors=True)


def _memory_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def process_memory(pid: int) -> dict[str, int] | None:
    """A process's memory in bytes: ``pss`` (its share of every page it maps, shared ones
    split between the sharers) and ``uss`` (pages only it has), from /proc/PID/smaps_rollup."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            fields = {k.strip(): v for k, v in (line.split(":", 1) for line in f if ":" in line)}
    except OSError:
        return None

    def kb(key: str) -> int:
        return int(fields.get(key, "0 kB").split()[0]) * 1024

    return {"pss": kb("Pss"), "uss": kb("Private_Clean") + kb("Private_Dirty"), "rss": kb("Rss")}


KERNEL_BUDGET = 128 << 20  # memory a kernel in flight is planned at, for the default ceiling


class KernelPool:
    """Warm kernels for the engine: `acquire` one per trajectory, `release` it when done.

    Kernels are forked from a warm interpreter (:mod:`startui.infer.forkserver`; ``fork=False``
    starts each from scratch) and booted ``boots`` at a time (default: four per core, one per
    core from scratch), ahead of demand: the pool keeps ``size`` kernels warm, or one for every
    trajectory in flight that has none yet (the engine says so with :meth:`expect`), and never
    holds more than ``ceiling`` kernels in all, warm, booting and handed out (default: what the
    available memory holds at :data:`KERNEL_BUDGET` each, at most 256). Warm kernels beyond
    that want are shut down after ``idle_trim`` seconds idle.
    """

    def __init__(
        self,
        size: int = 1,
        *,
        timeout: float = 30.0,
        limits: KernelLimits | None = None,
        head: int = 400,
        tail: int = 400,
        workdir_root: str | None = None,
        isolation: Isolation | None = None,
        max_busy: int | None = None,
        ceiling: int | None = None,
        boots: int | None = None,
        fork: bool = True,
        idle_trim: float = 30.0,
    ) -> None:
        self.size = size
        self.max_busy = max_busy  # kernels handed out at once; None: no cap
        if ceiling is None:
            avail = _memory_available()
            ceiling = min(256, avail // KERNEL_BUDGET) if avail else 32
        self.ceiling = max(size, ceiling, 1)
        # A forked kernel's boot is mostly waiting (~0.03 s of CPU in ~0.15 s): four per core
        # keep the cores busy; a kernel started from scratch is CPU all the way (~0.26 s).
        self.boots = max(1, boots or (os.cpu_count() or 1) * (4 if fork else 1))
        self._held = 0  # slots taken (handed out, or being booted for a caller)
        self._slot_queue: collections.deque[asyncio.Future[None]] = collections.deque()
        self._kwargs: dict[str, Any] = dict(
            timeout=timeout, limits=limits, head=head, tail=tail, workdir_root=workdir_root,
            isolation=isolation,
        )
        self.isolation: dict[str, Any] | None = None  # the latest kernel's isolation report
        self._fork = fork
        self.forkserver: ForkServer | None = None
        self._fork_lock = asyncio.Lock()
        self._warm: collections.deque[Kernel] = collections.deque()
        self._busy: set[Kernel] = set()
        self._waiters: collections.deque[asyncio.Future[Kernel]] = collections.deque()
        self._boots: set[asyncio.Task[None]] = set()
        self._shutdowns: set[asyncio.Task[None]] = set()
        self.idle_trim = idle_trim
        self._trim_handle: asyncio.TimerHandle | None = None
        self._expected = 0  # trajectories in flight without a kernel yet (see expect)
        self._failed: BaseException | None = None  # the last boot failure, until a new acquire
        self.booted = 0  # kernels booted in all
        self._closed = False

    async def _start_forkserver(self) -> None:
        async with self._fork_lock:
            await self._start_forkserver_locked()

    async def _start_forkserver_locked(self) -> None:
        if not self._fork or self.forkserver is not None:
            return
        server = ForkServer(str(LAUNCHER), base_env())
        try:
            await server.start()
        except Exception as exc:  # noqa: BLE001 - kernels still start, only slower
            log.warning("kernel fork server did not start (%s); starting kernels one by one "
                        "from scratch", exc)
            self._fork = False
            return
        self.forkserver = server
        self._kwargs["forkserver"] = server

    async def start(self) -> None:
        """Boot `size` kernels in parallel and wait until they are warm."""
        self._check_open()
        await self._start_forkserver()
        need = self.size - len(self._warm)
        results = await asyncio.gather(
            *(self._boot_one() for _ in range(need)), return_exceptions=True
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        for r in results:
            if isinstance(r, Kernel):
                self._deliver(r)
        if errors:
            raise errors[0]

    async def _boot_one(self) -> Kernel:
        kernel = await Kernel.start(**self._kwargs)
        self.booted += 1
        return kernel

    def expect(self, n: int) -> None:
        """``n`` more (or, negative, fewer) trajectories in flight that may run code and hold
        no kernel yet: the pool boots kernels for them before they ask (within its ceiling)."""
        self._expected = max(0, self._expected + n)
        if n > 0:
            self._ensure_refill()
        else:
            self._trim()

    async def acquire(self, on_wait: Callable[[int], Any] | None = None) -> Kernel:
        """A warm kernel if there is one, else the next one to finish booting. With ``max_busy``
        kernels already handed out, wait in line (first come, first served) instead of failing;
        ``on_wait(n)`` is told how many are ahead before the wait ("busy — n ahead of you")."""
        self._check_open()
        await self._take_slot(on_wait)
        try:
            return await self._acquire()
        except BaseException:
            self._give_slot()
            raise

    async def _take_slot(self, on_wait: Callable[[int], Any] | None) -> None:
        if self.max_busy is None:
            return
        if self._held < self.max_busy and not self._slot_queue:
            self._held += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._slot_queue.append(fut)
        if on_wait is not None:
            note = on_wait(len(self._slot_queue))
            if inspect.isawaitable(note):
                await note
        try:
            await fut  # the slot is handed over by _give_slot: _held already counts it
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self._give_slot()  # handed to us as we were cancelled: pass it on
            with contextlib.suppress(ValueError):
                self._slot_queue.remove(fut)
            raise

    def _give_slot(self) -> None:
        if self.max_busy is None:
            return
        while self._slot_queue:
            fut = self._slot_queue.popleft()
            if not fut.done():
                fut.set_result(None)
                return
        self._held -= 1

    @property
    def waiting(self) -> int:
        """Trajectories waiting in line for a kernel (``max_busy`` reached)."""
        return sum(not f.done() for f in self._slot_queue)

    @property
    def warm(self) -> int:
        return len(self._warm)

    @property
    def busy(self) -> int:
        return len(self._busy)

    @property
    def booting(self) -> int:
        return len(self._boots)

    async def _acquire(self) -> Kernel:
        self._failed = None
        while self._warm:
            kernel = self._warm.popleft()
            if kernel.alive:
                return self._hand_out(kernel)
            await kernel.shutdown()
        fut: asyncio.Future[Kernel] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        self._ensure_refill()
        try:
            kernel = await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                self._deliver(fut.result())  # delivered as we were cancelled: pass it on
            raise
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(fut)
        return self._hand_out(kernel)

    async def release(self, kernel: Kernel) -> None:
        """Give a kernel back: it is shut down (its state dies with it) in the background, so
        the trajectory ends at once, and the pool tops up."""
        if kernel in self._busy:
            self._give_slot()
        self._busy.discard(kernel)
        self._shutdown_later(kernel)
        self._ensure_refill()
        self._trim()

    async def settle(self) -> None:
        """Wait until every released kernel is shut down and its files are gone."""
        while self._shutdowns:
            await asyncio.gather(*self._shutdowns, return_exceptions=True)

    def memory(self) -> dict[str, Any]:
        """What the warm (idle) kernels take: per kernel, the mean PSS and USS in bytes."""
        seen = [m for m in (process_memory(k.pid) for k in self._warm if k.pid) if m]
        if not seen:
            return {"kernels": 0}
        return {"kernels": len(seen), **{key: sum(m[key] for m in seen) // len(seen)
                                         for key in ("pss", "uss", "rss")}}

    async def close(self) -> None:
        """Stop booting and kill every kernel, warm or handed out."""
        self._closed = True
        if self._trim_handle is not None:
            self._trim_handle.cancel()
        boots = list(self._boots)
        for task in boots:
            task.cancel()
        await asyncio.gather(*boots, return_exceptions=True)
        for fut in self._waiters:
            if not fut.done():
                fut.set_exception(RuntimeError("kernel pool closed"))
        kernels = [*self._warm, *self._busy]
        self._warm.clear()
        self._busy.clear()
        await asyncio.gather(*(k.shutdown() for k in kernels), *self._shutdowns,
                             return_exceptions=True)
        if self.forkserver is not None:
            await self.forkserver.close()

    async def __aenter__(self) -> KernelPool:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("kernel pool is closed")

    def _hand_out(self, kernel: Kernel) -> Kernel:
        self._busy.add(kernel)
        self._ensure_refill()
        return kernel

    def _deficit(self) -> int:
        want = self._want()
        room = self.ceiling - len(self._busy) - len(self._warm) - len(self._boots)
        return min(want - len(self._warm) - len(self._boots), room)

    def _deliver(self, kernel: Kernel) -> None:
        self.isolation = kernel.isolation or self.isolation
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(kernel)
                return
        kernel.warm_since = time.monotonic()
        self._warm.append(kernel)

    def _want(self) -> int:
        return max(self.size, self._expected, sum(not f.done() for f in self._waiters))

    def _trim(self) -> None:
        """Shut down warm kernels beyond what the work in flight wants, once they have been
        idle for ``idle_trim`` seconds (a trajectory ending and the next starting must not
        cost a kernel)."""
        if self._trim_handle is not None or self._closed:
            return
        now = time.monotonic()
        surplus = len(self._warm) - self._want()
        while surplus > 0 and self._warm and now - self._warm[0].warm_since >= self.idle_trim:
            self._shutdown_later(self._warm.popleft())
            surplus -= 1
        if surplus > 0 and self._warm:
            wait = self.idle_trim - (now - self._warm[0].warm_since)
            self._trim_handle = asyncio.get_running_loop().call_later(wait, self._retrim)

    def _retrim(self) -> None:
        self._trim_handle = None
        self._trim()

    def _shutdown_later(self, kernel: Kernel) -> None:
        task = asyncio.get_running_loop().create_task(kernel.shutdown())
        self._shutdowns.add(task)
        task.add_done_callback(self._shutdowns.discard)

    def _ensure_refill(self) -> None:
        """Start boots, up to ``boots`` at once, until the pool has what it wants."""
        if self._closed or self._failed is not None:
            return
        loop = asyncio.get_running_loop()
        while len(self._boots) < self.boots and self._deficit() > 0:
            task = loop.create_task(self._refill_one())
            self._boots.add(task)
            task.add_done_callback(self._boots.discard)

    async def _refill_one(self) -> None:
        try:
            await self._start_forkserver()
            kernel = await self._boot_one()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("kernel failed to start: %s", exc)
            self._failed = exc  # no more boots until someone asks again
            while self._waiters:  # a waiting acquire() must not hang on a broken setup
                fut = self._waiters.popleft()
                if not fut.done():
                    fut.set_exception(exc)
            return
        if self._closed:
            await kernel.shutdown()
            return
        self._boots.discard(asyncio.current_task())  # type: ignore[arg-type]
        self._deliver(kernel)
        self._ensure_refill()
