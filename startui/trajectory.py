"""The trajectory: one type that the engine produces, the store saves, reviewers edit and the
Hint-RFT exporter writes.

A trajectory is a problem, the templated prompt the model was given, and an ordered list of typed
segments. Concatenating the segments' renderings gives *exactly* the text the model continued
from, so a trajectory rebuilt from stored segments resumes where it stopped.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from startui.answers import extract_answer, extract_boxed

Kind = Literal["think", "hint", "code", "output", "answer"]
Source = Literal["model", "auto", "human", "kernel"]
Status = Literal["running", "finished", "cancelled", "error", "interrupted"]
TOOL_LIMIT_ERROR = "ToolCallLimit"  # the error of a cell the tool-call cap refused to run
STATUSES: tuple[Status, ...] = ("running", "finished", "cancelled", "error", "interrupted")

KINDS: tuple[Kind, ...] = ("think", "hint", "code", "output", "answer")
SOURCES: tuple[Source, ...] = ("model", "auto", "human", "kernel")

FENCE = "```"
CODE_OPEN = "```python\n"
OUTPUT_OPEN = "```output\n"


@dataclass
class Segment:
    """One piece of the trajectory.

    ``text`` is what the segment contributes, minus fences for ``code`` and ``output`` (those are
    added by :meth:`render`, so the model always sees one canonical form). ``meta`` holds what the
    model does not see: hint category, execution time, error name, images, plotly figures.
    ``closed`` is False only for a code segment the model is still writing.
    """

    kind: Kind
    text: str = ""
    source: Source = "model"
    meta: dict[str, Any] = field(default_factory=dict)
    closed: bool = True

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown segment kind {self.kind!r}; expected one of {KINDS}")
        if self.source not in SOURCES:
            raise ValueError(f"unknown segment source {self.source!r}; expected one of {SOURCES}")

    def render(self) -> str:
        if self.kind == "code":
            return CODE_OPEN + self.text + ("\n" + FENCE + "\n" if self.closed else "")
        if self.kind == "output":
            return OUTPUT_OPEN + self.text + "\n" + FENCE + "\n"
        return self.text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Segment:
        return cls(
            kind=data["kind"],
            text=data.get("text", ""),
            source=data.get("source", "model"),
            meta=dict(data.get("meta") or {}),
            closed=data.get("closed", True),
        )


@dataclass
class Problem:
    question: str
    answer: str | None = None
    kind: Literal["math", "code"] = "math"
    tests: list[dict[str, Any]] | None = None
    id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Problem:
        return cls(
            question=data["question"],
            answer=data.get("answer"),
            kind=data.get("kind", "math"),
            tests=data.get("tests"),
            id=data.get("id"),
            meta=dict(data.get("meta") or {}),
        )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Trajectory:
    problem: Problem
    prompt: str
    segments: list[Segment] = field(default_factory=list)
    status: Status = "running"
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    settings: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    tokens: int = 0
    created_at: str = field(default_factory=_now)

    def completion(self) -> str:
        """The assistant text so far, exactly as the model sees it."""
        return "".join(s.render() for s in self.segments)

    def text(self) -> str:
        """Prompt plus completion: the prefix a resume continues from."""
        return self.prompt + self.completion()

    def spans(self) -> list[tuple[int, int]]:
        """``[start, end)`` character offsets of each segment's rendering in :meth:`completion`."""
        out, pos = [], 0
        for s in self.segments:
            n = len(s.render())
            out.append((pos, pos + n))
            pos += n
        return out

    def final_answer(self) -> tuple[str | None, str | None]:
        """(answer, how it was found): the answer segment's (or the model text's) last
        ``\\boxed{}``, else the fallbacks ("phrase", "last_number") on the final answer (or
        last model) segment. Scoring and the review tab both show this."""
        boxed = self.answer
        if boxed:
            return boxed, "boxed"
        last = next((s.text for s in reversed(self.segments)
                     if s.source == "model" and s.kind in ("answer", "think") and s.text.strip()),
                    "")
        return extract_answer(last)

    @property
    def ends_in_error(self) -> bool:
        """The last cell that ran ended in an error (a traceback, a timeout, a dead kernel) and
        no later cell ran to fix it. A cell the tool-call cap refused did not run."""
        for s in reversed(self.segments):
            if s.kind == "output" and s.source == "kernel" and \
                    s.meta.get("error") != TOOL_LIMIT_ERROR:
                return bool(s.meta.get("error"))
        return False

    @property
    def human_hints(self) -> int:
        return sum(1 for s in self.segments if s.kind == "hint" and s.source == "human")

    @property
    def tool_calls(self) -> int:
        return sum(1 for s in self.segments if s.kind == "code" and s.closed)

    @property
    def hints(self) -> int:
        return sum(1 for s in self.segments if s.kind == "hint")

    @property
    def answer(self) -> str | None:
        """The final answer: the last ``\\boxed{}`` of the answer segment, else of the text."""
        for s in reversed(self.segments):
            if s.kind == "answer":
                boxed = s.meta.get("boxed") or extract_boxed(s.text)
                if boxed:
                    return boxed
        model_text = "".join(s.text for s in self.segments if s.source == "model")
        return extract_boxed(model_text)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "problem": self.problem.to_dict(),
            "prompt": self.prompt,
            "segments": [s.to_dict() for s in self.segments],
            "settings": self.settings,
            "error": self.error,
            "tokens": self.tokens,
            "created_at": self.created_at,
            "answer": self.answer,
            "tool_calls": self.tool_calls,
            "hints": self.hints,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trajectory:
        return cls(
            problem=Problem.from_dict(data["problem"]),
            prompt=data["prompt"],
            segments=[Segment.from_dict(s) for s in data.get("segments", [])],
            status=data.get("status", "finished"),
            id=data.get("id") or uuid.uuid4().hex,
            settings=dict(data.get("settings") or {}),
            error=data.get("error"),
            tokens=data.get("tokens", 0),
            created_at=data.get("created_at") or _now(),
        )
