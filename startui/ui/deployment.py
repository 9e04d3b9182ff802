"""What a deployment lets its visitors do: public mode, the backends on offer, rate and token
limits. No Gradio here; the app asks this module before a visitor's settings reach a backend.

In public mode (``STARTUI_PUBLIC=1``, the Docker image's default) a visitor picks one of the
deployment's *choices* by its label and nothing else: no free-text URL, model path or command
from a visitor ever reaches a backend factory — the page and the API go through the same
:meth:`Deployment.resolve`. Each visitor may start ``runs_per_minute`` runs, each capped at
``max_tokens``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from startui.ui.settings import RunSettings


class NotAllowed(PermissionError):
    """A visitor asked for something the deployment does not offer; the message says what is."""


@dataclass(frozen=True)
class Choice:
    """A backend and model the deployment offers, under a label visitors see."""

    label: str
    backend: str
    model: str | None = None
    base_url: str | None = None


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _default_choice(backend: str, model: str | None, base_url: str | None) -> Choice:
    label = {"llamacpp": "Qwen2.5-Coder-1.5B (embedded, CPU)"}.get(backend) if not model else None
    return Choice(label or f"{backend}: {model or 'default'}", backend, model, base_url)


@dataclass
class Deployment:
    public: bool = False
    choices: list[Choice] = field(default_factory=list)
    max_tokens: int | None = None  # per run; None: no cap beyond the settings panel's
    runs_per_minute: int | None = None  # per visitor; None: unlimited
    allow_weak_sandbox: bool = False

    @classmethod
    def from_env(cls, defaults: RunSettings | None = None) -> Deployment:
        """``STARTUI_PUBLIC``, ``STARTUI_CHOICES`` (a JSON list of {label, backend, model,
        base_url}; default: the one backend STARTUI_BACKEND/STARTUI_MODEL/STARTUI_BASE_URL
        name), ``STARTUI_MAX_TOKENS``, ``STARTUI_RUNS_PER_MINUTE``,
        ``STARTUI_ALLOW_WEAK_SANDBOX``."""
        public = _flag("STARTUI_PUBLIC")
        d = defaults or RunSettings()
        raw = os.environ.get("STARTUI_CHOICES", "").strip()
        if raw:
            try:
                items = json.loads(raw)
                choices = [Choice(str(c["label"]), str(c["backend"]), c.get("model"),
                                  c.get("base_url")) for c in items]
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError("STARTUI_CHOICES must be a JSON list of objects with label and "
                                 f"backend (and model, base_url): {e}") from None
        else:
            choices = [_default_choice(d.backend, d.model, d.base_url)]
        env_tokens = os.environ.get("STARTUI_MAX_TOKENS")
        env_rate = os.environ.get("STARTUI_RUNS_PER_MINUTE")
        return cls(public=public, choices=choices,
                   max_tokens=int(env_tokens) if env_tokens else (4096 if public else None),
                   runs_per_minute=int(env_rate) if env_rate else (6 if public else None),
                   allow_weak_sandbox=_flag("STARTUI_ALLOW_WEAK_SANDBOX"))

    @property
    def labels(self) -> list[str]:
        return [c.label for c in self.choices]

    def resolve(self, settings: RunSettings) -> RunSettings:
        """The settings a run may use. In public mode ``settings.backend`` must be one of the
        labels (or the backend name of exactly one choice); the choice's model and URL replace
        whatever the visitor sent. Everywhere, ``max_tokens`` is capped."""
        out = settings
        if self.public:
            matches = [c for c in self.choices if settings.backend == c.label] or [
                c for c in self.choices if settings.backend == c.backend]
            if len(matches) != 1:
                raise NotAllowed(f"this deployment offers {', '.join(map(repr, self.labels))}; "
                                 f"{settings.backend!r} is not one of them")
            c = matches[0]
            sent = (settings.model or None, settings.base_url or None)
            if any(sent) and sent != (c.model, c.base_url):
                raise NotAllowed("a public deployment chooses the model and server itself: "
                                 "pick one of " + ", ".join(map(repr, self.labels)))
            out = dataclasses.replace(settings, backend=c.backend, model=c.model,
                                      base_url=c.base_url)
        if self.max_tokens is not None and out.max_tokens > self.max_tokens:
            out = dataclasses.replace(out, max_tokens=self.max_tokens)
        return out


class RateLimiter:
    """At most ``per_minute`` events per key in any 60 s window (a sliding log: exact, and a
    visitor's key holds at most ``per_minute`` timestamps)."""

    def __init__(self, per_minute: int | None, *, window: float = 60.0) -> None:
        self.per_minute = per_minute
        self.window = window
        self._log: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str, now: float | None = None) -> None:
        """Count one event for ``key``; raise NotAllowed (saying when to retry) when over."""
        if not self.per_minute:
            return
        now = time.monotonic() if now is None else now
        with self._lock:
            log = self._log.setdefault(key, deque())
            while log and now - log[0] >= self.window:
                log.popleft()
            if len(log) >= self.per_minute:
                wait = math.ceil(self.window - (now - log[0]))
                raise NotAllowed(f"you have started {self.per_minute} runs in the last minute: "
                                 f"try again in {wait} s")
            log.append(now)
            if len(self._log) > 10_000:  # forget idle visitors
                for k in [k for k, v in self._log.items() if not v or now - v[-1] >= self.window]:
                    del self._log[k]


def visitor_key(request: Any) -> str:
    """Who a request comes from, for the rate limit: the logged-in user, else the client
    address (a reload or a second tab is the same visitor)."""
    user = getattr(request, "username", None)
    if user:
        return f"user:{user}"
    client = getattr(request, "client", None)
    host = getattr(client, "host", None) if client is not None else None
    return f"ip:{host or 'unknown'}"
