"""Engine overhead: tokens/s through the Hint-infer engine vs the backend stream alone.

Both sides stream the same scripted text (no sleeps), in the same run; the ratio is what the
engine's terminator scanning, hold-back and event emission cost per token. Goal: <= 3 %.

    python bench/bench_engine.py [--tokens 4000] [--repeat 7]
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
from startui.infer.backends.scripted import ScriptedBackend  # noqa: E402
from startui.infer.engine import Engine, EngineConfig  # noqa: E402
from startui.infer.hints import HintPolicy  # noqa: E402


def script(tokens: int) -> str:
    words = ("Let", "me", "think", "about", "the", "problem", "carefully,", "step", "by", "step.")
    paras = []
    for i in range(tokens // 50):
        paras.append(" ".join(words[(i + j) % len(words)] for j in range(50)))
    return "\n\n".join(paras) + " So \\boxed{1}."


async def backend_alone(text: str, delay: float = 0.0) -> float:
    backend = ScriptedBackend([text], delay=delay)
    t = time.perf_counter()
    n = 0
    async for chunk in backend.stream(GenerationRequest("p", stop=["```output"],
                                                        max_tokens=10**9)):
        n += len(chunk.text)
    return time.perf_counter() - t


async def through_engine(text: str, conjunction_p: float, delay: float = 0.0) -> float:
    engine = Engine(ScriptedBackend([text], delay=delay), None,
                    HintPolicy(rounds=0, conjunction_p=conjunction_p, seed=0),
                    EngineConfig(max_tokens=10**9))
    session = engine.start("q")
    t = time.perf_counter()
    async for _ in session.events():
        pass
    return time.perf_counter() - t


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=4000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    text = script(args.tokens)
    n_tokens = len(text.split())
    base, eng = [], []
    for _ in range(args.repeat):
        base.append(await backend_alone(text))
        eng.append(await through_engine(text, 0.0))
    b, e = statistics.median(base), statistics.median(eng)
    print(f"tokens per trajectory        {n_tokens}")
    print(f"backend alone                {n_tokens / b:,.0f} tok/s")
    print(f"through the engine           {n_tokens / e:,.0f} tok/s")
    print(f"engine cost per token        {(e - b) / n_tokens * 1e6:.1f} µs")
    print(f"engine time / backend time   {e / b:.3f}")
    # A model streams at a pace: the same script at 1,000 tok/s (a fast GPU server), both sides.
    paced = script(1000)
    n = len(paced.split())
    pb = statistics.median([await backend_alone(paced, 0.001) for _ in range(3)])
    pe = statistics.median([await through_engine(paced, 0.0, 0.001) for _ in range(3)])
    print(f"paced 1,000 tok/s: backend   {n / pb:,.0f} tok/s")
    print(f"paced 1,000 tok/s: engine    {n / pe:,.0f} tok/s")
    print(f"paced overhead               {(pe / pb - 1) * 100:+.2f} %  (goal <= 3 %)")
    decode = 1 / 25
    print(f"cost vs 25 tok/s CPU decode  {(e - b) / n_tokens / decode * 100:.3f} %")


if __name__ == "__main__":
    asyncio.run(main())
