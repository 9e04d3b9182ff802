"""The embedded default model, for real: llama.cpp through xllamacpp on this CPU."""

from __future__ import annotations

import asyncio
import time

import pytest

from startui.infer.backends import embedded
from startui.infer.backends.base import BackendError, GenerationRequest
from startui.infer.backends.llamacpp import LlamaCppBackend
from startui.infer.engine import Engine, EngineConfig
from startui.infer.hints import HintPolicy

pytestmark = pytest.mark.model


@pytest.fixture
def backend(llama):
    return llama


def test_the_embedded_model_is_assembled_and_verified():
    path = embedded.default_model_path()
    assert path.stat().st_size == embedded.SIZE
    with open(path, "rb") as f:
        assert f.read(4) == b"GGUF"


def test_a_corrupt_part_is_a_clear_error(tmp_path, monkeypatch):
    bad = tmp_path / "part.bin"
    bad.write_bytes(b"GGUF" + b"\0" * 100)
    monkeypatch.setattr(embedded, "part_paths", lambda: [bad])
    with pytest.raises(embedded.ModelFileError, match="corrupt.*reinstall"):
        embedded.default_model_path(tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*.gguf"))  # nothing half-written is left


def test_a_missing_model_file_says_what_to_do(tmp_path):
    with pytest.raises(BackendError, match="does not exist"):
        LlamaCppBackend(tmp_path / "nope.gguf").load()
    notgguf = tmp_path / "x.gguf"
    notgguf.write_text("hello")
    with pytest.raises(BackendError, match="not a GGUF"):
        LlamaCppBackend(notgguf).load()


async def test_chat_template_is_the_models_own(backend):
    prompt = await asyncio.to_thread(
        backend.chat_prompt, [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}])
    assert prompt == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n" \
                     "<|im_start|>assistant\n"


async def test_stream_stops_at_a_stop_string_and_cancels_promptly(backend):
    ask = "Count from 1 to 50, comma separated."
    prompt = backend.chat_prompt([{"role": "user", "content": ask}])
    text = ""
    async for chunk in backend.stream(GenerationRequest(prompt, stop=["10"], max_tokens=200,
                                                        temperature=0)):
        text += chunk.text
    assert "9" in text and "10" not in text
    started = time.perf_counter()
    got = 0
    stream = backend.stream(GenerationRequest(prompt, max_tokens=400, temperature=0))
    async for _ in stream:
        got += 1
        if got == 3:
            break
    await stream.aclose()
    # the slot is free again at once: a new request answers quickly
    async for _ in backend.stream(GenerationRequest(prompt, max_tokens=2, temperature=0)):
        pass
    assert time.perf_counter() - started < 5


async def test_end_to_end_the_model_writes_code_that_really_runs(backend, pool):
    engine = Engine(backend, pool, HintPolicy(rounds=1, seed=0),
                    EngineConfig(max_tokens=700, temperature=0.0, seed=0))
    traj = await engine.run("What is the sum of all primes below 1000? Use Python to check.")
    assert traj.status == "finished", traj.error
    pairs = [(a, b) for a, b in zip(traj.segments, traj.segments[1:], strict=False)
             if a.kind == "code" and b.kind == "output"]
    assert pairs, [s.kind for s in traj.segments]
    code, output = pairs[0]
    assert output.source == "kernel" and not output.meta.get("error"), output.text
    # the output is the kernel's: running the model's code again gives the same text
    kernel = await pool.acquire()
    try:
        again = await kernel.execute(code.text)
    finally:
        await pool.release(kernel)
    assert again.text.rstrip("\n") == output.text
    assert "76127" in traj.completion()
