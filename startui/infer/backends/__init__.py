"""Backends: one small protocol (:mod:`startui.infer.backends.base`), several engines.

Built-ins register here the way a plugin would; ``make_backend`` is what the CLI and the app call.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from startui.infer.backends.base import Backend, BackendError, Chunk, GenerationRequest

__all__ = ["Backend", "BackendError", "Chunk", "GenerationRequest", "make_backend", "BACKENDS"]


def _llamacpp(model: str | None = None, **kw: Any) -> Backend:
    from startui.infer.backends.llamacpp import LlamaCppBackend

    return LlamaCppBackend(model, **kw)


def _scripted(model: str | None = None, **kw: Any) -> Backend:
    """``model`` is a JSON file: a list of turns (strings), or an object with ``turns``, a
    ``respond`` function (``"module:function"``, called with the prompt for every request after
    the turns: a stateless model any number of trajectories can share, e.g.
    ``"bench.standins:rft_respond"``) and a per-token ``delay`` in seconds."""
    from startui.infer.backends.scripted import ScriptedBackend

    script: Any = []
    if model:
        try:
            script = json.loads(Path(model).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise BackendError(f"cannot read script {model}: {e}") from e
    if isinstance(script, dict):
        unknown = set(script) - {"turns", "respond", "delay"}
        if unknown:
            raise BackendError(f"script {model}: unknown keys {sorted(unknown)}; expected "
                               "turns, respond, delay")
        turns, respond = script.get("turns", []), script.get("respond")
        kw.setdefault("delay", script.get("delay", 0.0))
        if respond is not None:
            kw["respond"] = _function(respond, model)
    else:
        turns = script
    if not isinstance(turns, list) or not all(isinstance(t, str) for t in turns):
        raise BackendError(f"script {model} must be a JSON list of strings (one per turn), or "
                           "an object with turns, respond and delay")
    if not isinstance(kw.get("delay", 0.0), int | float):
        raise BackendError(f"script {model}: delay must be a number of seconds")
    return ScriptedBackend(turns, model=model or "script", **kw)


def _function(spec: Any, model: str | None) -> Callable[[str], str]:
    import importlib

    module, _, name = str(spec).partition(":")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as e:
        raise BackendError(f"script {model}: cannot load respond {spec!r} ({e}); expected "
                           "\"module:function\" importable here") from e
    if not callable(fn):
        raise BackendError(f"script {model}: respond {spec!r} is not a function")
    return fn  # type: ignore[no-any-return]


def _openai(model: str | None = None, **kw: Any) -> Backend:
    from startui.infer.backends.openai import OpenAIBackend

    return OpenAIBackend(model, **kw)


def _vllm(model: str | None = None, *, vllm_command: str | None = None, **kw: Any) -> Backend:
    from startui.infer.backends.vllm import VLLMBackend

    return VLLMBackend(model, command=vllm_command, **kw)


def _transformers(model: str | None = None, **kw: Any) -> Backend:
    from startui.infer.backends.hf import TransformersBackend

    return TransformersBackend(model or "", **kw)


BACKENDS: dict[str, Callable[..., Backend]] = {
    "llamacpp": _llamacpp, "scripted": _scripted, "openai": _openai, "vllm": _vllm,
    "transformers": _transformers}

# Deployment options (CLI flags and their environment variables) and the backends they apply
# to; the others ignore them, so e.g. an OPENAI_API_KEY in the environment harms no one.
OPTIONS: dict[str, tuple[str, ...]] = {
    "base_urls": ("openai", "vllm"),
    "base_url": ("openai", "vllm"),
    "api_key": ("openai", "vllm"),
    "chat_template": ("openai", "vllm", "transformers"),
    "tokenizer": ("openai", "vllm", "transformers"),
    "vllm_command": ("vllm",),
    "device": ("transformers",),
}


def make_backend(name: str, model: str | None = None, **kw: Any) -> Backend:
    try:
        factory = BACKENDS[name]
    except KeyError:
        known = ", ".join(BACKENDS)
        raise BackendError(f"unknown backend {name!r}; choose one of {known}") from None
    kw = {k: v for k, v in kw.items()
          if k not in OPTIONS or (name in OPTIONS[k] and v not in (None, "", [], ()))}
    if "base_url" in kw:  # one URL, as the Studio passes it
        urls = kw.get("base_urls") or []
        kw["base_urls"] = ([urls] if isinstance(urls, str) else list(urls)) + [kw.pop("base_url")]
    return factory(model, **kw)
