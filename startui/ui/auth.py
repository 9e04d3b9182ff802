"""Who is at the keyboard: the logged-in user (Gradio's auth, against the store's users), the
Hugging Face account on a Space, or the OS user on a laptop with no users configured.

The name always comes from the request (never from an input a caller could fill in), so the page
and the API are held to the same permission checks in :mod:`startui.review.users`.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import inspect
import logging
import os
from collections.abc import Callable
from typing import Any

import gradio as gr

from startui.review import users
from startui.store import ConflictError, StoreError

log = logging.getLogger(__name__)

# What a person can act on (a refusal, a conflict, a bad value): shown as a message, never a
# traceback.
USER_ERRORS = (ValueError, PermissionError, LookupError, StoreError)


def on_spaces() -> bool:
    """A Hugging Face Space with OAuth on (``hf_oauth: true`` in the README's front-matter) and
    Gradio's OAuth extra installed (``gradio[oauth]``: without it the login button cannot work,
    and the app says so in its log rather than failing to start)."""
    if not (os.environ.get("SPACE_ID") and os.environ.get("OAUTH_CLIENT_ID")):
        return False
    if importlib.util.find_spec("authlib") is None:
        log.warning("Hugging Face login is off: install gradio[oauth] (authlib) on this Space")
        return False
    return True


def auth_for(store: Any) -> Callable[[str, str], bool] | None:
    """What ``launch(auth=...)`` gets: the store's password check once any user has a password;
    None (no login page) otherwise, and on a Space, where the Hugging Face login is used."""
    if store is None or on_spaces() or not users.auth_required(store):
        return None
    return lambda name, password: users.authenticate(store, name, password)


def reviewer(store: Any, request: gr.Request | None,
             profile: gr.OAuthProfile | None = None, *, public: bool = False) -> str:
    """The name every decision, label and edit is recorded under: the logged-in person; on a
    laptop with nobody configured, the OS user; in public mode, nobody (``users.ANONYMOUS``,
    who may look but not touch)."""
    name = logged_in(request, profile)
    if name:
        return name
    return users.ANONYMOUS if public else users.os_reviewer()


def logged_in(request: gr.Request | None, profile: gr.OAuthProfile | None = None) -> str | None:
    """The name of a person who logged in (Gradio's auth or Hugging Face), else None."""
    name = getattr(request, "username", None) if request is not None else None
    if name:
        return str(name)
    return str(profile.username) if profile is not None else None


def role(store: Any, name: str) -> str:
    return users.role_of(store, name) if store is not None else "viewer"


def who_line(store: Any, name: str, logged_in: bool) -> str:
    """The tab's line about the reviewer: a login, a role, or why it is the OS user."""
    if store is None:
        return f"**{name}** (no store: nothing can be reviewed)"
    r = role(store, name)
    if not logged_in and not users.list_users(store):
        return (f"reviewing as **{name}** (no users configured: "
                "`python -m startui users add NAME`)")
    note = " — read-only" if r == "viewer" else ""
    return f"reviewing as **{name}** ({r}{note})"


def said(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Store work off the event loop; refusals and bad input as the library's message."""
    @functools.wraps(fn)
    async def handler(*args: Any, **kw: Any) -> Any:
        try:
            if inspect.iscoroutinefunction(fn):
                return await fn(*args, **kw)
            return await asyncio.to_thread(fn, *args, **kw)
        except ConflictError as e:
            raise gr.Error(f"not saved: {e}") from None
        except USER_ERRORS as e:
            raise gr.Error(str(e)) from None

    return handler
