"""llama.cpp, embedded through ``xllamacpp``: the default backend, on a CPU, offline.

``xllamacpp.Server`` runs llama.cpp's own server in-process; ``handle_completions`` streams
OpenAI-style completion chunks to a callback, and the callback returning True cancels the request
at once. ``cache_prompt`` lets a resume after a hint or a tool output reuse the cached prefix, so
only the new tokens are prefilled. The same server also listens on a loopback port with the
OpenAI-compatible HTTP API (used for the chat template, and by the openai backend's tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from startui.infer.backends import embedded
from startui.infer.backends.base import (
    BackendError,
    Chunk,
    GenerationRequest,
    Put,
    chatml,
    stream_from_thread,
)


class LlamaCppBackend:
    name = "llamacpp"

    def __init__(self, model_path: str | os.PathLike[str] | None = None, *, n_ctx: int = 8192,
                 threads: int | None = None, parallel: int = 1) -> None:
        self._path = Path(model_path) if model_path else None
        self.model = str(self._path) if self._path else embedded.NAME
        self.n_ctx = n_ctx
        self.threads = threads or os.cpu_count() or 2
        self.parallel = parallel
        self._server: Any = None
        self._lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------

    def load(self) -> Any:
        """Start the embedded server (loads the weights, ~3 s); idempotent and thread-safe."""
        with self._lock:
            if self._server is None:
                try:
                    import xllamacpp
                except ImportError as e:
                    raise BackendError("the llamacpp backend needs xllamacpp: "
                                       "pip install -r requirements.txt") from e
                try:
                    path = (embedded.check_gguf(self._path) if self._path
                            else embedded.default_model_path())
                except embedded.ModelFileError as e:
                    raise BackendError(str(e)) from e
                params = xllamacpp.CommonParams()
                params.model.path = str(path)
                params.n_ctx = self.n_ctx * self.parallel
                params.n_parallel = self.parallel
                params.cpuparams.n_threads = self.threads
                params.cpuparams_batch.n_threads = self.threads
                params.verbosity = 0
                params.port = 0
                try:
                    self._server = xllamacpp.Server(params)
                except Exception as e:
                    raise BackendError(f"llama.cpp could not load {path}: {e}") from e
            return self._server

    @property
    def base_url(self) -> str:
        """The loopback OpenAI-compatible endpoint of the embedded server."""
        return str(self.load().listening_address).rstrip("/")

    async def close(self) -> None:
        with self._lock:
            server, self._server = self._server, None
        del server  # the destructor stops llama.cpp's loop

    # -- protocol -------------------------------------------------------------------------

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        """The model's own chat template, applied by llama.cpp (``/apply-template``)."""
        base_url = self.base_url  # loads the model: its errors are the caller's to see
        body = json.dumps({"messages": messages}).encode()
        req = urllib.request.Request(base_url + "/apply-template", data=body,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return json.loads(resp.read())["prompt"]
        except Exception:  # noqa: BLE001 - an old server without the endpoint: Qwen's ChatML
            return chatml(messages)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        server = await asyncio.to_thread(self.load)
        body = {
            "prompt": request.prompt, "max_tokens": request.max_tokens, "stream": True,
            "stop": request.stop, "temperature": request.temperature, "top_p": request.top_p,
            "cache_prompt": True,
        }
        if request.seed is not None:
            body["seed"] = request.seed

        def work(put: Put, cancel: threading.Event) -> None:
            def on_chunk(raw: str) -> bool:  # returning True makes llama.cpp drop the request
                if cancel.is_set():
                    return True
                put(_chunk(raw))
                return cancel.is_set()

            server.handle_completions(json.dumps(body), on_chunk)

        chunks = stream_from_thread(work, name="llama.cpp")
        async with contextlib.aclosing(chunks):  # closing this stream closes that one
            async for chunk in chunks:
                yield chunk


def _chunk(raw: str) -> Chunk | BackendError:
    """One of llama.cpp's OpenAI-style completion chunks, or the error it reports."""
    try:
        data = json.loads(raw)
        if "error" in data:
            err = data["error"]
            msg = err.get("message", err) if isinstance(err, dict) else err
            return BackendError(f"llama.cpp: {msg}")
        choice = data["choices"][0]
        finish = choice.get("finish_reason")
        return Chunk(choice.get("text") or "", finish_reason=finish, tokens=0 if finish else 1)
    except (ValueError, KeyError, IndexError) as e:
        return BackendError(f"llama.cpp sent something unreadable: {e}: {raw[:200]}")
