"""Answers: find a trajectory's final answer and judge it against the reference.

Shared core, imported by every stage and importing none of them: the engine marks the
``\\boxed{}`` answer, the store keeps rule scores (:class:`ScoreResult`), the review tab shows how
the answer was extracted, Hint-RFT scores with :func:`answers_match` (`math-verify`, imported on
first use: it is slow to import and only scoring needs it).
"""

from __future__ import annotations

import functools
import re
import threading
from dataclasses import dataclass, field
from typing import Any

SCORER = "rule"  # the name scores are stored under (store.add_score(..., scorer=SCORER))

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_PHRASE = re.compile(
    r"(?:final answer|the answer|answer)\s*(?:is|:|=)\s*:?\s*(.+?)\s*(?:$|\n|(?<=[^\d])\.(?:\s|$)|"
    r"\.\s)", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?(?:\s*/\s*\d+)?")


def extract_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` in ``text``, braces balanced; None if there is none."""
    last = None
    for m in _BOXED.finditer(text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
            i += 1
        if depth == 0:
            last = text[m.end() : i - 1].strip()
    return last


def extract_answer(text: str) -> tuple[str | None, str | None]:
    """(answer, how): the last ``\\boxed{}``, else the last "final answer is X" phrase, else the
    last number. ``how`` ("boxed" | "phrase" | "last_number") is stored with the score so a
    reviewer sees how sure the extraction was."""
    boxed = extract_boxed(text)
    if boxed:
        return boxed, "boxed"
    phrases = _PHRASE.findall(text)
    if phrases:
        answer = phrases[-1].strip().strip("$").strip().rstrip(".").strip()
        if answer:
            return answer, "phrase"
    numbers = _NUMBER.findall(text)
    if numbers:
        return numbers[-1].replace(" ", ""), "last_number"
    return None, None


# --- math equivalence ------------------------------------------------------------------------

def _timeout() -> int | None:
    """math-verify guards its sympy calls with SIGALRM, which only the main thread may use;
    elsewhere (a worker thread of the app) it runs unguarded."""
    return 5 if threading.current_thread() is threading.main_thread() else None


@functools.lru_cache(maxsize=4096)
def _parsed(text: str) -> tuple[Any, ...]:
    from math_verify import parse

    src = text.strip()
    if "$" not in src and "\\boxed" not in src and "\\(" not in src:
        src = f"${src}$"
    try:
        return tuple(parse(src, parsing_timeout=_timeout()))
    except Exception:  # noqa: BLE001 - unparseable answers fall back to text comparison
        return ()


def _plain(text: str) -> str:
    """Text normal form for answers math-verify cannot parse (a name, "Yes", a letter)."""
    t = re.sub(r"\\text\{([^}]*)\}|\\mathrm\{([^}]*)\}", r"\1\2", text)
    t = t.replace("$", "").replace("\\,", "").replace("\\!", "").replace("\\ ", " ")
    return re.sub(r"\s+", " ", t).strip().rstrip(".").strip().lower()


def answers_match(predicted: str | None, reference: str | None) -> bool:
    """Whether ``predicted`` is mathematically the same answer as ``reference``."""
    if predicted is None or reference is None or not predicted.strip():
        return False
    gold, pred = _parsed(reference), _parsed(predicted)
    if gold and pred:
        from math_verify import verify

        try:
            if verify(list(gold), list(pred), timeout_seconds=_timeout()):
                return True
        except Exception:  # noqa: BLE001 - a comparer crash is "not shown equal"
            pass
    return _plain(predicted) == _plain(reference)


# --- results ---------------------------------------------------------------------------------

@dataclass
class ScoreResult:
    """One rule score. ``correct`` None means "cannot be scored" (no reference, no tests, no
    code): such trajectories are reported, never silently counted as wrong."""

    correct: bool | None
    value: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)
