"""A backend that replays a script of model text: deterministic tests and a guided tour.

The script is a list of *turns*. Each request (the first prompt, then every resume after a tool
output or a hint) plays the next turn, token by token, honouring stop strings and max_tokens the
way a real server does. A turn may be a callable that gets the prompt, so a test can answer what
the engine actually sent; ``respond`` is such a callable for every request after the turns, which
makes a stateless "model" that any number of runs can share.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Sequence

from startui.infer.backends.base import BackendError, Chunk, GenerationRequest, chatml

Turn = str | Callable[[str], str]
_TOKEN = re.compile(r"\s*\S+|\s+")


def tokenize(text: str) -> list[str]:
    """Whitespace-led word pieces: close enough to a tokenizer for streaming tests."""
    return _TOKEN.findall(text)


class ScriptedBackend:
    name = "scripted"

    def __init__(self, turns: Sequence[Turn] = (), *, model: str = "script", delay: float = 0.0,
                 fail_after: int | None = None, respond: Callable[[str], str] | None = None,
                 ) -> None:
        self.model = model
        self.turns = list(turns)
        self.respond = respond  # answers every request once the turns are used up
        self.delay = delay
        self.fail_after = fail_after  # raise BackendError after this many tokens (tests "drops")
        self.requests: list[GenerationRequest] = []
        self.cancelled = 0  # streams closed before they finished
        self.stream_ignores_stop = False  # act like a server without stop-string support

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        return chatml(messages)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        self.requests.append(request)
        turn = self.turns.pop(0) if self.turns else (self.respond or "")
        text = turn(request.prompt) if callable(turn) else turn
        stops = [] if self.stream_ignores_stop else request.stop
        cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=-1)
        stopped_by_string = cut >= 0
        if stopped_by_string:
            text = text[:cut]
        pieces = tokenize(text)
        finish = "stop"
        if len(pieces) > request.max_tokens:
            pieces, finish = pieces[: request.max_tokens], "length"
        done = False
        try:
            for n, piece in enumerate(pieces):
                if self.fail_after is not None and n >= self.fail_after:
                    raise BackendError("scripted backend dropped the stream (fail_after)")
                if self.delay:
                    await asyncio.sleep(self.delay)
                else:
                    await asyncio.sleep(0)
                yield Chunk(piece)
            done = True
            yield Chunk("", finish_reason=finish, tokens=0)
        finally:
            if not done:
                self.cancelled += 1

    async def close(self) -> None:
        return None
