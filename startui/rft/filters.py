"""Hint-RFT's filtering and modification of trajectories, one pure function per rule.

The paper keeps a trajectory for fine-tuning only if it is right *and* reasonable: no degenerate
repetition, tools actually used, no code error left standing at the end, within length and
tool-call limits. Each rule here is configurable and named, so a selection can report how many
trajectories each one dropped. Modifications (removing people's hints, normalising kernel output
blocks) return a new trajectory and a record of what changed; the exporter writes that record
into the row, so a training set never contains an unexplained edit.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from startui.trajectory import TOOL_LIMIT_ERROR, Segment, Trajectory

RULES = ("repetition", "no_tool_call", "unresolved_error", "too_long", "too_short",
         "tool_call_cap")
_SCRATCH = re.compile(r"/tmp/startui-work-[A-Za-z0-9_]+/?")


@dataclass
class FilterConfig:
    """Which rules apply, and their thresholds. ``disabled`` names rules to skip.

    Repetition: a trajectory is degenerate when some ``ngram``-word sequence occurs at least
    ``max_ngram_repeats`` times in the model's own prose, or one paragraph of at least
    ``min_paragraph_chars`` characters occurs ``max_paragraph_repeats`` times. Code and kernel
    output are not counted (loops print alike lines), nor are hints (rounds repeat by design).
    """

    ngram: int = 12
    max_ngram_repeats: int = 5
    max_paragraph_repeats: int = 3
    min_paragraph_chars: int = 30
    max_chars: int | None = 64_000  # completion characters (~16k tokens)
    max_tokens: int | None = None  # generated tokens, when the backend counted them
    min_chars: int = 1
    max_tool_calls: int = 6  # the paper's cap
    disabled: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = sorted(set(self.disabled) - set(RULES))
        if unknown:
            raise ValueError(f"unknown filter rule(s) {', '.join(unknown)}; rules are "
                             f"{', '.join(RULES)}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["disabled"] = sorted(self.disabled)
        return d


def prose(traj: Trajectory) -> str:
    return "\n\n".join(s.text for s in traj.segments
                       if s.source == "model" and s.kind in ("think", "answer")
                       and not s.meta.get("unfinished_code"))


def max_ngram_repeats(text: str, n: int) -> int:
    """How often the most frequent ``n``-word sequence occurs (0 for texts shorter than n)."""
    words = text.split()  # the runs of non-whitespace (re's \S+), a fifth faster
    if len(words) < n:
        return 0
    counts = Counter(zip(*(words[i:] for i in range(n)), strict=False))  # n-grams, built in C
    return max(counts.values())


def max_paragraph_repeats(text: str, min_chars: int) -> int:
    paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text)]
    counts = Counter(p for p in paras if len(p) >= min_chars)
    return max(counts.values(), default=0)


def is_repetitive(traj: Trajectory, cfg: FilterConfig) -> bool:
    text = prose(traj)
    return (max_ngram_repeats(text, cfg.ngram) >= cfg.max_ngram_repeats
            or max_paragraph_repeats(text, cfg.min_paragraph_chars) >= cfg.max_paragraph_repeats)


def executed_outputs(traj: Trajectory) -> list[Segment]:
    """Kernel outputs of cells that actually ran (the tool-call cap's refusal is not one)."""
    return [s for s in traj.segments if s.kind == "output" and s.source == "kernel"
            and s.meta.get("error") != TOOL_LIMIT_ERROR]


def has_unresolved_error(traj: Trajectory) -> bool:
    """The last cell that ran ended in an error (a traceback, a timeout, a dead kernel) and no
    later cell ran to fix it."""
    return traj.ends_in_error


def exceeded_tool_cap(traj: Trajectory, cap: int) -> bool:
    return traj.tool_calls > cap or any(
        s.kind == "output" and s.meta.get("error") == TOOL_LIMIT_ERROR for s in traj.segments)


def check(traj: Trajectory, cfg: FilterConfig) -> list[str]:
    """The rules ``traj`` breaks, in :data:`RULES` order (empty: it passes)."""
    on = [r for r in RULES if r not in cfg.disabled]
    broken: list[str] = []
    n_chars = sum(len(s.render()) for s in traj.segments)
    for rule in on:
        if rule == "repetition" and is_repetitive(traj, cfg):
            broken.append(rule)
        elif rule == "no_tool_call" and not executed_outputs(traj):
            broken.append(rule)
        elif rule == "unresolved_error" and has_unresolved_error(traj):
            broken.append(rule)
        elif rule == "too_long" and (
                (cfg.max_chars is not None and n_chars > cfg.max_chars)
                or (cfg.max_tokens is not None and traj.tokens > cfg.max_tokens)):
            broken.append(rule)
        elif rule == "too_short" and n_chars < cfg.min_chars:
            broken.append(rule)
        elif rule == "tool_call_cap" and exceeded_tool_cap(traj, cfg.max_tool_calls):
            broken.append(rule)
    return broken


# --- modification ----------------------------------------------------------------------------

@dataclass
class ModifyConfig:
    """What to change before export. ``strip_human_hints`` removes the text of hints people typed
    (their words are not the model's); ``normalize_outputs`` makes kernel output blocks
    canonical: trailing spaces and runs of blank lines gone, the sandbox's scratch paths
    replaced by ``./``, and (``max_output_chars``) long outputs cut to their head and tail."""

    strip_human_hints: bool = False
    normalize_outputs: bool = False
    max_output_chars: int | None = 2000

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Modified:
    trajectory: Trajectory
    records: list[dict[str, Any]] = field(default_factory=list)
    index_map: list[int] = field(default_factory=list)  # new segment -> original index


def normalize_output(text: str, max_chars: int | None) -> str:
    t = _SCRATCH.sub("./", text)
    t = "\n".join(line.rstrip() for line in t.splitlines())
    t = re.sub(r"\n{3,}", "\n\n", t).strip("\n")
    if max_chars is not None and len(t) > max_chars:
        head = max_chars // 2
        tail = max_chars - head
        t = f"{t[:head]}\n... [{len(t) - head - tail} characters cut] ...\n{t[-tail:]}"
    return t or "(no output)"


def modify(traj: Trajectory, cfg: ModifyConfig) -> Modified:
    """A modified copy of ``traj`` and one record per enabled modification (also when it changed
    nothing, so a row always says which modifications were applied)."""
    index_map = list(range(len(traj.segments)))
    records: list[dict[str, Any]] = []
    if not (cfg.strip_human_hints or cfg.normalize_outputs):
        return Modified(traj, records, index_map)
    # segments are rebuilt, never mutated: the caller's trajectory stays as it was
    segs = [Segment(s.kind, s.text, s.source, dict(s.meta), s.closed) for s in traj.segments]
    if cfg.strip_human_hints:
        removed = [i for i, s in enumerate(segs) if s.kind == "hint" and s.source == "human"]
        chars = sum(len(segs[i].text) for i in removed)
        keep = [i for i in range(len(segs)) if i not in set(removed)]
        segs, index_map = [segs[i] for i in keep], [index_map[i] for i in keep]
        records.append({"op": "strip_human_hints", "segments": removed, "chars": chars})
    if cfg.normalize_outputs:
        changed = []
        for new_i, s in enumerate(segs):
            if s.kind == "output":
                text = normalize_output(s.text, cfg.max_output_chars)
                if text != s.text:
                    changed.append(index_map[new_i])
                    s.text = text
        records.append({"op": "normalize_outputs", "segments": changed,
                        "max_output_chars": cfg.max_output_chars})
    out = Trajectory(problem=traj.problem, prompt=traj.prompt, segments=segs, status=traj.status,
                     id=traj.id, settings=traj.settings, error=traj.error, tokens=traj.tokens,
                     created_at=traj.created_at)
    return Modified(out, records, index_map)
