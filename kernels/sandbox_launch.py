"""Entry point of every startui kernel process: apply the sandbox, then run ipykernel.

A kernel is ``python kernels/sandbox_launch.py -f {connection_file}`` with a scrubbed
environment, or, the default, a child forked by ``sandbox_launch.py --forkserver`` (below),
which becomes the same kernel.  The limits travel in the environment variable
``STARTUI_SANDBOX`` (JSON), which is removed before any user code runs.  They are applied here,
in the kernel process itself, so that everything the model's code does (including
subprocesses, which inherit rlimits) runs under them.  Doing it here instead of with
``Popen(preexec_fn=...)`` keeps the app free of fork-time callbacks, which are unsafe in a
multi-threaded process.

Only the standard library is imported before the limits are set, except in the fork server,
which imports ipykernel before it forks (trusted code; no model code runs before the sandbox).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import sys

_MB = 1024 * 1024


def _set_limit(which: int, value: int, hard_extra: int = 0) -> None:
    """Set the soft limit to `value` (hard: `value + hard_extra`), capped at the current hard.

    A process may lower its hard limit but never raise it, so we cap rather than fail: a
    deployment that is already stricter than startui stays stricter.
    """
    _, hard = resource.getrlimit(which)
    new_hard = value + hard_extra
    if hard != resource.RLIM_INFINITY:
        value, new_hard = min(value, hard), min(new_hard, hard)
    resource.setrlimit(which, (value, new_hard))


def user_tasks() -> int:
    """Processes + threads of our real uid that we can see: what RLIMIT_NPROC counts."""
    uid, count = str(os.getuid()), 0
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:  # exited meanwhile, or hidden
            continue
        if fields.get("Uid", "").split()[:1] == [uid]:
            count += int(fields.get("Threads", "1"))
    return count


def apply_limits(cfg: dict[str, int]) -> None:
    """Apply KernelLimits; a value <= 0 leaves that limit alone."""
    _set_limit(resource.RLIMIT_CORE, 0)  # a crash must not write a core file into the workdir
    if cfg.get("memory_mb", 0) > 0:
        _set_limit(resource.RLIMIT_AS, cfg["memory_mb"] * _MB)
    if cfg.get("cpu_seconds", 0) > 0:
        # At the soft limit the kernel gets SIGXCPU (which ends it, and the app reports the
        # CPU limit); at the hard limit it would get a SIGKILL that says nothing.
        _set_limit(resource.RLIMIT_CPU, cfg["cpu_seconds"], hard_extra=5)
    if cfg.get("processes", 0) > 0:
        # RLIMIT_NPROC caps every process and thread of the *user*, not of this kernel: a
        # bare 256 would stop the kernel from starting its own threads on a busy desktop.
        # So `processes` is headroom above what the user already runs.  (Root with
        # CAP_SYS_ADMIN or CAP_SYS_RESOURCE is exempt from this limit altogether.)
        _set_limit(resource.RLIMIT_NPROC, user_tasks() + cfg["processes"])
    if cfg.get("file_size_mb", 0) > 0:
        _set_limit(resource.RLIMIT_FSIZE, cfg["file_size_mb"] * _MB)
        # Default action of SIGXFSZ kills the kernel; ignoring it makes the write fail with
        # OSError(EFBIG) instead, which the model can read and react to.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def main() -> None:
    if sys.argv[1:2] == ["--forkserver"]:
        forkserver()
        return
    run_kernel(json.loads(os.environ.pop("STARTUI_SANDBOX", "{}")), sys.argv[1:])


def _startup_modules():
    """`python path/to/this.py` puts kernels/ first on sys.path; import our start-up modules
    from there, then take the folder away so the model's imports see a normal path."""
    here = os.path.dirname(os.path.abspath(__file__))
    import isolation
    import sandbox_startup

    if sys.path and os.path.abspath(sys.path[0] or ".") == here:
        del sys.path[0]
    return isolation, sandbox_startup


def run_kernel(cfg: dict, args: list[str]) -> None:
    isolation, sandbox_startup = _startup_modules()

    # Namespaces, the sandbox user and Landlock first, then the rlimits (RLIMIT_NPROC counts the
    # processes of the user the kernel ends up as). Nothing the model wrote has run yet.
    own = [p for p in (cfg.get("workdir"), cfg.get("runtime")) if p]
    isolation.apply(cfg, own, limits=lambda: apply_limits(cfg))

    # ipykernel loads debugpy (~40 ms of a ~0.7 s start) only to serve the Jupyter debugger,
    # which an unattended kernel never uses; a None entry makes that import fail cleanly.
    # The entry is removed again before any user code runs.
    blocked = sys.modules.get("debugpy", "absent") in ("absent", None)
    sys.modules.setdefault("debugpy", None)  # type: ignore[arg-type]

    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance(config=sandbox_startup.kernel_config())
    app.initialize(args)
    if blocked:
        sys.modules.pop("debugpy", None)
    sandbox_startup.install(app, cfg.get("max_output_chars", 1_000_000))
    app.start()


# --- the fork server ------------------------------------------------------------------------
#
# Booting a kernel is ~80% importing IPython and ipykernel (~0.2 s of CPU). The fork server does
# that once: it imports them, then forks one child per request, and each child becomes a
# kernel exactly as above (its own session, its environment, the sandbox, then ipykernel) — so
# a kernel costs a fork and the app's initialisation, not an interpreter start. The server runs
# no model code; it talks to the app over its stdin/stdout (JSON lines) and every child closes
# both before the sandbox goes up. Requests: {"id", "argv", "env", "cwd", "log"} -> {"id",
# "pid"} or {"id", "error"}; when a child ends: {"exit": pid, "code": returncode as Popen
# gives it}. End of stdin (the app closed it, or died): kill every child, exit.


def _send(msg: dict) -> None:
    data = (json.dumps(msg) + "\n").encode()
    while data:
        data = data[os.write(1, data):]


def _child(req: dict) -> None:
    """In the forked child: become the kernel the request describes; never returns."""
    code = 1
    try:
        os.setsid()  # its own process group, as jupyter_client starts kernels
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDONLY)
        log = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # the server's pipes to the app among them
        os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update(req["env"])
        import random
        import tempfile

        random.seed()  # not the server's state: every kernel draws its own numbers
        tempfile.tempdir = None  # TMPDIR is the kernel's scratch dir now
        sys.argv = [sys.argv[0], *req["argv"]]
        run_kernel(json.loads(os.environ.pop("STARTUI_SANDBOX", "{}")), req["argv"])
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:  # noqa: BLE001 - said in the kernel's log, the exit code tells the app
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def forkserver() -> None:
    import select

    _startup_modules()
    sys.modules.setdefault("debugpy", None)  # type: ignore[arg-type]
    import ipykernel.ipkernel  # noqa: F401 - the expensive imports, done once
    import ipykernel.kernelapp  # noqa: F401

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the app stops us by closing stdin
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    os.set_blocking(wake_r, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: set[int] = set()
    pending = b""
    _send({"ready": os.getpid()})
    while True:
        try:
            ready, _, _ = select.select([0, wake_r], [], [])
        except InterruptedError:
            continue
        if wake_r in ready:
            with contextlib.suppress(BlockingIOError):
                while os.read(wake_r, 512):
                    pass
            _reap(children)
        if 0 not in ready:
            continue
        data = os.read(0, 1 << 16)
        if not data:
            break
        pending += data
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            req = json.loads(line)
            try:
                pid = os.fork()
            except OSError as e:
                _send({"id": req["id"], "error": f"fork failed: {e}"})
                continue
            if pid == 0:
                _child(req)
            children.add(pid)
            _send({"id": req["id"], "pid": pid})
    for pid in children:
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
    _reap(children)


def _reap(children: set[int]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        _send({"exit": pid, "code": os.waitstatus_to_exitcode(status)})


if __name__ == "__main__":
    main()
