"""A real HTTP server on loopback whose answers a test scripts: server-sent events, HTTP
errors, a stream that dies half-way, a stream that never ends (to see the client hang up).

It speaks just enough HTTP/1.1 for httpx: one request per connection, chunked responses.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


Handler = Callable[["Reply", Request], Awaitable[None]]


def event(text: str = "", finish: str | None = None, **extra: Any) -> dict[str, Any]:
    """One ``/v1/completions`` stream event as vLLM and llama.cpp send it."""
    return {"object": "text_completion",
            "choices": [{"index": 0, "text": text, "finish_reason": finish}], **extra}


class Reply:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer

    async def status(self, code: int, body: Any, content_type: str = "application/json") -> None:
        data = (json.dumps(body) if not isinstance(body, str) else body).encode()
        self.writer.write(f"HTTP/1.1 {code} X\r\nContent-Type: {content_type}\r\nContent-Length: "
                          f"{len(data)}\r\nConnection: close\r\n\r\n".encode() + data)
        await self.writer.drain()

    async def start_stream(self) -> None:
        self.writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                          b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        await self.writer.drain()

    async def raw(self, text: str) -> None:
        data = text.encode()
        self.writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        await self.writer.drain()

    async def send(self, obj: Any) -> None:
        await self.raw(f"data: {obj if isinstance(obj, str) else json.dumps(obj)}\n\n")

    async def end_stream(self) -> None:
        self.writer.write(b"0\r\n\r\n")
        await self.writer.drain()

    def drop(self) -> None:
        """Die mid-response: close the socket without ending the chunked body."""
        self.writer.transport.abort()


async def sse(reply: Reply, events: list[Any], done: bool = True) -> None:
    await reply.start_stream()
    for e in events:
        await reply.send(e)
    if done:
        await reply.send("[DONE]")
    await reply.end_stream()


@dataclass
class FakeServer:
    handler: Handler
    requests: list[Request] = field(default_factory=list)
    hung_up: asyncio.Event = field(default_factory=asyncio.Event)
    _server: asyncio.AbstractServer | None = None
    url: str = ""

    async def __aenter__(self) -> FakeServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode()
            lines = head.split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, v in
                       (line.split(":", 1) for line in lines[1:] if ":" in line)}
            raw = await reader.readexactly(int(headers.get("content-length", 0)))
            body = json.loads(raw) if raw else None
            request = Request(method, path, headers, body)
            self.requests.append(request)
            await self.handler(Reply(writer), request)
        except (ConnectionError, asyncio.IncompleteReadError):
            self.hung_up.set()  # the client went away
        except Exception as e:  # noqa: BLE001 - a handler's bug shows up as a 500
            await Reply(writer).status(500, {"error": {"message": f"fake server: {e!r}"}})
        finally:
            writer.close()


async def forever(reply: Reply, request: Request) -> None:
    """Streams tokens until the client hangs up (what a long generation looks like)."""
    await reply.start_stream()
    n = 0
    while True:
        await reply.send(event(f" {n}"))
        n += 1
        await asyncio.sleep(0.02)
