"""Backends: what a resume costs the transformers backend, and what the openai client costs.

1. transformers, KV-cache reuse. A trajectory runs: a cold prompt, the model writes, a tool
   output is appended, the model resumes. With reuse, only the tokens the cache lacks are
   prefilled; the baseline is the same backend without reuse (every token prefilled), and the
   time to first token of the resume is compared with a cold prompt of the same total length.
   Models are built from a config and trained briefly here (no hub): a trained model writes
   tokens the way its tokenizer splits text, as real models do.
2. openai client overhead. The same local server (the embedded llama.cpp, over HTTP) is read
   by the backend and by a plain httpx loop, alternately, same run; then both read a local
   server that streams pre-built events as fast as it can, which isolates the client's cost
   per token.

    python bench/bench_backends.py [--repeat 5] [--skip-llama]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from startui.infer.backends.base import GenerationRequest  # noqa: E402
from startui.infer.backends.openai import OpenAIBackend  # noqa: E402

PROBLEM = ("Let S be the sum of all primes below 1000 and T the number of them. Compute S, T and "
           "the average of those primes, then check every step with Python. ") * 16
TOOL_OUTPUT = ("\n```output\nS = 76127\nT = 168\naverage = 453.1369047619048\nchecked: True\n"
               "```\n")
MODELS = {"tiny (2 layers, hidden 64)": dict(layers=2, hidden=64),
          "small (4 layers, hidden 256)": dict(layers=4, hidden=256, heads=4, kv_heads=2)}


def count(backend, text: str) -> int:
    return len(backend.tokenizer(text, add_special_tokens=False)["input_ids"])


async def collect(backend, prompt: str, max_tokens: int) -> tuple[str, int]:
    request = GenerationRequest(prompt, max_tokens=max_tokens, temperature=0)
    chunks = [c async for c in backend.stream(request)]
    return "".join(c.text for c in chunks), sum(c.tokens for c in chunks)


async def bench_transformers(repeat: int, train_steps: int) -> list[tuple[str, str]]:
    from standins import build_tiny_model

    from startui.infer.backends.hf import TransformersBackend

    rows: list[tuple[str, str]] = []
    for label, shape in MODELS.items():
        directory = Path(tempfile.mkdtemp(prefix="bench-hf-"))
        started = time.perf_counter()
        build_tiny_model(directory, train_steps=train_steps, max_positions=4096, **shape)
        built = time.perf_counter() - started
        reuse = TransformersBackend(str(directory), device="cpu")
        cold = TransformersBackend(str(directory), device="cpu", reuse_cache=False)
        prefilled, appended, warm_ttft, cold_ttft, total, lost = [], [], [], [], [], []
        for i in range(repeat + 1):  # the first round warms up torch
            prompt = reuse.chat_prompt([{"role": "user", "content": f"[{i}] " + PROBLEM}])
            written, tokens = await collect(reuse, prompt, 48)
            cached = reuse.last_prompt_tokens + tokens - 1  # the last one written is never fed
            resume = prompt + written + TOOL_OUTPUT
            await collect(reuse, resume, 1)
            await collect(cold, resume, 1)
            if i:
                prefilled.append(reuse.last_prefill_tokens)
                appended.append(count(reuse, resume) - count(reuse, prompt + written))
                warm_ttft.append(reuse.last_first_token_s)
                cold_ttft.append(cold.last_first_token_s)
                total.append(cold.last_prefill_tokens)
                lost.append(cached - reuse.last_reused_tokens)
        await reuse.close()
        await cold.close()
        w, c = statistics.median(warm_ttft), statistics.median(cold_ttft)
        rows += [
            (f"{label}: built + trained {train_steps} steps", f"{built:.1f} s"),
            (f"{label}: resume prompt", f"{statistics.median(total):.0f} tokens"),
            (f"{label}: prefilled on resume, cache reuse",
             f"{statistics.median(prefilled):.0f} tokens (new text: "
             f"{statistics.median(appended):.0f} tokens; written tokens that re-tokenize "
             f"differently: {statistics.median(lost):.0f})"),
            (f"{label}: prefilled on resume, no reuse", f"{statistics.median(total):.0f} tokens"),
            (f"{label}: first token after the resume",
             f"{w * 1000:.1f} ms vs {c * 1000:.1f} ms cold, same length — **{w / c:.3f} ×**"),
        ]
    return rows


# -- openai client overhead ----------------------------------------------------------------

async def raw_httpx(client, url: str, body: dict) -> tuple[str, int]:
    """The least a client can do: read the SSE lines and pull the text out."""
    text, n = [], 0
    async with client.stream("POST", url + "/v1/completions", json=body) as resp:
        async for line in resp.aiter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                choice = json.loads(line[6:])["choices"][0]
                if choice.get("text"):
                    text.append(choice["text"])
                    n += 1
    return "".join(text), n


async def via_backend(backend: OpenAIBackend, body: dict) -> tuple[str, int]:
    request = GenerationRequest(body["prompt"], max_tokens=body["max_tokens"], temperature=0)
    text, n = [], 0
    async for chunk in backend.stream(request):
        text.append(chunk.text)
        n += bool(chunk.text)
    return "".join(text), n


async def compare(url: str, body: dict, repeat: int) -> tuple[float, float, int]:
    import httpx

    backend = OpenAIBackend("bench", base_urls=url)
    raw_t, api_t, tokens = [], [], 0
    async with httpx.AsyncClient(timeout=600) as client:
        await raw_httpx(client, url, body)  # warm both paths
        await via_backend(backend, body)
        for _ in range(repeat):
            t = time.perf_counter()
            text_raw, tokens = await raw_httpx(client, url, body)
            raw_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            text_api, _ = await via_backend(backend, body)
            api_t.append(time.perf_counter() - t)
            assert text_api == text_raw, "the backend and plain httpx read different text"
    await backend.close()
    return statistics.median(raw_t), statistics.median(api_t), tokens


async def firehose_server(events: int) -> tuple[asyncio.AbstractServer, str]:
    """Streams ``events`` pre-built completion events per request, as fast as the socket goes."""
    one = json.dumps({"choices": [{"text": " tok", "index": 0, "finish_reason": None}]})
    last = json.dumps({"choices": [{"text": "", "index": 0, "finish_reason": "length"}]})
    payload = (f"data: {one}\n\n" * events + f"data: {last}\n\ndata: [DONE]\n\n").encode()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length"))
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: "
                     + str(len(payload)).encode() + b"\r\nConnection: close\r\n\r\n" + payload)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def bench_openai(repeat: int, skip_llama: bool) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    events = 20_000
    server, url = await firehose_server(events)
    raw, api, n = await compare(url, {"prompt": "p", "max_tokens": events}, repeat)
    server.close()
    rows += [
        (f"local event firehose, {n:,} tokens: plain httpx", f"{raw / n * 1e6:.1f} µs per token"),
        ("the same through the openai backend",
         f"{api / n * 1e6:.1f} µs per token — **+{(api - raw) / n * 1e6:.1f} µs** "
         f"({api / raw:.2f} ×)"),
    ]
    if not skip_llama:
        from startui.infer.backends.llamacpp import LlamaCppBackend

        llama = LlamaCppBackend(n_ctx=2048)
        await asyncio.to_thread(llama.load)
        prompt = llama.chat_prompt([{"role": "user", "content": "Count from 1 to 40."}])
        body = {"prompt": prompt, "max_tokens": 64, "temperature": 0, "stream": True}
        raw, api, n = await compare(llama.base_url, body, repeat)
        await llama.close()
        rows += [
            (f"embedded llama.cpp over HTTP, {n} tokens: plain httpx",
             f"{raw * 1000:.0f} ms ({n / raw:.1f} tok/s)"),
            ("the same through the openai backend",
             f"{api * 1000:.0f} ms — **{api / raw:.3f} ×**, "
             f"{(api - raw) / n * 1000:+.2f} ms per token"),
        ]
    return rows


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--train-steps", type=int, default=150)
    ap.add_argument("--skip-llama", action="store_true", help="no embedded-model comparison")
    args = ap.parse_args()
    rows = await bench_transformers(args.repeat, args.train_steps)
    rows += await bench_openai(args.repeat, args.skip_llama)
    print("| what | figure |\n|---|---|")
    for what, figure in rows:
        print(f"| {what} | {figure} |")


if __name__ == "__main__":
    asyncio.run(main())
