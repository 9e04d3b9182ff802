"""transformers, in-process: any ``AutoModelForCausalLM`` directory, on the CPU or a GPU.

A manual decode loop (not ``generate``) runs in a thread, because it gives the control the
engine needs: the cancel event is checked before every forward pass, so closing the stream
really stops the model within one step; stop strings cut the text exactly (nothing past a stop
is ever streamed); and the KV cache outlives the request. A resume after a hint or a tool output
sends the old prompt + the generated text + something new; the prompt is tokenized afresh (so
the continuation depends on the text alone, exactly as on a server, cached or not), the cache is
cropped to the longest common token prefix with what it holds, and only the rest is prefilled.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import math
import os
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from startui.infer.backends import templates
from startui.infer.backends.base import (
    BackendError,
    Chunk,
    GenerationRequest,
    Put,
    chatml,
    stream_from_thread,
)
from startui.infer.backends.textstream import Detokenizer, StopMatcher

RESUME_TAIL = 8  # cached tokens past the common prefix a resume may drop (the cut overshoot)


@dataclass
class _Slot:
    """One cached sequence: the keys/values of ``ids`` are in ``cache``."""

    cache: Any
    ids: list[int] = field(default_factory=list)
    used: float = 0.0


class TransformersBackend:
    name = "transformers"

    def __init__(self, model: str, *, tokenizer: str | None = None,
                 chat_template: str | None = None, device: str | None = None,
                 reuse_cache: bool = True, cache_slots: int = 2,
                 prefill_chunk: int = 512) -> None:
        if not model:
            raise BackendError("the transformers backend needs --model: a local model directory "
                               "(config.json + weights), or a hub id where you have network")
        self.model = model
        self._tokenizer_name = tokenizer or model
        self._chat_template = chat_template
        self.device_request = device or os.environ.get("STARTUI_DEVICE") or "auto"
        self.reuse_cache = reuse_cache
        self.cache_slots = max(1, cache_slots)
        self.prefill_chunk = max(1, prefill_chunk)
        self.tokenizer: Any = None
        self.hf_model: Any = None
        self.device = "cpu"
        self.eos_token_ids: set[int] = set()
        self._template: templates.ChatTemplate | None = None
        self._slots: list[_Slot] = []
        self._load_lock = threading.Lock()
        self._gen_lock = threading.Lock()  # one decode loop at a time: one model, one device
        self._cancel: threading.Event | None = None
        self.thread: threading.Thread | None = None  # the latest generation thread
        # What the last request cost: tests and the benchmark read these.
        self.last_prompt_tokens = 0
        self.last_reused_tokens = 0
        self.last_prefill_tokens = 0
        self.last_first_token_s: float | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def load(self) -> Any:
        with self._load_lock:
            if self.hf_model is None:
                self._load()
            return self.hf_model

    def _load(self) -> None:
        try:
            import torch
            from transformers import AutoModelForCausalLM
        except ImportError as e:
            raise BackendError("the transformers backend needs torch, which the app does not "
                               "install: pip install -r requirements-transformers.txt") from e
        self.device = _pick_device(torch, self.device_request)
        tokenizer = templates.load_tokenizer(os.path.expanduser(self._tokenizer_name))
        path = os.path.expanduser(self.model)
        try:
            dtype: Any = torch.float32 if self.device == "cpu" else "auto"
            model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
            model = model.to(self.device).eval()
        except Exception as e:  # noqa: BLE001 - missing files, bad config, no network: say so
            raise BackendError(
                f"cannot load the transformers model {self.model!r}: {type(e).__name__}: {e}. "
                "Pass --model a local directory with config.json and weights (what "
                "save_pretrained writes), or a hub id on a machine with network") from e
        eos: set[int] = set()
        for value in (tokenizer.eos_token_id, getattr(model.generation_config, "eos_token_id",
                                                      None)):
            eos.update(value if isinstance(value, list) else [] if value is None else [value])
        self.tokenizer, self.eos_token_ids, self.hf_model = tokenizer, eos, model

    async def close(self) -> None:
        if self._cancel is not None:
            self._cancel.set()
        if self.thread is not None:
            await asyncio.to_thread(self.thread.join, 30)
        with self._load_lock:
            self.hf_model, self._slots = None, []
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass

    # -- protocol -------------------------------------------------------------------------

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        if self._template is None:
            self.load()
            self._template = templates.tokenizer_template(self.tokenizer, self._chat_template)
            if self._template is None:
                templates.log.warning("%s has no chat template: using ChatML; pass "
                                      "--chat-template FILE for another format", self.model)
                self._template = chatml
        return self._template(messages)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        await asyncio.to_thread(self.load)

        def started(thread: threading.Thread, cancel: threading.Event) -> None:
            self.thread, self._cancel = thread, cancel

        # the decode loop checks the cancel event before every forward pass
        chunks = stream_from_thread(lambda put, cancel: self._work(request, put, cancel),
                                    name="transformers", started=started)
        async with contextlib.aclosing(chunks):  # closing this stream closes that one
            async for chunk in chunks:
                yield chunk

    # -- the decode loop (a worker thread) ------------------------------------------------

    def _work(self, request: GenerationRequest, put: Put, cancel: threading.Event) -> None:
        with self._gen_lock:
            if not cancel.is_set():
                self._generate(request, put, cancel)

    def _generate(self, request: GenerationRequest, put: Put, cancel: threading.Event) -> None:
        import torch

        started = time.perf_counter()
        tok, model = self.tokenizer, self.hf_model
        slot, ids, reused = self._prepare(request.prompt)
        limit = getattr(model.config, "max_position_embeddings", None) or math.inf
        if len(ids) >= limit:
            raise BackendError(f"the prompt has {len(ids)} tokens, more than {self.model}'s "
                               f"context of {limit}: start a new trajectory or use a model with "
                               "a longer context")
        self.last_prompt_tokens, self.last_reused_tokens = len(ids), reused
        self.last_prefill_tokens, self.last_first_token_s = len(ids) - reused, None
        generator = None
        if request.temperature > 0:
            generator = torch.Generator(device=self.device)
            if request.seed is not None:
                generator.manual_seed(request.seed)
            else:
                generator.seed()
        detok = Detokenizer(tok, ids[max(0, len(ids) - 6):])
        stops = StopMatcher(request.stop)
        fed = slot.ids = ids[:reused]
        finish, unsent_tokens, generated = "length", 0, 0
        feed = ids[reused:]
        try:
            with torch.inference_mode():
                while True:
                    logits = None
                    for i in range(0, len(feed), self.prefill_chunk):
                        if cancel.is_set():
                            return
                        part = feed[i:i + self.prefill_chunk]
                        out = model(input_ids=torch.tensor([part], device=self.device),
                                    past_key_values=slot.cache, use_cache=True, logits_to_keep=1)
                        fed.extend(part)
                        logits = out.logits[0, -1]
                    if cancel.is_set() or logits is None:
                        return
                    token = _sample(torch, logits, request.temperature, request.top_p,
                                    generator)
                    if self.last_first_token_s is None:
                        self.last_first_token_s = time.perf_counter() - started
                    unsent_tokens += 1
                    if token in self.eos_token_ids:
                        finish = "stop"
                        break
                    generated += 1
                    piece = detok.add(token)
                    if piece:
                        text, hit = stops.feed(piece)
                        if text or hit:
                            put(Chunk(text, "stop" if hit else None, unsent_tokens))
                            unsent_tokens = 0
                        if hit:
                            return
                    if generated >= request.max_tokens or len(fed) + 1 >= limit:
                        break
                    feed = [token]
            put(Chunk(stops.flush(detok.flush()), finish, unsent_tokens))
        except BaseException:
            self._slots = [s for s in self._slots if s is not slot]  # its cache is suspect
            raise

    # -- cache reuse ----------------------------------------------------------------------

    def _prepare(self, prompt: str) -> tuple[_Slot, list[int], int]:
        """The slot to continue, the prompt's token ids, and how many leading ones are already
        in the slot's cache. A resume continues its own slot (cropping the few tokens generated
        past the cut); a prompt that branches off the middle of another sequence (a new
        trajectory on the same problem) gets a copy of the shared part, so that sequence keeps
        its cache for its own next resume."""
        ids = self._encode(prompt)
        if not ids:
            raise BackendError("the prompt is empty: there is nothing to continue")
        best, keep = None, 0
        if self.reuse_cache:
            for slot in self._slots:
                n = _token_prefix(slot.ids, ids)
                if n > keep:
                    best, keep = slot, n
        keep = min(keep, len(ids) - 1)  # the last token is always fed: its logits are needed
        if best is None or keep == 0:
            slot = self._new_slot()
        elif len(best.ids) - keep <= RESUME_TAIL or self._victim() is best:
            slot = best  # a resume, or a branch off the sequence that would be evicted anyway
            self._crop(slot, keep)
        else:
            shared = copy.deepcopy(best.cache)
            slot = self._new_slot()
            slot.cache, slot.ids = shared, best.ids[:keep]
            self._crop(slot, keep, cached=len(best.ids))
        slot.used = time.monotonic()
        return slot, ids, keep

    @staticmethod
    def _crop(slot: _Slot, keep: int, cached: int | None = None) -> None:
        drop = (len(slot.ids) if cached is None else cached) - keep
        if drop > 0:  # a negative crop removes tokens in every transformers version
            slot.cache.crop(-drop)
        del slot.ids[keep:]

    def _victim(self) -> _Slot | None:
        """The slot a new one would evict (the least recently used), None while there is room."""
        if len(self._slots) < self.cache_slots:
            return None
        return min(self._slots, key=lambda s: s.used)

    def _new_slot(self) -> _Slot:
        from transformers import DynamicCache

        try:
            cache = DynamicCache(config=self.hf_model.config)
        except TypeError:  # older transformers
            cache = DynamicCache()
        if not self.reuse_cache:
            self._slots = []
        while (victim := self._victim()) is not None:
            self._slots.remove(victim)
        slot = _Slot(cache)
        self._slots.append(slot)
        return slot

    def _encode(self, text: str) -> list[int]:
        """The chat template writes the special tokens; BOS is added only where the tokenizer
        wants one and the text lacks it (a raw prompt for a Llama-style model)."""
        tok = self.tokenizer
        ids: list[int] = tok(text, add_special_tokens=False)["input_ids"] if text else []
        bos_id, bos_text = tok.bos_token_id, tok.bos_token
        if bos_id is not None and getattr(tok, "add_bos_token", False) \
                and not (bos_text and text.startswith(bos_text)):
            ids = [bos_id] + ids  # the template did not write it, the model expects it
        return ids


def _token_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _pick_device(torch: Any, requested: str) -> str:
    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise BackendError(f"--device {requested} but torch sees no CUDA GPU here: use "
                           "--device cpu, or install a CUDA build of torch")
    return requested


def _sample(torch: Any, logits: Any, temperature: float, top_p: float, generator: Any) -> int:
    """Greedy at temperature 0; otherwise temperature + nucleus (top-p) sampling."""
    if temperature <= 0 or generator is None:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_p, order = torch.sort(probs, descending=True)
        keep = (torch.cumsum(sorted_p, dim=-1) - sorted_p) < top_p  # the top token always stays
        sorted_p = sorted_p * keep
        choice = torch.multinomial(sorted_p, 1, generator=generator)
        return int(order[choice])
    return int(torch.multinomial(probs, 1, generator=generator))
