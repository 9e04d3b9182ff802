"""Time to first token after a hint or a tool output vs a cold prompt, on the embedded model.

A resume sends the whole prefix again (completion mode); llama.cpp's prompt cache must make it
cost only the new tokens. Baseline, same run: a cold prompt of the same total length.

Every measurement, cold or resumed, starts a new conversation whose question opens with a line
holding a fresh random nonce, so no earlier request (the slot's own cache, or llama.cpp's host-RAM
prompt cache) holds any of its text past the chat template's fixed head. llama.cpp reports how
many prompt tokens it took from its cache; the figures show them, so "cold" is checked to be cold.

    python bench/bench_resume.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from startui.infer.backends import llamacpp  # noqa: E402
from startui.infer.backends.base import GenerationRequest  # noqa: E402
from startui.infer.backends.llamacpp import LlamaCppBackend  # noqa: E402

QUESTION = "What is the sum of all primes below 1000? Use Python to check."
TRACE = (
    "To find the sum of all primes below 1000, I will use a sieve.\n\n```python\n"
    "def primes(n):\n    sieve = [True] * n\n    sieve[0] = sieve[1] = False\n"
    "    for i in range(2, int(n ** 0.5) + 1):\n        if sieve[i]:\n"
    "            sieve[i*i::i] = [False] * len(sieve[i*i::i])\n"
    "    return [i for i, p in enumerate(sieve) if p]\nprint(sum(primes(1000)))\n```\n"
)
OUTPUT = "```output\n76127\n```\n"


@dataclass
class Measure:
    seconds: float  # request sent -> first token
    prompt_tokens: int  # the whole prompt, as llama.cpp tokenized it
    cached_tokens: int  # of those, taken from the prompt cache (not evaluated)


_usage: list[dict] = []  # the final chunk's usage of each request, as llama.cpp reports it
_parse = llamacpp._chunk


def _watch(raw: str):
    """The backend's own chunk parser, also keeping llama.cpp's token counts."""
    data = json.loads(raw)
    if "usage" in data:
        _usage.append(data["usage"])
    return _parse(raw)


llamacpp._chunk = _watch


async def first_token(backend: LlamaCppBackend, prompt: str) -> Measure:
    _usage.clear()
    t = time.perf_counter()
    seconds = None
    async for _ in backend.stream(GenerationRequest(prompt, max_tokens=1, temperature=0)):
        if seconds is None:
            seconds = time.perf_counter() - t
    usage = _usage[-1]  # the stream ran to its end (one token), so its usage came
    return Measure(seconds, usage["prompt_tokens"],
                   (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0))


def conversation(backend: LlamaCppBackend) -> str:
    """A new conversation: the question opens with a line no request has sent before."""
    question = f"(request {secrets.token_hex(8)})\n{QUESTION}"
    return backend.chat_prompt([{"role": "user", "content": question}]) + TRACE


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    backend = LlamaCppBackend(n_ctx=4096)
    await asyncio.to_thread(backend.load)
    await first_token(backend, conversation(backend) + OUTPUT)  # warm-up: weights paged in
    cold, resumed = [], []
    for _ in range(args.repeat):
        # cold: the whole prompt of a conversation nobody has seen
        cold.append(await first_token(backend, conversation(backend) + OUTPUT))
        # resume: another new conversation streams up to its code block (the model "wrote" it),
        # then the same prefix comes back with the kernel's output appended
        prefix = conversation(backend)
        await first_token(backend, prefix)
        resumed.append(await first_token(backend, prefix + OUTPUT))
    c = statistics.median(m.seconds for m in cold)
    r = statistics.median(m.seconds for m in resumed)
    n = cold[0].prompt_tokens
    print(f"prompt tokens                  {n} (cold and resumed alike)")
    print(f"cold prompt, first token       {c * 1000:.0f} ms (median of {args.repeat}); "
          f"taken from the cache: {max(m.cached_tokens for m in cold)} tokens at most "
          "(the chat template's fixed head)")
    print(f"resume after tool output       {r * 1000:.0f} ms; taken from the cache: "
          f"{min(m.cached_tokens for m in resumed)} tokens at least, so "
          f"{n - min(m.cached_tokens for m in resumed)} evaluated")
    print(f"resume / cold                  {r / c:.3f}")
    await backend.close()


if __name__ == "__main__":
    asyncio.run(main())
