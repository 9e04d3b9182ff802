"""Backends: one small protocol (:mod:`startui.backends.base`), several engines.

Built-ins register here the way a plugin would; ``make_backend`` is what the CLI and the app call.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from startui.backends.base import Backend, BackendError, Chunk, GenerationRequest

__all__ = ["Backend", "BackendError", "Chunk", "GenerationRequest", "make_backend", "BACKENDS"]


def _llamacpp(model: str | None = None, **kw: Any) -> Backend:
    from startui.backends.llamacpp import LlamaCppBackend

    return LlamaCppBackend(model, **kw)


def _scripted(model: str | None = None, **kw: Any) -> Backend:
    """``model`` is a JSON file holding a list of turns (strings)."""
    from startui.backends.scripted import ScriptedBackend

    turns: list[str] = []
    if model:
        try:
            turns = json.loads(Path(model).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise BackendError(f"cannot read script {model}: {e}") from e
        if not isinstance(turns, list) or not all(isinstance(t, str) for t in turns):
            raise BackendError(f"script {model} must be a JSON list of strings (one per turn)")
    return ScriptedBackend(turns, model=model or "script", **kw)


BACKENDS: dict[str, Callable[..., Backend]] = {"llamacpp": _llamacpp, "scripted": _scripted}


def make_backend(name: str, model: str | None = None, **kw: Any) -> Backend:
    try:
        factory = BACKENDS[name]
    except KeyError:
        known = ", ".join(BACKENDS)
        raise BackendError(f"unknown backend {name!r}; choose one of {known}") from None
    return factory(model, **kw)
