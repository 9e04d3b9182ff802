"""vLLM: attach to a running ``vllm serve``, or start one as a managed subprocess.

vLLM pins its own torch, transformers and pillow (it conflicts with gradio in one environment)
and needs a GPU, so startui never imports it: the server runs as its own process — possibly
from its own environment, hence the configurable command — and is spoken to over the
OpenAI-compatible ``/v1/completions`` API by :class:`OpenAIBackend`. A managed server is started
with prefix caching on (a resume re-sends the whole prefix; vLLM then prefills only the new
tokens), waited for on ``/health``, and stopped on close and at exit.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from startui.infer.backends import templates
from startui.infer.backends.base import BackendError, Chunk, GenerationRequest
from startui.infer.backends.openai import OpenAIBackend, Server

DEFAULT_COMMAND = "vllm serve"
_LIVE: dict[subprocess.Popen[bytes], Path] = {}  # managed servers still running → their logs


def _stop(proc: subprocess.Popen[bytes], grace: float = 15.0, keep_log: bool = False) -> None:
    """SIGTERM to the server's whole process group (vLLM forks engine workers), then SIGKILL.
    The log goes too, unless it explains a failure."""
    if proc.poll() is None:
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
    log = _LIVE.pop(proc, None)
    if log is not None and not keep_log:
        log.unlink(missing_ok=True)


@atexit.register
def _stop_all() -> None:
    for proc in list(_LIVE):
        _stop(proc, grace=5.0)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.rstrip().splitlines()[-lines:]) or "(empty log)"


class VLLMBackend(OpenAIBackend):
    """``base_urls`` given: attach. Otherwise start ``command`` (default ``vllm serve``) for
    ``model``. ``command`` is either a prefix — ``MODEL --host H --port P
    --enable-prefix-caching`` is appended — or a template with ``{model}``, ``{port}``,
    ``{host}`` and ``{python}`` placeholders, used as written."""

    name = "vllm"

    def __init__(self, model: str | None = None, *, base_urls: Sequence[str] | str = (),
                 command: str | None = None, host: str = "127.0.0.1", port: int | None = None,
                 serve_args: Sequence[str] = (), startup_timeout: float = 900.0,
                 **kw: Any) -> None:
        super().__init__(model, base_urls=base_urls, **kw)
        self.managed = not self.servers
        if self.managed and not model:
            raise BackendError("the vllm backend needs --model (to start `vllm serve MODEL`) or "
                               "--base-url (to attach to a running vLLM server)")
        self.command = command or os.environ.get("STARTUI_VLLM_COMMAND") or DEFAULT_COMMAND
        self.host = host
        self.port = port
        self.serve_args = list(serve_args)
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None
        self._start_lock = threading.Lock()

    def command_line(self, port: int) -> list[str]:
        if "{" in self.command:
            values = {"model": self.model, "port": port, "host": self.host,
                      "python": sys.executable}
            try:
                argv = [part.format(**values) for part in shlex.split(self.command)]
            except (KeyError, IndexError, ValueError) as e:
                raise BackendError(f"bad --vllm-command template {self.command!r} ({e}): use "
                                   "{model}, {port}, {host} and {python}") from e
        else:
            argv = shlex.split(self.command) + [
                self.model, "--host", self.host, "--port", str(port),
                "--enable-prefix-caching"]
        return argv + self.serve_args

    def _resolve_template(self) -> templates.ChatTemplate:
        """vLLM serves a hub id or a directory and keeps what it downloads in the Hugging Face
        cache, so the model's own tokenizer is usually at hand even for a hub id (looked up in
        the cache only: no waiting on a hub that may be unreachable)."""
        found = templates.resolve(**self._template_args)
        if found is None and self.model and not templates.is_model_dir(self.model):
            with contextlib.suppress(BackendError):
                found = templates.tokenizer_template(
                    templates.load_tokenizer(self.model, local_only=True))
        return found or self._server_template()

    # -- the managed server ---------------------------------------------------------------

    def _require_servers(self) -> list[Server]:
        if self.managed:
            self.start()
        return super()._require_servers()

    def start(self) -> str:
        """Start the server and wait until ``/health`` answers 200; idempotent, thread-safe."""
        with self._start_lock:
            if self.process is not None and self.process.poll() is None and self.servers:
                return self.servers[0].url
            port = self.port or free_port(self.host)
            argv = self.command_line(port)
            fd, name = tempfile.mkstemp(prefix="startui-vllm-", suffix=".log")
            self.log_path = Path(name)
            try:
                with os.fdopen(fd, "wb") as log:
                    self.process = subprocess.Popen(
                        argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                        start_new_session=True)
            except OSError as e:
                self.log_path.unlink(missing_ok=True)
                raise BackendError(
                    f"cannot run {shlex.join(argv)!r}: {e}. Install vLLM in its own environment "
                    "(pip install -r requirements-gpu.txt) and pass --vllm-command "
                    "'/path/to/env/bin/vllm serve', or attach to a running server with "
                    "--base-url") from e
            _LIVE[self.process] = self.log_path
            url = f"http://{self.host}:{port}"
            self._wait_ready(url, shlex.join(argv))
            self.servers = [Server(url)]
            return url

    def _wait_ready(self, url: str, shown: str) -> None:
        import httpx

        proc, log = self.process, self.log_path
        assert proc is not None and log is not None
        deadline = time.monotonic() + self.startup_timeout
        while True:
            code = proc.poll()
            if code is not None:
                _LIVE.pop(proc, None)
                raise BackendError(f"`{shown}` exited with code {code} before it was ready. The "
                                   f"end of its log ({log}):\n{_tail(log)}")
            try:
                if httpx.get(url + "/health", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass  # not listening yet
            if time.monotonic() > deadline:
                _stop(proc, keep_log=True)
                raise BackendError(f"`{shown}` was not ready after {self.startup_timeout:.0f} s "
                                   f"(no 200 from {url}/health); it was stopped. The end of its "
                                   f"log ({log}):\n{_tail(log)}")
            time.sleep(0.25)

    # -- protocol -------------------------------------------------------------------------

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        if self.managed:
            await asyncio.to_thread(self.start)
        async with contextlib.aclosing(super().stream(request)) as inner:
            async for chunk in inner:
                yield chunk

    async def close(self) -> None:
        await super().close()
        proc, self.process = self.process, None
        if proc is not None:
            await asyncio.to_thread(_stop, proc)
            if self.managed:
                self.servers = []
