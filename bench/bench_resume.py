"""Time to first token after a hint or a tool output vs a cold prompt, on the embedded model.

A resume sends the whole prefix again (completion mode); llama.cpp's prompt cache must make it
cost only the new tokens. Baseline, same run: a cold prompt of the same total length (a different
first token defeats the cache).

    python bench/bench_resume.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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


async def ttft(backend: LlamaCppBackend, prompt: str) -> float:
    t = time.perf_counter()
    stream = backend.stream(GenerationRequest(prompt, max_tokens=1, temperature=0))
    async for _ in stream:
        break
    await stream.aclose()
    return time.perf_counter() - t


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    backend = LlamaCppBackend(n_ctx=4096)
    await asyncio.to_thread(backend.load)
    base = backend.chat_prompt([{"role": "user", "content": QUESTION}])
    cold, resumed = [], []
    for i in range(args.repeat):
        salt = f"[run {i}] "  # a fresh prefix: nothing cached
        prefix = base.replace(QUESTION, salt + QUESTION) + TRACE
        cold.append(await ttft(backend, prefix + OUTPUT))  # cold: the whole prompt
        await ttft(backend, prefix)  # the model streamed up to the code block ...
        resumed.append(await ttft(backend, prefix + OUTPUT))  # ... and resumes after the output
    c, r = statistics.median(cold), statistics.median(resumed)
    print(f"prompt tokens (approx)        {len(prefix + OUTPUT) // 4}")
    print(f"cold prompt, first token      {c * 1000:.0f} ms (median of {args.repeat})")
    print(f"resume after tool output      {r * 1000:.0f} ms")
    print(f"resume / cold                 {r / c:.3f}")
    await backend.close()


if __name__ == "__main__":
    asyncio.run(main())
