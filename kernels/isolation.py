"""The kernel's isolation layers, applied in the kernel process before ipykernel is imported.

In order, each where the machine allows it (and each reported, so the app can show what holds):

0. **A pids cgroup** — when the app made one (it runs as root): at most N tasks, which bounds a
   fork bomb where RLIMIT_NPROC cannot.
1. **Namespaces** — a new network namespace (no network at all: not the app's port, not
   another loopback service, not UDP); unprivileged, it comes with a user namespace that maps
   the kernel's own uid to itself.
2. **A separate user** — when the app runs as root, the kernel drops to the deployment's
   ``sandbox`` user (or ``nobody``): it cannot signal the app, read its files or its
   ``/proc/<pid>/environ``, and RLIMIT_NPROC binds again (root is exempt from it).
3. **Landlock** — reads only beneath the system and the Python it runs, writes only beneath its
   scratch and runtime directories, no TCP, no signals or abstract sockets outside its domain.

rlimits and the allow-listed environment always apply (``sandbox_launch.py``). Standard library
only.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from collections.abc import Callable

import landlock  # kernels/, beside this file (the launcher's folder is on sys.path)

CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000
# What model code may read: the system, never /home, /root, /tmp, /srv, /data or the app's tree.
SYSTEM_READ = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc", "/sys",
               "/proc/self", "/proc/thread-self", "/proc/cpuinfo", "/proc/meminfo",
               "/proc/stat", "/proc/loadavg", "/dev/urandom", "/dev/random", "/dev/zero"]
SYSTEM_WRITE = ["/dev/null", "/dev/full"]


def _unshare(flags: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(ctypes.c_int(flags)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def namespaces() -> str | None:
    """A private network namespace; returns None when done, else why not."""
    try:
        if os.geteuid() == 0:
            _unshare(CLONE_NEWNET)
        else:
            uid, gid = os.getuid(), os.getgid()
            _unshare(CLONE_NEWUSER | CLONE_NEWNET)
            for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"),
                               ("gid_map", f"{gid} {gid} 1")):
                with open(f"/proc/self/{name}", "w") as f:
                    f.write(text)
    except OSError as e:
        return f"unshare refused ({e.strerror})"
    return None


def join_cgroup(path: str, max_tasks: int) -> str | None:
    """Join the pids cgroup the app made for this kernel and cap its tasks (what bounds a fork
    bomb where RLIMIT_NPROC cannot: root is exempt from it). Returns None when done, else why
    not."""
    try:
        with open(os.path.join(path, "pids.max"), "w") as f:
            f.write(str(max_tasks))
        with open(os.path.join(path, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))
    except OSError as e:
        return f"cgroup refused ({e.strerror})"
    return None


def switch_user(uid: int, gid: int, owned: list[str]) -> None:
    """Hand the kernel's own directories to the sandbox user, then become it for good."""
    for path in owned:
        for root, dirs, files in os.walk(path):
            os.chown(root, uid, gid)
            for name in dirs + files:
                os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)
        if os.path.isfile(path):
            os.chown(path, uid, gid)
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if os.getuid() == 0 or os.geteuid() == 0:
        raise RuntimeError("could not drop root for the sandbox user")


def python_paths(deny: list[str]) -> list[str]:
    """Where this Python and its packages live, minus anything at or above a denied path
    (a checkout on sys.path must not open the app's database or source tree)."""
    found = {sys.prefix, sys.base_prefix, sys.exec_prefix,
             os.path.dirname(os.path.realpath(sys.executable))}
    found.update(p for p in sys.path if p and os.path.isdir(p))
    denied = [os.path.realpath(d) for d in deny if d]
    out = []
    for p in sorted(found):
        real = os.path.realpath(p)
        if any(real == d or d.startswith(real.rstrip("/") + "/") or
               real.startswith(d.rstrip("/") + "/") for d in denied):
            continue
        out.append(real)
    return out


def apply(cfg: dict, own: list[str], limits: Callable[[], None]) -> dict:
    """Apply every layer ``cfg`` asks for, calling ``limits`` (the rlimits) once the kernel is
    the user it stays and before Landlock hides /proc (RLIMIT_NPROC counts that user's tasks);
    return the report (also written to cfg["report"])."""
    report: dict = {"rlimits": True, "environment": "allow-list", "namespaces": None,
                    "user": None, "landlock": None, "cgroup": None, "pid": os.getpid()}
    if cfg.get("cgroup"):
        why = join_cgroup(cfg["cgroup"], int(cfg.get("processes") or 256))
        report["cgroup"] = None if why else int(cfg.get("processes") or 256)
    if cfg.get("namespaces", True):
        why = namespaces()
        report["namespaces"] = "network" if why is None else None
        if why:
            report["namespaces_missing"] = why
    if cfg.get("user_missing"):
        report["user_missing"] = cfg["user_missing"]
    user = cfg.get("user")
    if user and os.geteuid() == 0:
        switch_user(int(user["uid"]), int(user["gid"]), own)
        report["user"] = user.get("name", str(user["uid"]))
    limits()
    if cfg.get("landlock", True):
        read = SYSTEM_READ + python_paths(cfg.get("deny", [])) + list(cfg.get("read", []))
        try:
            report["landlock"] = landlock.restrict(read, SYSTEM_WRITE + own)
        except OSError as e:
            report["landlock_missing"] = str(e)
    report["uid"] = os.getuid()
    if cfg.get("report"):
        with open(cfg["report"], "w") as f:
            json.dump(report, f)
    return report
