"""The hint library and the policies that decide when a hint goes into the model's thinking.

The texts are the paper's (START, arXiv 2503.04625, hint library for math; the debug hint for
code; escalating hints for sequential test-time scaling). Every one is a default, never a
constant: users add their own from a file, and a policy picks which categories it draws from.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from startui.trajectory import Problem

CODE_FENCE = "```python"


@dataclass(frozen=True)
class Hint:
    """A hint as inserted into the thinking. ``opens_code`` hints end by opening a python fence,
    so the model's next tokens are code (the paper's hints all do)."""

    category: str
    text: str
    opens_code: bool = True

    @property
    def written(self) -> str:
        """The hint as a person types it: :meth:`parse` gives this hint back."""
        return self.text + ("\n" + CODE_FENCE if self.opens_code else "")

    @classmethod
    def parse(cls, text: str, category: str = "custom") -> Hint:
        """A hint from free text: a trailing ```` ```python ```` fence means it opens code."""
        stripped = text.rstrip()
        if stripped.endswith(CODE_FENCE):
            return cls(category, stripped[: -len(CODE_FENCE)].rstrip(), True)
        return cls(category, stripped, False)


MATH_HINTS: tuple[Hint, ...] = (
    Hint("complex calculations",
         "I can use Python to perform complex calculations for this problem."),
    Hint("self-reflection",
         "I can use Python to check if my approach is correct and refine it, if necessary."),
    Hint("check logic", "maybe Python can assist in ensuring our logical deductions are sound."),
    Hint("alternative method",
         "I can use Python to explore an alternative method for solving this problem."),
    Hint("general", "maybe using python here is a good idea."),
    Hint("deeper think", "I can think more deeply about this problem through python tools."),
)

# Sequential test-time scaling: end-of-reasoning round i uses ROUND_HINTS[i] (the last repeats).
ROUND_HINTS: tuple[Hint, ...] = (
    Hint("self-reflection",
         "I can use Python to check if my approach is correct and refine it, if necessary."),
    Hint("meticulous check",
         "I can utilize Python code again to meticulously check my reasoning and the final "
         "answer."),
    Hint("deeper think", "I can think more deeply about this problem through python tools."),
)

DEBUG_HINT = Hint(
    "debug",
    "I need to test my code on the sample test cases before answering. I will write Python code "
    "that embeds every sample input, runs my solution on each one, prints the outputs, compares "
    "them with the expected outputs and then debugs any difference. The sample test cases are:\n"
    "{testcase}\n"
    "I will use this template: define `solve(input_str) -> str` with my solution, then\n"
    "for inp, expected in tests:\n"
    "    got = solve(inp)\n"
    "    print('PASS' if got.strip() == expected.strip() else f'FAIL: got {{got!r}}, expected "
    "{{expected!r}}')",
)


def format_testcases(problem: Problem, limit: int = 3) -> str:
    """The sample tests of a code problem as the debug hint's ``{testcase}`` slot expects them."""
    tests = (problem.tests or [])[:limit]
    return "tests = " + json.dumps(
        [[str(t.get("input", "")), str(t.get("output", ""))] for t in tests], indent=1
    )


@dataclass
class HintLibrary:
    math: list[Hint] = field(default_factory=lambda: list(MATH_HINTS))
    rounds: list[Hint] = field(default_factory=lambda: list(ROUND_HINTS))
    debug: Hint = DEBUG_HINT

    @property
    def categories(self) -> list[str]:
        return list(dict.fromkeys(h.category for h in self.math))

    def by_category(self, category: str) -> Hint:
        for h in self.math + self.rounds:
            if h.category == category:
                return h
        raise KeyError(f"no hint of category {category!r}; known: {', '.join(self.categories)}")

    def add_file(self, path: str | Path) -> None:
        """Add hints from a file: a JSON list of ``{"category", "text", "use"}`` objects (``use`` is
        "conjunction" (default) or "round"), or plain text with one hint per line."""
        path = Path(path)
        try:
            raw = path.read_text(encoding="utf-8")
        except OSError as e:
            raise ValueError(f"cannot read hint file {path}: {e.strerror}") from e
        if path.suffix == ".json":
            try:
                items: list[Any] = json.loads(raw)
            except json.JSONDecodeError as e:
                raise ValueError(f"hint file {path} is not valid JSON: {e}") from e
            if not isinstance(items, list):
                raise ValueError(f"hint file {path} must hold a JSON list of hints")
            for n, item in enumerate(items, 1):
                if not isinstance(item, dict) or not isinstance(item.get("text"), str):
                    raise ValueError(f"hint {n} in {path} needs a 'text' string")
                hint = Hint.parse(item["text"], item.get("category", "custom"))
                (self.rounds if item.get("use") == "round" else self.math).append(hint)
        else:
            for line in raw.splitlines():
                if line.strip():
                    self.math.append(Hint.parse(line.strip()))


@dataclass
class HintPolicy:
    """When and which hints are inserted.

    - ``rounds``: end-of-reasoning hint rounds; when the model wants to stop, drop the stop and
      insert "Wait, " + a round hint, up to this many times (sequential test-time scaling).
    - ``conjunction_p``: probability of inserting a hint right after a paragraph-opening
      conjunction ("Wait", "Alternatively"); the paper inserts at random.
    - ``categories``: the math-hint categories conjunction hints draw from (None: all).
    """

    rounds: int = 1
    conjunction_p: float = 0.0
    conjunctions: tuple[str, ...] = ("Wait", "Alternatively")
    categories: tuple[str, ...] | None = None
    seed: int | None = None
    library: HintLibrary = field(default_factory=HintLibrary)

    def __post_init__(self) -> None:
        if not 0.0 <= self.conjunction_p <= 1.0:
            raise ValueError("conjunction probability must be within [0, 1], "
                             f"got {self.conjunction_p}")
        if self.rounds < 0:
            raise ValueError(f"hint rounds must be >= 0, got {self.rounds}")
        self._rng = random.Random(self.seed)

    def round_hint(self, round_index: int, problem: Problem) -> Hint:
        """The hint for end-of-reasoning round ``round_index`` (0-based)."""
        if problem.kind == "code" and problem.tests:
            d = self.library.debug
            return Hint(d.category, d.text.replace("{testcase}", format_testcases(problem)),
                        d.opens_code)
        hints = self.library.rounds or self.library.math
        return hints[min(round_index, len(hints) - 1)]

    def insert_at_conjunction(self) -> bool:
        return self.conjunction_p > 0 and self._rng.random() < self.conjunction_p

    def conjunction_hint(self) -> Hint:
        pool = [h for h in self.library.math
                if self.categories is None or h.category in self.categories]
        if not pool:
            raise ValueError(f"no hints in categories {self.categories}")
        return self._rng.choice(pool)

    def settings(self) -> dict[str, Any]:
        return {"rounds": self.rounds, "conjunction_p": self.conjunction_p,
                "conjunctions": list(self.conjunctions),
                "categories": list(self.categories) if self.categories else None,
                "seed": self.seed}
