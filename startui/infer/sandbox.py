"""The app's side of the kernel sandbox: which layers to ask for, the sandbox user and pids cgroup
a root app prepares, what the launcher is told (``STARTUI_SANDBOX``), and how its report reads.

What runs inside the kernel process — namespaces, the user switch, Landlock — is in ``kernels/``
(``isolation.py``, ``landlock.py``); this module only prepares and describes it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from startui import resources


@dataclass
class Isolation:
    """The layers a kernel asks for beyond rlimits; each is applied where the machine allows it
    and reported (``Kernel.isolation``): Landlock, a private network namespace, and — when the
    app runs as root — a separate user (``user``, else ``nobody``)."""

    landlock: bool = True
    namespaces: bool = True
    user: str | None = "sandbox"


def sandbox_user(name: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """(the user a root app's kernels run as, or None; why not). The user must be able to reach
    this Python: a Python under a private home (/root) cannot serve a separate user."""
    if os.geteuid() != 0 or not name:
        return None, None if os.geteuid() != 0 else "disabled"
    import pwd

    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        try:
            entry = pwd.getpwnam("nobody")
        except KeyError:
            return None, f"no {name!r} or 'nobody' user on this machine"
    for path in (sys.prefix, str(resources.kernels_dir())):
        blocked = _unreachable(path, entry.pw_uid)
        if blocked:
            return None, f"user {entry.pw_name!r} cannot reach {blocked} (this Python lives there)"
    return {"name": entry.pw_name, "uid": entry.pw_uid, "gid": entry.pw_gid}, None


def _unreachable(path: str, uid: int) -> str | None:
    """The first directory on the way to ``path`` that ``uid`` (not root) may not traverse."""
    current = "/"
    for part in Path(path).resolve().parts[1:]:
        current = os.path.join(current, part)
        try:
            st = os.stat(current)
        except OSError:
            return current
        if os.path.isdir(current) and not (st.st_mode & 0o001 or
                                           (st.st_uid == uid and st.st_mode & 0o100)):
            return current
    return None


_CGROUP_ROOTS = ("/sys/fs/cgroup/pids", "/sys/fs/cgroup")  # cgroup v1's pids, then v2


def make_cgroup(name: str) -> str | None:
    """A pids cgroup for one kernel, when this process may make one (root, a writable pids
    controller); None otherwise. Removed with :func:`remove_cgroup` once the kernel is gone."""
    if os.geteuid() != 0:
        return None
    for root in _CGROUP_ROOTS:
        if not os.path.isfile(os.path.join(root, "cgroup.procs")):
            continue
        if root == "/sys/fs/cgroup":  # v2: only where the pids controller is delegated here
            try:
                if "pids" not in Path(root, "cgroup.subtree_control").read_text().split():
                    continue
            except OSError:
                continue
        path = os.path.join(root, "startui", name)
        try:
            os.makedirs(path, exist_ok=True)
            if os.path.isfile(os.path.join(path, "pids.max")):
                return path
            os.rmdir(path)
        except OSError:
            continue
    return None


def remove_cgroup(path: str | None) -> None:
    if path:
        with contextlib.suppress(OSError):
            os.rmdir(path)  # empty once the kernel's processes are gone


def isolation_config(workdir: str, runtime: str, isolation: Isolation,
                     cgroup: str | None = None) -> dict[str, Any]:
    """What the launcher needs to isolate the kernel (travels in STARTUI_SANDBOX)."""
    user, why_not = sandbox_user(isolation.user)
    deny = [os.getcwd(), str(resources.data_dir())]
    if resources.in_checkout():
        deny.append(str(Path(resources.__file__).resolve().parents[1]))
    return {"workdir": workdir, "runtime": runtime,
            "report": os.path.join(runtime, "isolation.json"),
            "landlock": isolation.landlock, "namespaces": isolation.namespaces,
            "user": user, "user_missing": why_not, "deny": deny, "read": [mpl_cache_dir()],
            "cgroup": cgroup}


def describe_isolation(report: dict[str, Any] | None) -> str:
    """One line for the status bar and ``startui doctor``: which layers hold."""
    if not report:
        return "isolation: unknown (no kernel has started yet)"
    parts = []
    ll = report.get("landlock")
    if ll:
        what = ["files"] + (["no TCP"] if ll.get("tcp") else []) + (
            ["signals and sockets scoped"] if ll.get("scoped") else [])
        parts.append(f"Landlock ABI {ll.get('abi')} ({', '.join(what)})")
    if report.get("namespaces"):
        parts.append("own network namespace (no network)")
    if report.get("user"):
        parts.append(f"separate user {report['user']!r}")
    if report.get("cgroup"):
        parts.append(f"pids cgroup (≤ {report['cgroup']} tasks)")
    parts.append("rlimits" + ("" if report.get("uid") != 0 or report.get("cgroup") else
                              " (process count not enforced for root)"))
    weak = not (ll or report.get("namespaces") or report.get("user"))
    return ("isolation: " + " · ".join(parts) +
            (" — WEAK: only rlimits hold on this machine" if weak else ""))


def isolation_is_weak(report: dict[str, Any] | None) -> bool:
    return not report or not (report.get("landlock") or report.get("namespaces")
                              or report.get("user"))




def mpl_cache_dir() -> str:
    """A shared matplotlib cache, so each fresh HOME does not rebuild the font cache (~s)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = os.path.join(base, "startui", "matplotlib")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        path = tempfile.mkdtemp(prefix="startui-mpl-")
    return path
