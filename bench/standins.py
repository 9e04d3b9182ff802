"""Stand-ins for the model, shared by the benchmarks and the tests (the only stand-ins allowed):
a tiny model built offline and a stateless scripted "model" for batch Hint-RFT.

They live here, not in tests/, because a benchmark never imports from tests/; the tests import
them from here (``from bench.standins import …``), so there is one copy.

**A tiny causal LM** that loads through the real ``from_pretrained`` path, built offline. No model
hub is reachable, so the tokenizer is *trained here* (byte-level BPE, Qwen's special tokens, a
ChatML chat template) and the model is a Qwen2 built from a config with random weights, optionally
trained for a few hundred steps on a pseudo-English corpus. Both are saved with
``save_pretrained`` so the transformers backend loads them as it would a downloaded model.

**The scripted Hint-RFT model** answers from the prompt's shape, so any number of batch
trajectories can share it in any order, concurrently. Problems say what to compute:
``Compute 6*7.``. Without a hint the model guesses one too many (wrong), unless the question says
``(easy)``; after a hint opens a python cell it writes ``print(6*7)``; after the kernel's output it
answers with that output. So the greedy baseline is wrong and the hinted trajectory right: the
D_seed case. ``(loop)`` makes it repeat itself, ``(crash)`` leaves a failing cell at the end.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from startui.infer.backends.scripted import ScriptedBackend
from startui.trajectory import Problem

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may reach for a hub

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# The ChatML template as Qwen2.5 ships it, minus tool calls: the same text as base.chatml().
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_WORDS = ("the a an of to is and we it in that for this with as on by be are was can at "
          "python code print def return if else for while import math sum prime number "
          "answer check wait alternatively so let compute result value list range len "
          "think step first then next finally correct approach problem solve equation").split()


def corpus(n_lines: int = 3000, seed: int = 0) -> list[str]:
    """Pseudo-English with code and numbers, so the BPE learns word-ish merges."""
    rng = random.Random(seed)
    lines = []
    for i in range(n_lines):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(4, 14))]
        if i % 5 == 0:
            words.append(f"```python\nprint({rng.randint(0, 999)} + {rng.randint(0, 99)})\n```")
        if i % 7 == 0:
            words.append(", ".join(str(k) for k in range(1, rng.randint(3, 20))))
        lines.append(" ".join(words) + rng.choice([".", "?", "!", ":", "\n"]))
    return lines


def train_tokenizer(vocab_size: int = 600, seed: int = 0):  # -> PreTrainedTokenizerFast
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(corpus(seed=seed), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>",
                                   additional_special_tokens=["<|im_start|>"])
    fast.chat_template = CHATML_TEMPLATE
    return fast


def build_tiny_model(directory: str | os.PathLike[str], *, layers: int = 2, hidden: int = 64,
                     heads: int = 4, kv_heads: int = 2, max_positions: int = 2048,
                     vocab_size: int = 600, seed: int = 0, train_steps: int = 0) -> Path:
    """Save a tokenizer + a random Qwen2ForCausalLM into ``directory`` and return it.

    The lm_head rows of the special tokens and of the byte tokens that are half a character are
    zeroed: their logit is then exactly 0, below the maximum of hundreds of random logits, so
    greedy decoding never ends by chance (tests that want an end of sequence say which token
    ends it) and writes valid text."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(vocab_size=vocab_size, seed=seed)
    tokenizer.save_pretrained(path)
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 4,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
        max_position_embeddings=max_positions, tie_word_embeddings=False,
        bos_token_id=None, eos_token_id=eos,
        pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"))
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    if train_steps:
        _train(model, tokenizer, train_steps, seed)
    else:
        _quiet_specials(model, tokenizer)
    model.generation_config = GenerationConfig(eos_token_id=eos, bos_token_id=None)
    model.save_pretrained(path)
    return path


def _quiet_specials(model, tokenizer) -> None:
    import torch

    with torch.no_grad():
        model.lm_head.weight.mul_(20.0)  # sharper logits: fewer near-ties under greedy
        for token in SPECIAL_TOKENS:
            model.lm_head.weight[tokenizer.convert_tokens_to_ids(token)] = 0.0
        for token_id in range(len(tokenizer)):  # half a UTF-8 character: text stays valid
            if "\ufffd" in tokenizer.decode([token_id]):
                model.lm_head.weight[token_id] = 0.0


def _train(model, tokenizer, steps: int, seed: int, seq: int = 128, batch: int = 16) -> None:
    """Next-token training on the corpus: a few hundred steps make it write word-like text."""
    import torch

    ids = tokenizer(" ".join(corpus(seed=seed + 1)), add_special_tokens=False)["input_ids"]
    data = torch.tensor(ids[: len(ids) // seq * seq]).view(-1, seq)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        rows = data[torch.randint(0, len(data), (batch,), generator=gen)]
        loss = model(input_ids=rows, labels=rows).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


# --- the scripted Hint-RFT model --------------------------------------------------------------

_EXPR = re.compile(r"Compute ([0-9+*\- ()]+)\.")
_OUTPUT = re.compile(r"```output\n(.*?)\n```", re.DOTALL)


def _question(prompt: str) -> str:
    m = re.search(r"<\|im_start\|>user\n(.*?)<\|im_end\|>", prompt, re.DOTALL)
    return m.group(1) if m else ""


_ANCHORS = ("<|im_start|>assistant\n", "```python\n", "```\n")


def _reply(head: str, q: str) -> str:
    """What the model says after ``head``, a prompt that ends at a turn boundary."""
    m = _EXPR.search(q)
    expr = m.group(1) if m else "0"
    value = eval(expr)  # noqa: S307 - the script's own arithmetic
    if head.endswith("```python\n"):  # a hint opened a cell
        if "(crash)" in q:
            return "print(undefined_name)\n```"
        return f"print({expr})\n```"
    if head.endswith("assistant\n"):  # the first request
        if "(loop)" in q:
            return "I keep thinking about the same step again and again and again now. " * 8 + (
                f"\\boxed{{{value}}}")
        guess = value if "(easy)" in q else value + 1
        return f"Let me think about {expr}. It is about {guess}, so \\boxed{{{guess}}}."
    outputs = _OUTPUT.findall(head)
    if outputs:
        last = outputs[-1].strip()
        if "(crash)" in q:
            return "The cell failed, but I am sure: \\boxed{" + str(value) + "}."
        return f"The kernel says {last}, so the answer is \\boxed{{{last}}}."
    return "So \\boxed{0}."


def rft_respond(prompt: str) -> str:
    """Stateless: the reply to the last turn boundary of ``prompt``, minus what of it the prompt
    already holds (a trajectory stopped mid-reply resumes with the rest of the same reply)."""
    pos = max(prompt.rfind(a) + len(a) for a in _ANCHORS if a in prompt)
    head, partial = prompt[:pos], prompt[pos:]
    full = _reply(head, _question(prompt))
    return full[len(partial):] if full.startswith(partial) else "So \\boxed{0}."


def rft_backend(delay: float = 0.0) -> ScriptedBackend:
    return ScriptedBackend(respond=rft_respond, delay=delay, model="rft-script")


def rft_problems(n: int, *, source: str = "rft", easy_every: int = 0) -> list[Problem]:
    out = []
    for i in range(n):
        easy = " (easy)" if easy_every and i % easy_every == 0 else ""
        out.append(Problem(question=f"Compute {i + 2}*{i + 3}.{easy}",
                           answer=str((i + 2) * (i + 3)), id=f"{source}:{i}",
                           meta={"source": source, "external_id": str(i)}))
    return out


# --- an OpenAI-compatible completions server with a per-token latency ------------------------

_TOKEN = re.compile(r"\s*\S+|\s+")


_FILLER = ("Let me look at the numbers once more and keep each step small, checking the "
           "arithmetic as I go before I commit to anything. ")


def completions_app(respond: Callable[[str], str], token_delay: float, counter: Any = None,
                    think_words: int = 0):
    """A Starlette app serving ``POST /v1/completions`` (streamed) and ``GET /v1/models``, as
    vLLM does, answering ``respond(prompt)`` one word-token every ``token_delay`` seconds per
    stream (streams do not slow each other: a latency-bound model). ``think_words`` words of
    plain reasoning go before every prose reply (not into code), for trajectories of a
    realistic length. ``counter`` (a shared ``multiprocessing.Value``) counts the tokens sent."""
    filler_words = (_FILLER.split() * (think_words // len(_FILLER.split()) + 1))[:think_words]
    filler = " ".join(filler_words) + " " if think_words else ""
    import asyncio as aio
    import json as js

    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route

    async def models(request):
        return JSONResponse({"object": "list", "data": [{"id": "rft-script", "object": "model"}]})

    async def completions(request):
        body = await request.json()
        text = respond(body["prompt"])
        if not body["prompt"].endswith("```python\n"):
            text = filler + text
        stops = [s for s in body.get("stop") or [] if s]
        cut = min((text.find(s) for s in stops if s in text), default=-1)
        finish = "stop"
        if cut >= 0:
            text = text[:cut]

        async def events():
            # one token every token_delay from the request's start, by deadline: a late wake-up
            # (two cores shared with the client under test) does not push every later token
            start = aio.get_running_loop().time()
            for i, tok in enumerate(_TOKEN.findall(text), 1):
                await aio.sleep(max(0.0, start + i * token_delay - aio.get_running_loop().time()))
                if counter is not None:
                    with counter.get_lock():
                        counter.value += 1
                chunk = {"object": "text_completion",
                         "choices": [{"index": 0, "text": tok, "finish_reason": None}]}
                yield f"data: {js.dumps(chunk)}\n\n"
            end = {"object": "text_completion",
                   "choices": [{"index": 0, "text": "", "finish_reason": finish}]}
            yield f"data: {js.dumps(end)}\n\ndata: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/models", models),
                             Route("/v1/completions", completions, methods=["POST"])])


def serve_completions(port: int, token_delay: float, counter: Any = None,
                      think_words: int = 0) -> None:
    """Run :func:`completions_app` over :func:`rft_respond` on 127.0.0.1:``port`` (a process
    target: the server takes its own core, as a model server would)."""
    import uvicorn

    uvicorn.run(completions_app(rft_respond, token_delay, counter, think_words),
                host="127.0.0.1", port=port, log_level="warning", access_log=False)
