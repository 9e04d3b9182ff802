"""The backend protocol: stream completion text for a raw prompt, cancellable.

Generation always continues from an exact text prefix (completion mode, never a chat API), so a
hint or a tool output can be spliced in and the model resumes from the same prefix. Cancelling is
closing the stream: every backend aborts its request in the generator's ``finally``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


class BackendError(RuntimeError):
    """The backend failed (server down, model missing, dropped mid-stream). The message says
    what went wrong and what to do; the trajectory so far is kept."""


@dataclass
class GenerationRequest:
    prompt: str
    stop: list[str] = field(default_factory=list)
    max_tokens: int = 1024
    temperature: float = 0.6
    top_p: float = 0.95
    seed: int | None = None
    # Which trajectory asks (the engine passes its id): a backend with several servers keeps one
    # key on one server so its prefix stays cached there. None: no preference.
    key: str | None = None


@dataclass
class Chunk:
    """A piece of streamed text. The last chunk of a stream has ``finish_reason`` "stop" (end of
    sequence or a stop string) or "length" (max_tokens reached)."""

    text: str
    finish_reason: str | None = None
    tokens: int = 1


def chatml(messages: list[dict[str, str]]) -> str:
    """ChatML (Qwen's template) with the generation prompt: the default when a backend has no
    template of its own."""
    out = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return out + "<|im_start|>assistant\n"


@runtime_checkable
class Backend(Protocol):
    name: str
    model: str

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        """The templated prompt (with the generation prompt) for a chat."""
        ...

    def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        """Stream the continuation of ``request.prompt``; closing the iterator aborts it."""
        ...

    async def close(self) -> None: ...
