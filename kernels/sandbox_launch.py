"""Entry point of every startui kernel process: apply the sandbox, then run ipykernel.

`startui.infer.kernels` starts ``python kernels/sandbox_launch.py -f {connection_file}`` with a
scrubbed environment.  The limits travel in the environment variable ``STARTUI_SANDBOX``
(JSON), which is removed before any user code runs.  They are applied here, in the kernel
process itself and before ipykernel is imported, so that everything the model's code does
(including subprocesses, which inherit rlimits) runs under them.  Doing it here instead of
with ``Popen(preexec_fn=...)`` keeps the parent free of fork-time callbacks, which are unsafe
in a multi-threaded app.

Only the standard library may be imported before the limits are set.
"""

from __future__ import annotations

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
    cfg = json.loads(os.environ.pop("STARTUI_SANDBOX", "{}"))

    # `python path/to/this.py` puts kernels/ first on sys.path; import our start-up modules
    # from there, then take the folder away so the model's imports see a normal path.
    here = os.path.dirname(os.path.abspath(__file__))
    import isolation
    import sandbox_startup

    if sys.path and os.path.abspath(sys.path[0] or ".") == here:
        del sys.path[0]

    # Namespaces, the sandbox user and Landlock first, then the rlimits (RLIMIT_NPROC counts the
    # processes of the user the kernel ends up as). Nothing the model wrote has run yet.
    own = [p for p in (cfg.get("workdir"), cfg.get("runtime")) if p]
    isolation.apply(cfg, own, limits=lambda: apply_limits(cfg))

    # ipykernel loads debugpy (~40 ms of a ~0.7 s start) only to serve the Jupyter debugger,
    # which an unattended kernel never uses; a None entry makes that import fail cleanly.
    # The entry is removed again before any user code runs.
    blocked = "debugpy" not in sys.modules
    sys.modules.setdefault("debugpy", None)  # type: ignore[arg-type]

    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance(config=sandbox_startup.kernel_config())
    app.initialize(sys.argv[1:])
    if blocked:
        del sys.modules["debugpy"]
    sandbox_startup.install(app, cfg.get("max_output_chars", 1_000_000))
    app.start()


if __name__ == "__main__":
    main()
