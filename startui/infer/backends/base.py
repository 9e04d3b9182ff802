"""The backend protocol: stream completion text for a raw prompt, cancellable.

Generation always continues from an exact text prefix (completion mode, never a chat API), so a
hint or a tool output can be spliced in and the model resumes from the same prefix. Cancelling is
closing the stream: every backend aborts its request in the generator's ``finally``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
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


Put = Callable[["Chunk | BaseException | None"], None]


async def stream_from_thread(work: Callable[[Put, threading.Event], None], *, name: str,
                             started: Callable[[threading.Thread, threading.Event], None]
                             | None = None) -> AsyncIterator[Chunk]:
    """Stream the chunks a blocking engine produces in a worker thread.

    ``work(put, cancel)`` runs in the thread, hands each :class:`Chunk` to ``put`` and must stop
    soon after ``cancel`` is set; an exception it raises reaches the consumer as a
    :class:`BackendError`. Closing the stream sets ``cancel`` — that is how a stop reaches
    llama.cpp's callback or a decode loop. ``started`` sees the thread and its cancel event.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Chunk | BaseException | None] = asyncio.Queue()
    cancel = threading.Event()

    def put(item: Chunk | BaseException | None) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the consumer's loop is gone: nobody is listening
            cancel.set()

    def run() -> None:
        try:
            work(put, cancel)
        except BackendError as e:
            put(e)
        except BaseException as e:  # noqa: BLE001 - surfaced to the consumer as an error
            put(BackendError(f"{name} failed: {type(e).__name__}: {e}"))
        finally:
            put(None)

    thread = threading.Thread(target=run, name=name, daemon=True)
    if started is not None:
        started(thread, cancel)
    thread.start()
    try:
        while (item := await queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
            if item.finish_reason:
                break
    finally:
        cancel.set()
