"""Landlock for the kernel process, in ctypes: file access, TCP and scopes (Linux >= 5.13).

Landlock lets an unprivileged process restrict itself, irrevocably and for every process it
starts: once :func:`restrict` returns, the kernel process may only use the file hierarchies it
was granted, make no TCP connection and bind no TCP port (ABI >= 4), and send no signal to and
reach no abstract unix socket of a process outside its domain (ABI >= 6). Landlock also refuses
ptrace-class access to processes outside the domain, so ``/proc/<app>/environ`` and
``/proc/<app>/mem`` stay closed even where ``/proc`` is readable.

Standard library only: it runs in the kernel process before anything else is imported.
Reference: Documentation/userspace-api/landlock.rst; the syscall numbers are the same on every
architecture (444-446).
"""

from __future__ import annotations

import ctypes
import os

SYS_CREATE_RULESET, SYS_ADD_RULE, SYS_RESTRICT_SELF = 444, 445, 446
CREATE_RULESET_VERSION = 1 << 0
RULE_PATH_BENEATH, RULE_NET_PORT = 1, 2
PR_SET_NO_NEW_PRIVS = 38

# Filesystem rights, with the ABI that introduced them.
FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
FS_REMOVE_DIR = 1 << 4
FS_REMOVE_FILE = 1 << 5
FS_MAKE_CHAR = 1 << 6
FS_MAKE_DIR = 1 << 7
FS_MAKE_REG = 1 << 8
FS_MAKE_SOCK = 1 << 9
FS_MAKE_FIFO = 1 << 10
FS_MAKE_BLOCK = 1 << 11
FS_MAKE_SYM = 1 << 12
FS_REFER = 1 << 13  # ABI 2
FS_TRUNCATE = 1 << 14  # ABI 3
FS_IOCTL_DEV = 1 << 15  # ABI 5
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6

_FS_ABI1 = (1 << 13) - 1
FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV
READ = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class LandlockError(OSError):
    pass


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _call(*args: object) -> int:
    rc = _libc.syscall(*args)
    if rc < 0:
        err = ctypes.get_errno()
        raise LandlockError(err, os.strerror(err))
    return rc


def abi() -> int:
    """The Landlock ABI version this kernel offers; 0 when Landlock is absent or disabled."""
    try:
        return _call(SYS_CREATE_RULESET, None, ctypes.c_size_t(0),
                     ctypes.c_uint32(CREATE_RULESET_VERSION))
    except LandlockError:
        return 0


def handled_fs(version: int) -> int:
    rights = _FS_ABI1
    if version >= 2:
        rights |= FS_REFER
    if version >= 3:
        rights |= FS_TRUNCATE
    if version >= 5:
        rights |= FS_IOCTL_DEV
    return rights


def restrict(read: list[str], write: list[str], *, version: int | None = None) -> dict[str, object]:
    """Allow reading (and executing) beneath ``read``, everything beneath ``write``, nothing
    else; no TCP; signals and abstract sockets scoped to the domain. Missing paths are skipped.
    Returns what was enforced, for the isolation report. Raises LandlockError if Landlock is
    unavailable."""
    version = abi() if version is None else version
    if version < 1:
        raise LandlockError(0, "Landlock is not available in this kernel")
    fs = handled_fs(version)
    attr = _RulesetAttr(handled_access_fs=fs,
                        handled_access_net=(NET_BIND_TCP | NET_CONNECT_TCP) if version >= 4 else 0,
                        scoped=(SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL) if version >= 6 else 0)
    size = ctypes.sizeof(_RulesetAttr) if version >= 6 else (
        16 if version >= 4 else 8)  # older kernels reject fields they do not know
    ruleset = _call(SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size),
                    ctypes.c_uint32(0))
    granted: dict[str, list[str]] = {"read": [], "write": []}
    try:
        for paths, rights, kind in ((read, READ, "read"), (write, fs, "write")):
            for path in paths:
                if _add(ruleset, path, rights & fs):
                    granted[kind].append(path)
        _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        _call(SYS_RESTRICT_SELF, ruleset, ctypes.c_uint32(0))
    finally:
        os.close(ruleset)
    return {"abi": version, "filesystem": True, "tcp": version >= 4, "scoped": version >= 6,
            **granted}


def _add(ruleset: int, path: str, rights: int) -> bool:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        if not os.path.isdir(path):
            rights &= FILE_RIGHTS  # a rule on a file may only carry file rights
        rule = _PathBeneath(allowed_access=rights, parent_fd=fd)
        _call(SYS_ADD_RULE, ruleset, ctypes.c_uint32(RULE_PATH_BENEATH), ctypes.byref(rule),
              ctypes.c_uint32(0))
        return True
    finally:
        os.close(fd)
