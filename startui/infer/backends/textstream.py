"""Streaming text out of token ids, for backends that sample tokens themselves.

Two things a server does for its clients that an in-process backend must do itself: turn tokens
into text without ever emitting half a UTF-8 character (a byte-level BPE token may hold part of
one), and cut at stop strings without streaming anything past them (the tail that could be the
start of a stop string is held back until it is decided).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

_MAX_PENDING = 4  # no UTF-8 character takes more than 4 byte tokens


def common_prefix(a: str, b: str) -> int:
    """Length of the longest common prefix, with C-speed slice comparisons (prompts are long)."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


class Detokenizer:
    """Incremental decoding (the prefix/read offsets of TGI and vLLM): each step decodes a small
    window, so the cost per token is constant, and a leading space that depends on the previous
    token (sentencepiece) comes out right because the window starts with context tokens."""

    def __init__(self, tokenizer: Any, context: Sequence[int] = ()) -> None:
        self.tokenizer = tokenizer
        self.ids = list(context)
        self.prefix = 0
        self.read = len(self.ids)
        self.text = ""  # everything emitted so far

    def _decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=False,
                                     clean_up_tokenization_spaces=False)

    def add(self, token: int) -> str:
        """The new text this token completes ("" while a character is still incomplete)."""
        self.ids.append(token)
        return self._step(force=len(self.ids) - self.read > _MAX_PENDING)

    def flush(self) -> str:
        """Whatever is left at the end, invalid bytes shown as U+FFFD."""
        return self._step(force=True) if len(self.ids) > self.read else ""

    def _step(self, force: bool) -> str:
        before = self._decode(self.ids[self.prefix:self.read])
        after = self._decode(self.ids[self.prefix:])
        if len(after) > len(before) and (force or not after.endswith("\ufffd")):
            piece = after[len(before):]
            self.prefix, self.read = self.read, len(self.ids)
            self.text += piece
            return piece
        return ""


class StopMatcher:
    """Cuts streamed text at the first stop string; the stop string itself is not emitted (as
    OpenAI-compatible servers do by default)."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.longest = max((len(s) for s in self.stops), default=0)
        self.text = ""
        self.sent = 0

    def feed(self, piece: str) -> tuple[str, bool]:
        """Add generated text; returns (text safe to emit now, whether a stop string was hit)."""
        self.text += piece
        start = max(0, self.sent - self.longest + 1)
        hits = [i for i in (self.text.find(s, start) for s in self.stops) if i >= 0]
        if hits:
            cut = min(hits)
            out, self.sent = self.text[self.sent:cut], len(self.text)
            return out, True
        end = len(self.text) - self._held()
        out, self.sent = self.text[self.sent:end], max(self.sent, end)
        return out, False

    def flush(self, piece: str = "") -> str:
        """The end of the stream: the held-back tail was no stop string after all."""
        out, hit = self.feed(piece)
        if hit:
            return out
        out += self.text[self.sent:]
        self.sent = len(self.text)
        return out

    def _held(self) -> int:
        """Length of the tail that could still become a stop string."""
        best = 0
        for stop in self.stops:
            for k in range(min(len(stop) - 1, len(self.text)), best, -1):
                if self.text.endswith(stop[:k]):
                    best = k
                    break
        return best
