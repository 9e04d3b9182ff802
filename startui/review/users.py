"""Who is reviewing: users in the store, salted password hashes, roles and what each may do.

Passwords are hashed with scrypt (a random 16-byte salt each) and compared in constant time; the
plain text is never stored or logged. Roles: ``admin`` (everything, the guidelines and label set
included), ``reviewer`` (decide, label, edit, export), ``viewer`` (read only). With no user
configured — one person on a laptop — the reviewer is the OS user, with a reviewer's rights.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import os
import re
from typing import Any

from startui.store.reviews import User

_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
# A visitor of a public deployment who did not log in: may look, never touch (no user can be
# called this: the name check refuses parentheses).
ANONYMOUS = "(anonymous)"
_N, _R, _P = 2**14, 8, 1
ACTIONS = {"decide": ("admin", "reviewer"), "label": ("admin", "reviewer"),
           "edit": ("admin", "reviewer"), "export": ("admin", "reviewer"),
           "guidelines": ("admin",), "users": ("admin",),
           # review campaigns: an admin makes and closes them and settles disagreements (the
           # campaign's named adjudicator may too: startui.review.campaigns checks that)
           "campaign": ("admin",), "adjudicate": ("admin",)}


class PermissionDenied(PermissionError):
    """A person tried something their role does not allow; the message says what is needed."""


def hash_password(password: str) -> str:
    if not password:
        raise ValueError("a password cannot be empty")
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str | None) -> bool:
    try:
        algo, n, r, p, salt, digest = (stored or "").split("$")
        if algo != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r),
                             p=int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), digest)


def check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise ValueError(f"a user name is 1-64 letters, digits or _ . @ -, not {name!r}")
    return name


def add_user(store: Any, name: str, password: str | None = None, role: str = "reviewer") -> User:
    """Create (or replace the password and role of) a user; ``password`` None: a user who logs
    in some other way (Hugging Face)."""
    return store.upsert_user(check_name(name), role=role,
                             password_hash=hash_password(password) if password else None)


def set_role(store: Any, name: str, role: str) -> User:
    if store.get_user(name) is None:
        raise ValueError(f"no user {name!r}")
    return store.upsert_user(name, role=role, keep_password=True)


def remove_user(store: Any, name: str) -> None:
    store.remove_user(name)


def list_users(store: Any) -> list[User]:
    return store.list_users()


def authenticate(store: Any, name: str, password: str) -> bool:
    """For Gradio's ``auth=``: the name exists and the password matches its hash."""
    return verify_password(password or "", store.password_hash_of(name or ""))


def auth_required(store: Any) -> bool:
    """Whether the app must ask for a login: some user has a password."""
    return store is not None and any(u.has_password for u in store.list_users())


def os_reviewer() -> str:
    name = os.environ.get("STARTUI_REVIEWER")
    if name:
        return name
    try:
        return getpass.getuser() or "local"
    except Exception:  # noqa: BLE001 - no passwd entry (a container with a bare uid)
        return "local"


def role_of(store: Any, name: str) -> str:
    """A configured user's role; with nobody configured, everyone is a reviewer; someone
    unknown to a store that has users is a viewer."""
    if name == ANONYMOUS:
        return "viewer"
    if store is None:
        return "reviewer"
    user = store.get_user(name)
    if user is not None:
        return user.role
    return "viewer" if store.list_users() else "reviewer"


def require(store: Any, name: str, action: str) -> None:
    """Raise PermissionDenied unless ``name`` may do ``action``."""
    allowed = ACTIONS[action]
    if name == ANONYMOUS:
        raise PermissionDenied(f"log in to {action}: this public deployment lets visitors look, "
                               "and reviewers work")
    role = role_of(store, name)
    if role not in allowed:
        raise PermissionDenied(f"{name} is a {role}: {action} needs the role "
                               f"{' or '.join(allowed)} (an admin can change it with "
                               f"`python -m startui users role {name} {allowed[-1]}`)")
