"""The team's review guide: the guidelines (markdown) and the label set, kept in the store so
every reviewer sees the same ones and an admin edits them in the app."""

from __future__ import annotations

from typing import Any

from startui.review.users import require

DEFAULT_LABEL_SET = ["correct", "good tool use", "hint helped", "hint ignored", "repetitive",
                     "flawed reasoning", "bad problem"]
MAX_LABELS = 9  # keys 1-9

DEFAULT_GUIDELINES = """\
### Reviewing a trajectory

- **Accept** (`a`): the reasoning is sound, the code does what the text says, and the final answer
  is right — this is what we want the model to learn. Small slips you fixed with an edit are fine.
- **Reject** (`r`): wrong answer, reasoning that only reaches the answer by luck, code that does not
  check what it claims, or a run that ignores its hints.
- **Skip** (`s`): you cannot judge it (unclear problem, outside your expertise).
- **Undo** (`z`) takes your last decision back.

### Step labels (process supervision, PRM800K's convention)

`+1` the step is correct and moves towards the answer; `0` reasonable but no progress; `−1` wrong.
Leave a step unlabelled when you did not judge it — "unlabelled" is not `0`. In **first-error**
mode, pick the first wrong step: the steps before it become `+1`, it becomes `−1`, the rest stay
unlabelled.

### Edits

Every save is a new revision; the model's original is kept. Edited code is re-run in a fresh kernel
and every stored output that no longer matches is flagged: take the new output, or accept with a
reason.
"""


def label_set(store: Any) -> list[str]:
    labels = store.get_setting("label_set") if store is not None else None
    return list(labels) if labels else list(DEFAULT_LABEL_SET)


def set_label_set(store: Any, labels: list[str], by: str) -> list[str]:
    require(store, by, "guidelines")
    clean = list(dict.fromkeys(label.strip() for label in labels if label and label.strip()))
    if not clean or len(clean) > MAX_LABELS:
        raise ValueError(f"a label set has 1 to {MAX_LABELS} labels (keys 1-9), not {len(clean)}")
    store.set_setting("label_set", clean, by=by)
    return clean


def guidelines(store: Any) -> str:
    text = store.get_setting("guidelines") if store is not None else None
    return text or DEFAULT_GUIDELINES


def set_guidelines(store: Any, text: str, by: str) -> None:
    require(store, by, "guidelines")
    store.set_setting("guidelines", text, by=by)


def check_rating(store: Any, score: int | None, labels: list[str] | tuple[str, ...]) -> None:
    """A 1-5 score (or none) and labels from the team's label set, else ValueError."""
    if score is not None and (int(score) != score or not 1 <= int(score) <= 5):
        raise ValueError(f"a score is 1 to 5, not {score!r}")
    known = label_set(store)
    unknown = [lab for lab in labels if lab not in known]
    if unknown:
        raise ValueError(f"unknown label {unknown[0]!r}; the label set is {', '.join(known)}")
