"""The transformers backend on a tiny model built here: KV-cache reuse across resumes, sampling,
end of sequence, and the streaming pieces (detokenizing, stop strings) it does itself."""

from __future__ import annotations

import asyncio

import pytest

from startui.infer.backends import make_backend
from startui.infer.backends.base import BackendError, GenerationRequest
from startui.infer.backends.hf import TransformersBackend
from startui.infer.backends.textstream import Detokenizer, StopMatcher, common_prefix

MESSAGES = [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is the sum of the first ten primes?"}]


@pytest.fixture(scope="module")
async def backend(tiny_dir):
    b = TransformersBackend(str(tiny_dir), device="cpu")
    await asyncio.to_thread(b.load)
    yield b
    await b.close()


@pytest.fixture(scope="module")
async def cold(tiny_dir):
    """The same model without cache reuse: what every request would cost, and the reference a
    cached resume must agree with."""
    b = TransformersBackend(str(tiny_dir), device="cpu", reuse_cache=False)
    await asyncio.to_thread(b.load)
    yield b
    await b.close()


async def run(backend, prompt, **kw):
    kw.setdefault("temperature", 0.0)
    chunks = [c async for c in backend.stream(GenerationRequest(prompt, **kw))]
    return "".join(c.text for c in chunks), chunks


def n_tokens(backend, text):
    return len(backend.tokenizer(text, add_special_tokens=False)["input_ids"])


async def test_a_resume_prefills_only_the_new_tokens(backend, cold):
    p1 = backend.chat_prompt(MESSAGES) + "Let me list them first.\n"
    await run(backend, p1, max_tokens=8)
    p2 = p1 + "```output\n2 3 5 7 11 13 17 19 23 29\n```\n"
    text, _ = await run(backend, p2, max_tokens=12)
    new = n_tokens(backend, p2) - n_tokens(backend, p1)
    assert backend.last_reused_tokens == n_tokens(backend, p1)
    assert backend.last_prefill_tokens == new
    assert (await run(cold, p2, max_tokens=12))[0] == text  # the cache changes nothing
    assert cold.last_prefill_tokens == n_tokens(backend, p2)


async def test_resuming_after_its_own_output_matches_a_cold_run(backend, cold):
    prompt = backend.chat_prompt(MESSAGES)
    generated, _ = await run(backend, prompt, max_tokens=24)
    resume = prompt + generated + "\n\nWait, I can use Python to check.\n```python\n"
    text, _ = await run(backend, resume, max_tokens=16)
    assert backend.last_reused_tokens >= n_tokens(backend, prompt)
    assert backend.last_prefill_tokens < n_tokens(backend, resume) - n_tokens(backend, prompt) + 1
    assert text == (await run(cold, resume, max_tokens=16))[0]


async def test_interleaved_trajectories_each_keep_their_cache(backend):
    a = backend.chat_prompt([{"role": "user", "content": "First problem."}])
    b = backend.chat_prompt([{"role": "user", "content": "A different problem."}])
    out_a, _ = await run(backend, a, max_tokens=6)
    await run(backend, b, max_tokens=6)
    await run(backend, a + out_a + " more", max_tokens=4)
    assert backend.last_reused_tokens >= n_tokens(backend, a)


async def test_chunked_prefill_gives_the_same_text(tiny_dir, backend):
    prompt = backend.chat_prompt(MESSAGES) * 3
    small = TransformersBackend(str(tiny_dir), device="cpu", prefill_chunk=7)
    try:
        assert (await run(small, prompt, max_tokens=16))[0] == \
            (await run(backend, prompt, max_tokens=16))[0]
    finally:
        await small.close()


async def test_sampling_follows_seed_temperature_and_top_p(backend):
    prompt = backend.chat_prompt(MESSAGES)
    one, _ = await run(backend, prompt, max_tokens=24, temperature=1.0, seed=1)
    assert one == (await run(backend, prompt, max_tokens=24, temperature=1.0, seed=1))[0]
    assert one != (await run(backend, prompt, max_tokens=24, temperature=1.0, seed=2))[0]
    greedy, _ = await run(backend, prompt, max_tokens=24)
    assert one != greedy
    nucleus, _ = await run(backend, prompt, max_tokens=24, temperature=1.0, top_p=1e-9, seed=5)
    assert nucleus == greedy  # a nucleus of one token is the argmax


async def test_end_of_sequence_stops_without_its_text(backend):
    prompt = backend.chat_prompt(MESSAGES)
    text, chunks = await run(backend, prompt, max_tokens=12)
    ids = backend.tokenizer(chunks[4].text, add_special_tokens=False)["input_ids"]
    assert len(ids) == 1
    saved = set(backend.eos_token_ids)
    backend.eos_token_ids.add(ids[0])  # as if the model's EOS were this token
    try:
        cut, cut_chunks = await run(backend, prompt, max_tokens=12)
    finally:
        backend.eos_token_ids = saved
    assert cut == "".join(c.text for c in chunks[:4])
    assert cut_chunks[-1].finish_reason == "stop"
    assert sum(c.tokens for c in cut_chunks) == 5  # the EOS counts as generated


async def test_loading_errors_say_what_to_do(tmp_path):
    with pytest.raises(BackendError, match="needs --model"):
        TransformersBackend("")
    with pytest.raises(BackendError, match="cannot load the tokenizer"):
        await asyncio.to_thread(TransformersBackend(str(tmp_path / "missing")).load)
    with pytest.raises(BackendError, match="no CUDA GPU"):
        await asyncio.to_thread(TransformersBackend(str(tmp_path), device="cuda").load)


def test_make_backend_passes_the_flags(tiny_dir):
    b = make_backend("transformers", str(tiny_dir), device="cpu", tokenizer=str(tiny_dir),
                     base_urls=["http://ignored:1"])
    assert isinstance(b, TransformersBackend) and b.device_request == "cpu"
    b.load()
    assert b.device == "cpu" and b.hf_model.device.type == "cpu"


# -- streaming text out of tokens ----------------------------------------------------------

def test_the_detokenizer_never_emits_half_a_character(backend):
    tok = backend.tokenizer
    text = "naïve café → 😀 done"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert len(ids) > len(text.split())  # byte-level pieces: some tokens are half a character
    detok = Detokenizer(tok)
    pieces = [detok.add(i) for i in ids]
    assert "".join(pieces) + detok.flush() == text
    assert not any("\ufffd" in p for p in pieces)


def test_the_detokenizer_gives_up_on_invalid_bytes_instead_of_stalling(backend):
    tok = backend.tokenizer
    stray = tok("😀", add_special_tokens=False)["input_ids"][-1:]  # a lone continuation byte
    detok = Detokenizer(tok)
    pieces = [detok.add(stray[0]) for _ in range(6)]
    assert "".join(pieces) + detok.flush()  # shown as U+FFFD, never held forever


def test_stop_strings_are_cut_and_nothing_past_them_is_emitted():
    m = StopMatcher(["```output"])
    assert m.feed("ab") == ("ab", False)
    assert m.feed("c```out") == ("c", False)  # "```out" may be the stop: held back
    assert m.feed("put\nx") == ("", True)
    m = StopMatcher(["```output"])
    assert m.feed("x```") == ("x", False)
    assert m.feed("py") == ("```py", False)  # it was not the stop after all
    m = StopMatcher(["END", "ST"])
    assert m.feed("aSTbEND") == ("a", True)  # the earliest stop wins
    m = StopMatcher(["```output"])
    assert m.feed("tail```") == ("tail", False)
    assert m.flush() == "```"  # the end of the stream releases what was held


def test_common_prefix():
    assert common_prefix("abcdef", "abcxyz") == 3
    assert common_prefix("abc", "abc") == 3
    assert common_prefix("", "abc") == 0
    assert common_prefix("x" * 10_000 + "a", "x" * 10_000 + "b") == 10_000
