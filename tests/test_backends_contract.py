"""One contract, every backend available offline: the same suite runs against each.

scripted (a deterministic stand-in), transformers (a tiny model built here and loaded through
``from_pretrained``), llamacpp (the embedded model) and openai (the embedded llama.cpp server over
real HTTP — the API vLLM speaks). Outputs are not known in advance for real models, so the
tests derive what to expect from a first greedy run: a stop string is a piece of that output,
a resume continues from a piece of it.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from startui.infer.backends.base import Backend, BackendError, Chunk, GenerationRequest, chatml
from startui.infer.engine import Engine, EngineConfig
from startui.infer.hints import HintPolicy

MESSAGES = [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Count from 1 to 100, separated by commas."}]
COUNT = ", ".join(str(i) for i in range(1, 101))


def continue_count(prompt: str) -> str:
    """The scripted 'model': it knows one text and continues it from wherever the prompt ends,
    so a resume after part of its output gives the rest (as a greedy model would)."""
    for k in range(len(COUNT), 0, -1):
        if prompt.endswith(COUNT[:k]):
            return COUNT[k:]
    return COUNT


@dataclass
class Case:
    backend: Backend
    error_request: Callable[[], tuple[Backend, GenerationRequest]]
    stopped: Callable[[Backend], None] = lambda b: None  # asserts a cancelled run really ended
    cut: Callable[[str, list[Chunk]], int] = lambda prompt, chunks: len(chunks) // 2
    exact_resume: bool = False
    rerun_within: float = 5.0  # seconds a short request may take right after a cancel


@pytest.fixture(scope="module")
async def hf(tiny_dir):
    from startui.infer.backends.hf import TransformersBackend

    b = TransformersBackend(str(tiny_dir), device="cpu")
    await asyncio.to_thread(b.load)
    yield b
    await b.close()


@pytest.fixture(scope="module")
async def openai_backend(llama):
    from startui.infer.backends.openai import OpenAIBackend

    b = OpenAIBackend(base_urls=[llama.base_url + "/v1"])
    yield b
    await b.close()


def _hf_cut(backend) -> Callable[[str, list[Chunk]], int]:
    """A cut where the resumed prompt tokenizes into exactly the tokens generated: a random
    model's tokens need not be the tokenizer's own split, and then no backend could continue
    identically (all of them re-tokenize the prompt)."""
    def cut(prompt: str, chunks: list[Chunk]) -> int:
        tok = backend.tokenizer
        base = tok(prompt, add_special_tokens=False)["input_ids"]
        gen: list[int] = []
        best = 0
        for j, chunk in enumerate(chunks[:-1], 1):
            ids = tok(chunk.text, add_special_tokens=False)["input_ids"]
            if len(ids) != 1:
                break
            gen.append(ids[0])
            text = prompt + "".join(c.text for c in chunks[:j])
            if j >= 3 and tok(text, add_special_tokens=False)["input_ids"] == base + gen:
                best = j
                if j >= len(chunks) // 2:
                    break
        assert best, "no cut of the tiny model's output re-tokenizes into its own tokens"
        return best
    return cut


def _hf_stopped(backend) -> None:
    backend.thread.join(1.0)
    assert not backend.thread.is_alive(), "the generation thread still runs after the cancel"


def _scripted_stopped(backend) -> None:
    assert backend.cancelled >= 1


def _too_long(backend: Backend, words: int) -> Callable[[], tuple[Backend, GenerationRequest]]:
    return lambda: (backend, GenerationRequest("hello " * words, max_tokens=4, temperature=0))


REAL = [pytest.param("llamacpp", marks=pytest.mark.model),
        pytest.param("openai", marks=pytest.mark.model)]


@pytest.fixture(params=["scripted", "transformers", *REAL])
def case(request) -> Case:
    from startui.infer.backends.scripted import ScriptedBackend

    if request.param == "scripted":
        b = ScriptedBackend([continue_count] * 50)
        return Case(b, lambda: (ScriptedBackend([COUNT], fail_after=3),
                                GenerationRequest("x", temperature=0)),
                    stopped=_scripted_stopped, rerun_within=0.5)
    if request.param == "transformers":
        b = request.getfixturevalue("hf")
        return Case(b, _too_long(b, 3000), stopped=_hf_stopped, cut=_hf_cut(b),
                    exact_resume=True, rerun_within=2.0)
    b = request.getfixturevalue("llama" if request.param == "llamacpp" else "openai_backend")
    return Case(b, _too_long(b, 6000))


async def collect(backend: Backend, request: GenerationRequest) -> list[Chunk]:
    return [c async for c in backend.stream(request)]


def text_of(chunks: list[Chunk]) -> str:
    return "".join(c.text for c in chunks)


def prompt_of(case: Case) -> str:
    return case.backend.chat_prompt(MESSAGES)


async def test_chat_prompt_is_the_same_bytes_everywhere(case):
    assert await asyncio.to_thread(case.backend.chat_prompt, MESSAGES) == chatml(MESSAGES)


async def test_stream_yields_text_and_ends_with_a_finish_reason(case):
    chunks = await collect(case.backend, GenerationRequest(prompt_of(case), max_tokens=12,
                                                           temperature=0))
    assert text_of(chunks).strip()
    assert all(c.finish_reason is None for c in chunks[:-1])
    assert chunks[-1].finish_reason in ("stop", "length")


async def test_max_tokens_ends_with_length(case):
    chunks = await collect(case.backend, GenerationRequest(prompt_of(case), max_tokens=5,
                                                           temperature=0))
    assert chunks[-1].finish_reason == "length"
    assert sum(c.tokens for c in chunks) == 5


async def test_a_stop_string_cuts_the_output_before_it(case):
    prompt = prompt_of(case)
    full = text_of(await collect(case.backend, GenerationRequest(prompt, max_tokens=30,
                                                                 temperature=0)))
    stop = next(full[i:i + 3] for i in range(len(full) // 2, len(full) - 3)
                if full.find(full[i:i + 3]) > 0 and full[i:i + 3].strip())
    chunks = await collect(case.backend, GenerationRequest(prompt, stop=[stop], max_tokens=30,
                                                           temperature=0))
    assert text_of(chunks) == full[:full.find(stop)]
    assert chunks[-1].finish_reason == "stop"


async def test_cancel_mid_stream_stops_promptly(case):
    prompt = prompt_of(case)
    stream = case.backend.stream(GenerationRequest(prompt, max_tokens=1500, temperature=0))
    got = 0
    async for _ in stream:
        got += 1
        if got == 3:
            break
    await stream.aclose()
    started = time.perf_counter()
    case.stopped(case.backend)
    chunks = await collect(case.backend, GenerationRequest(prompt, max_tokens=2, temperature=0))
    assert chunks[-1].finish_reason == "length"
    # A request still generating would hold the (single) slot for many seconds.
    assert time.perf_counter() - started < case.rerun_within


async def test_resume_after_appended_text_continues_from_it(case):
    prompt = prompt_of(case)
    chunks = await collect(case.backend, GenerationRequest(prompt, max_tokens=24,
                                                           temperature=0))
    full = text_of(chunks)
    head = text_of(chunks[:case.cut(prompt, chunks)])
    rest = full[len(head):]
    more = text_of(await collect(case.backend, GenerationRequest(prompt + head, max_tokens=8,
                                                                 temperature=0)))
    assert more
    if case.exact_resume:
        assert rest.startswith(more), (head, rest, more)
    else:
        same = os.path.commonprefix([rest, more])
        assert len(same) >= min(8, len(rest), len(more)), (head, rest, more)


async def test_errors_surface_as_backend_errors_and_the_backend_goes_on(case):
    backend, bad = case.error_request()
    with pytest.raises(BackendError) as err:
        await collect(backend, bad)
    assert str(err.value)
    chunks = await collect(case.backend, GenerationRequest(prompt_of(case), max_tokens=3,
                                                           temperature=0))
    assert chunks[-1].finish_reason == "length"


async def test_the_engine_runs_a_trajectory_through_it(case, pool):
    engine = Engine(case.backend, pool, HintPolicy(rounds=0),
                    EngineConfig(max_tokens=24, temperature=0.0, seed=0))
    traj = await engine.run("Count from 1 to 100, separated by commas.")
    assert traj.status == "finished", traj.error
    assert traj.text().startswith(traj.prompt) and len(traj.text()) > len(traj.prompt)
    assert 0 < traj.tokens <= 24


CODE_SCRIPT = ["I will check with Python.\n```python\nprint(12345 * 6789)\n```\n```output\n1\n```",
               "So the product is \\boxed{83810205}."]


@pytest.fixture(params=["scripted", pytest.param("openai", marks=pytest.mark.model)])
def code_writer(request) -> Backend:
    from startui.infer.backends.scripted import ScriptedBackend

    if request.param == "scripted":
        return ScriptedBackend(CODE_SCRIPT)
    return request.getfixturevalue("openai_backend")


async def test_the_same_trajectory_shape_code_cut_at_its_fence_and_run(code_writer, pool):
    """A model that writes code (the tiny random one cannot; the embedded model does it through
    llamacpp in test_llamacpp.py, here over HTTP): the closing fence arrives in the text, the
    engine cuts there, the kernel runs the code and its output goes back in."""
    engine = Engine(code_writer, pool, HintPolicy(rounds=0),
                    EngineConfig(max_tokens=72, temperature=0.0, seed=0))
    traj = await engine.run("Compute 12345 * 6789 with one short Python code block.")
    assert traj.status == "finished", traj.error
    kinds = [s.kind for s in traj.segments]
    assert "code" in kinds, kinds
    code = kinds.index("code")
    assert kinds[code + 1] == "output" and traj.segments[code + 1].source == "kernel"
    assert "83810205" in traj.segments[code + 1].text
    assert "```python\n" + traj.segments[code].text + "\n```\n```output\n" in traj.text()
