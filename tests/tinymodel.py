"""A tiny causal LM that loads through the real ``from_pretrained`` path, built offline.

No model hub is reachable, so the tokenizer is *trained here* (byte-level BPE, Qwen's special
tokens, a ChatML chat template) and the model is a Qwen2 built from a config with random weights.
Both are saved with ``save_pretrained`` so the transformers backend loads them exactly as it
would load a downloaded model directory. Random weights write gibberish, but deterministic
gibberish under greedy decoding, which is all the contract tests need.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

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
