"""Any OpenAI-compatible completions server: vLLM, SGLang, llama.cpp's server, TGI.

Only ``/v1/completions`` with the raw, chat-templated prompt is used — never the chat endpoint —
because a resume after a hint or a tool output must continue the exact text prefix. Streaming is
server-sent events; closing the stream closes the HTTP response, which is how these servers learn
to abort the request (vLLM and llama.cpp both stop generating when the client goes away).

Several base URLs spread trajectories over several servers (data-parallel vLLM replicas; the
routing is :mod:`startui.infer.backends.replicas`): a request's ``key`` (the trajectory id) keeps
one trajectory on one server so its prefix stays in that server's cache; new keys go to the
least busy server; a server that refuses connections is skipped for a while and the request goes
to the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from startui.infer.backends import templates
from startui.infer.backends.base import BackendError, Chunk, GenerationRequest, chatml
from startui.infer.backends.replicas import Replicas, Server

__all__ = ["OpenAIBackend", "Server", "normalize_url"]

log = logging.getLogger(__name__)


def normalize_url(url: str) -> str:
    """``host:8000``, ``http://host:8000/`` and ``http://host:8000/v1`` all mean the same server."""
    url = url.strip().rstrip("/")
    if not url:
        raise BackendError("an empty --base-url: give the server's address, "
                           "e.g. http://127.0.0.1:8000/v1")
    if "://" not in url:
        url = "http://" + url
    return url[: -len("/v1")] if url.endswith("/v1") else url


def _error_message(body: bytes) -> str:
    """The server's own words: OpenAI ``{"error": {"message"}}``, FastAPI ``detail``, or text."""
    text = body.decode("utf-8", "replace").strip()
    try:
        obj = json.loads(text)
    except ValueError:
        return text[:500] or "(empty body)"
    if isinstance(obj, dict):
        err = obj.get("error", obj)
        if isinstance(err, dict):
            msg = err.get("message") or err.get("detail") or err.get("msg")
            if msg:
                return str(msg)[:500]
        elif err:
            return str(err)[:500]
        if obj.get("detail"):
            return str(obj["detail"])[:500]
    return text[:500]


def _advice(status: int, url: str, model: str) -> str:
    if status in (401, 403):
        return "check the API key (--api-key, env STARTUI_API_KEY or OPENAI_API_KEY)"
    if status == 404:
        return (f"check that {model!r} is the served model name (see {url}/v1/models) and that "
                "the server offers /v1/completions")
    if status in (429, 503):
        return "the server is busy or still starting: retry in a moment"
    if status >= 500:
        return "the server failed: see its log; the trajectory so far is kept, resume to retry"
    return "the server rejected the request"


class OpenAIBackend:
    """Streams ``/v1/completions`` from one or several OpenAI-compatible servers."""

    name = "openai"

    def __init__(self, model: str | None = None, *, base_urls: Sequence[str] | str = (),
                 api_key: str | None = None, chat_template: str | None = None,
                 tokenizer: str | None = None, timeout: float = 600.0,
                 connect_timeout: float = 10.0, include_stop_str_in_output: bool = False,
                 extra_body: dict[str, Any] | None = None) -> None:
        urls = [base_urls] if isinstance(base_urls, str) else list(base_urls)
        urls = [u for url in urls for u in url.split(",") if u.strip()]
        self.servers = [Server(normalize_url(u)) for u in urls]
        # A plain attribute, never a property that might reach the network (isinstance checks
        # against the Backend protocol read it); "" until the server says what it serves.
        self.model: str = model or ""
        self.api_key = api_key or None
        self._template_args = {"chat_template": chat_template, "tokenizer": tokenizer,
                               "model": model}
        self._template: templates.ChatTemplate | None = None
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        # vLLM keeps the matched stop string in the text when asked; llama.cpp ignores the flag.
        # Off by default so every backend hands the engine the same text.
        self.include_stop_str_in_output = include_stop_str_in_output
        self.extra_body = dict(extra_body or {})
        self._replicas = Replicas()
        self._http: Any = None
        self._http_loop: asyncio.AbstractEventLoop | None = None

    # -- configuration --------------------------------------------------------------------

    def _require_servers(self) -> list[Server]:
        if not self.servers:
            raise BackendError(f"the {self.name} backend needs a server: pass --base-url "
                               "http://HOST:PORT/v1 (repeatable; env STARTUI_BASE_URL)")
        return self.servers

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def _served_model(self) -> str:
        """The served model name, from ``/v1/models``, when none was given (vLLM answers 404 to
        a wrong name; llama.cpp ignores it)."""
        import httpx

        url = self._require_servers()[0].url
        try:
            resp = httpx.get(url + "/v1/models", headers=self.headers,
                             timeout=self.connect_timeout)
            resp.raise_for_status()
            return str(resp.json()["data"][0]["id"])
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as e:
            raise BackendError(f"cannot ask {url}/v1/models which model it serves "
                               f"({type(e).__name__}: {e}): is the server running? Or pass "
                               "--model with the served model name") from e

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        """The tokenizer's or the given template; else the server's own (llama.cpp's
        ``/apply-template``); else ChatML, with a warning since it is a guess."""
        if not self.model:  # best effort, so the trajectory records the model it ran on
            with contextlib.suppress(BackendError):
                self.model = self._served_model()
        if self._template is None:
            self._template = self._resolve_template()
        return self._template(messages)

    def _resolve_template(self) -> templates.ChatTemplate:
        return templates.resolve(**self._template_args) or self._server_template()

    def _server_template(self) -> templates.ChatTemplate:
        import httpx

        url = self._require_servers()[0].url + "/apply-template"

        def apply(messages: list[dict[str, str]]) -> str:
            resp = httpx.post(url, json={"messages": messages}, headers=self.headers,
                              timeout=self.timeout)
            resp.raise_for_status()
            return str(resp.json()["prompt"])

        probe = [{"role": "user", "content": "x"}]
        try:
            apply(probe)
            return apply
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            log.warning("no chat template given and %s has none to offer: using ChatML; pass "
                        "--tokenizer DIR or --chat-template FILE for other models", url)
            return chatml

    # -- routing --------------------------------------------------------------------------

    def _pick(self, key: str | None, exclude: Sequence[Server] = ()) -> Server | None:
        return self._replicas.pick(self._require_servers(), key, exclude)

    def _client(self) -> Any:
        """One pooled client per event loop (httpx clients cannot cross loops)."""
        import httpx

        loop = asyncio.get_running_loop()
        if self._http is None or self._http_loop is not loop:
            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout, connect=self.connect_timeout, pool=None),
                limits=httpx.Limits(max_connections=1024, max_keepalive_connections=64))
            self._http_loop = loop
        return self._http

    def _body(self, request: GenerationRequest, model: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model, "prompt": request.prompt, "max_tokens": request.max_tokens,
            "temperature": request.temperature, "top_p": request.top_p, "stream": True}
        if request.stop:
            body["stop"] = list(request.stop)
        if request.seed is not None:
            body["seed"] = request.seed
        if self.include_stop_str_in_output:
            body["include_stop_str_in_output"] = True
        return body | self.extra_body

    # -- protocol -------------------------------------------------------------------------

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        import httpx

        if not self.model:
            self.model = await asyncio.to_thread(self._served_model)
        model = self.model
        body = self._body(request, model)
        client = self._client()
        key = request.key
        server = self._pick(key)
        refused: list[Server] = []
        while server is not None:
            current, url = server, server.url
            current.in_flight += 1
            try:
                async with client.stream("POST", url + "/v1/completions", json=body,
                                         headers=self.headers) as resp:
                    if resp.status_code >= 400:
                        detail = _error_message(await resp.aread())
                        raise BackendError(f"{url} answered HTTP {resp.status_code}: {detail} — "
                                           f"{_advice(resp.status_code, url, model)}")
                    async for chunk in self._events(resp, url):
                        yield chunk
                return
            except (httpx.ConnectError, httpx.ConnectTimeout) as e:
                self._replicas.refused(server)
                refused.append(server)
                log.warning("cannot connect to %s (%s): trying another server", url, e)
                server = self._pick(key, exclude=refused)
            except httpx.TimeoutException as e:
                raise BackendError(f"{url} sent nothing for {self.timeout:.0f} s "
                                   f"({type(e).__name__}): the server is stuck or overloaded; "
                                   "the trajectory so far is kept, resume to retry") from e
            except httpx.HTTPError as e:
                raise BackendError(f"the connection to {url} broke mid-stream "
                                   f"({type(e).__name__}: {e}): the server may have crashed or "
                                   "restarted; the trajectory so far is kept, resume to "
                                   "continue") from e
            finally:
                current.in_flight -= 1
        urls = ", ".join(s.url for s in refused)
        raise BackendError(f"cannot connect to {urls}: is the server running? Start one "
                           "(e.g. `vllm serve MODEL`) or fix --base-url")

    async def _events(self, resp: Any, url: str) -> AsyncIterator[Chunk]:
        """Server-sent events → chunks. Token counts: one per text event, corrected by the
        server's ``usage`` when it sends one."""
        counted = 0
        finished = False
        async for line in resp.aiter_lines():
            if not line or line.startswith(":") or line.startswith(("event:", "id:", "retry:")):
                continue
            if not line.startswith("data:"):
                raise BackendError(f"{url} sent something that is not a server-sent event: "
                                   f"{line[:200]!r}; is this an OpenAI-compatible server?")
            data = line[5:].strip()
            if data == "[DONE]":
                break
            try:
                obj = json.loads(data)
                if not isinstance(obj, dict):
                    raise ValueError("not an object")
            except ValueError as e:
                raise BackendError(f"{url} sent a malformed event ({e}): {data[:200]!r}") from e
            if obj.get("error"):
                raise BackendError(f"{url} reported an error mid-stream: "
                                   f"{_error_message(data.encode())}")
            choices = obj.get("choices") or []
            if finished or not choices:
                continue  # e.g. vLLM's trailing usage-only event
            choice = choices[0]
            text = choice.get("text") or ""
            reason = choice.get("finish_reason")
            if not reason:
                if text:
                    counted += 1
                    yield Chunk(text)
                continue
            if reason in ("abort", "error"):  # vLLM: the engine dropped the request
                raise BackendError(f"{url} aborted the request (finish_reason {reason!r}): the "
                                   "server may be overloaded or restarting; resume to retry")
            usage = obj.get("usage") or {}
            done = usage.get("completion_tokens")
            tokens = max(0, int(done) - counted) if isinstance(done, int) else int(bool(text))
            finished = True
            yield Chunk(text, finish_reason="length" if reason == "length" else "stop",
                        tokens=tokens)
        if not finished:
            raise BackendError(f"{url} ended the stream before the completion finished: the "
                               "server may have crashed or restarted; the trajectory so far is "
                               "kept, resume to continue")

    async def close(self) -> None:
        http, self._http = self._http, None
        if http is not None and self._http_loop is asyncio.get_running_loop():
            await http.aclose()
        self._http_loop = None

