"""Edits: a reviewer corrects a trajectory; the model's original is never overwritten.

Every save is a new revision (the store keeps the original as the first one, and refuses a save
made on a version someone else changed since — :class:`startui.store.ConflictError` names who and
when, and the caller still holds what was typed). What no other annotation tool does: when code
(or an output) changed, the trajectory's code cells are re-run **in order in a fresh kernel**, and
every stored output that no longer matches its code's new result is flagged *stale* on that
revision. The reviewer takes the new output with one click, or accepts with a reason.
"""

from __future__ import annotations

import copy
import difflib
import html
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from startui.infer.engine import output_segment
from startui.review.users import require
from startui.trajectory import TOOL_LIMIT_ERROR, Segment

# A kernel's scratch folder (tempfile.mkdtemp(prefix="startui-work-"), under /tmp or the pool's
# workdir_root): a fresh kernel gets another name, which is no reason to call an output stale.
_SCRATCH = re.compile(r"[^\s'\"()\[\]]*/startui-work-[A-Za-z0-9_]+/?")


@dataclass
class StaleOutput:
    """A stored output (at ``position``) whose code (at ``code_position``) now prints
    something else."""

    position: int
    stored: str
    fresh: str
    error: str | None
    code_position: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SegmentDiff:
    kind: str
    change: str  # changed | added | deleted
    before: str
    after: str
    position: int | None  # in the newer list (None: deleted)
    html: str


@dataclass
class EditResult:
    version: int
    stale: list[StaleOutput]
    reran: bool


# --- editing a list of segments (pure) ---------------------------------------------------------

def set_text(segments: list[Segment], position: int, text: str) -> list[Segment]:
    out = copy.deepcopy(segments)
    _check(out, position).text = text
    return out


def delete_segment(segments: list[Segment], position: int) -> list[Segment]:
    out = copy.deepcopy(segments)
    _check(out, position)
    del out[position]
    return out


def add_hint(segments: list[Segment], position: int, text: str) -> list[Segment]:
    """A person's hint after ``position`` (-1: first)."""
    if not text.strip():
        raise ValueError("a hint needs some text")
    out = copy.deepcopy(segments)
    if not -1 <= position < len(out):
        raise ValueError(f"no segment {position}: the trajectory has {len(out)}")
    out.insert(position + 1, Segment("hint", text, "human", {"category": "reviewer"}))
    return out


def take_fresh_output(segments: list[Segment], stale: StaleOutput) -> list[Segment]:
    out = copy.deepcopy(segments)
    seg = _check(out, stale.position)
    if seg.kind != "output":
        raise ValueError(f"segment {stale.position} is a {seg.kind}, not an output")
    seg.text = stale.fresh
    seg.meta = {k: v for k, v in seg.meta.items() if k not in ("error", "images", "plotly")}
    if stale.error:
        seg.meta["error"] = stale.error
    return out


def _check(segments: list[Segment], position: int) -> Segment:
    if not 0 <= position < len(segments):
        raise ValueError(f"no segment {position}: the trajectory has {len(segments)}")
    return segments[position]


# --- diffs ------------------------------------------------------------------------------------

def diff(before: list[Segment], after: list[Segment]) -> list[SegmentDiff]:
    """What changed between two revisions, segment by segment (aligned by kind and text)."""
    keys_a = [(s.kind, s.text) for s in before]
    keys_b = [(s.kind, s.text) for s in after]
    out: list[SegmentDiff] = []
    for op, a0, a1, b0, b1 in difflib.SequenceMatcher(None, keys_a, keys_b,
                                                      autojunk=False).get_opcodes():
        if op == "equal":
            continue
        olds, news = list(range(a0, a1)), list(range(b0, b1))
        while olds and news and before[olds[0]].kind == after[news[0]].kind:
            i, j = olds.pop(0), news.pop(0)
            out.append(SegmentDiff(after[j].kind, "changed", before[i].text, after[j].text, j,
                                   inline_diff(before[i].text, after[j].text)))
        out += [SegmentDiff(before[i].kind, "deleted", before[i].text, "", None,
                            f"<del>{html.escape(before[i].text)}</del>") for i in olds]
        out += [SegmentDiff(after[j].kind, "added", "", after[j].text, j,
                            f"<ins>{html.escape(after[j].text)}</ins>") for j in news]
    return sorted(out, key=lambda d: (d.position is None, d.position or 0))


def inline_diff(a: str, b: str) -> str:
    """Word-level HTML: removed words in <del>, added in <ins>, everything escaped."""
    wa, wb = re.split(r"(\s+)", a), re.split(r"(\s+)", b)
    parts = []
    for op, a0, a1, b0, b1 in difflib.SequenceMatcher(None, wa, wb, autojunk=False).get_opcodes():
        if op == "equal":
            parts.append(html.escape("".join(wa[a0:a1])))
            continue
        if a1 > a0:
            parts.append(f"<del>{html.escape(''.join(wa[a0:a1]))}</del>")
        if b1 > b0:
            parts.append(f"<ins>{html.escape(''.join(wb[b0:b1]))}</ins>")
    return "".join(parts)


# --- re-running edited code --------------------------------------------------------------------

def _normal(text: str) -> str:
    text = _SCRATCH.sub("<scratch>/", text)
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


async def rerun(segments: list[Segment], pool: Any, *, timeout: float = 30.0,
                ) -> list[StaleOutput]:
    """Run every code cell in order in a fresh kernel; the outputs that no longer match."""
    stale: list[StaleOutput] = []
    kernel = await pool.acquire()
    try:
        for i, seg in enumerate(segments):
            if seg.kind != "code" or not seg.closed:
                continue
            nxt = segments[i + 1] if i + 1 < len(segments) else None
            if nxt is not None and nxt.kind == "output" and \
                    nxt.meta.get("error") == TOOL_LIMIT_ERROR:
                continue  # the cap refused this cell: it never ran, so it does not run now
            result = await kernel.execute(seg.text, timeout=timeout)
            fresh = output_segment(result)
            if nxt is not None and nxt.kind == "output" and _normal(nxt.text) != _normal(
                    fresh.text):
                stale.append(StaleOutput(i + 1, nxt.text, fresh.text, result.error, i))
    finally:
        await pool.release(kernel)
    return stale


def _run_positions(segs: list[Segment]) -> list[int]:
    """Where the code and output segments are: what a re-run depends on, in order."""
    return [i for i, s in enumerate(segs) if s.kind in ("code", "output")]


def _runs_differ(a: list[Segment], b: list[Segment]) -> bool:
    return [(a[i].kind, a[i].text) for i in _run_positions(a)] != [
        (b[i].kind, b[i].text) for i in _run_positions(b)]


def _carry(stale: list[StaleOutput], before: list[Segment], after: list[Segment],
           ) -> list[StaleOutput]:
    """The previous revision's stale outputs, moved to their places in ``after`` (its code and
    outputs are the same, only prose moved): an edit elsewhere must not clear the flags."""
    where = dict(zip(_run_positions(before), _run_positions(after), strict=True))
    return [StaleOutput(where[s.position], s.stored, s.fresh, s.error, where[s.code_position])
            for s in stale if s.position in where and s.code_position in where]


async def save_edit(store: Any, pool: Any, tid: str, segments: list[Segment], *,
                    expected_version: int, editor: str, note: str = "") -> EditResult:
    """Save ``segments`` as a new revision (ConflictError if the version moved: nothing is
    lost, the caller still holds ``segments``); re-run the code when code or outputs changed.

    An edit that leaves code and outputs alone keeps the previous revision's unresolved stale
    outputs (at their new positions) without a kernel: otherwise fixing a typo in the prose
    would silently lift the block on accepting."""
    import asyncio

    require(store, editor, "edit")
    before, _ = await asyncio.to_thread(store.load_trajectory_versioned, tid)
    carried = await asyncio.to_thread(stale_outputs, store, tid)
    version = await asyncio.to_thread(
        store.update_trajectory_segments, tid, segments, expected_version=expected_version,
        editor=editor, note=note)
    if not _runs_differ(before.segments, segments):
        if not carried:
            return EditResult(version, [], False)
        stale = _carry(carried, before.segments, segments)
        await asyncio.to_thread(store.set_revision_checks, tid, version, {
            "ran_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "stale": [s.to_dict() for s in stale], "carried_from": expected_version})
        return EditResult(version, stale, False)
    if pool is None:
        return EditResult(version, [], False)
    stale = await rerun(segments, pool)
    await asyncio.to_thread(store.set_revision_checks, tid, version, {
        "ran_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "stale": [s.to_dict() for s in stale]})
    return EditResult(version, stale, True)


def stale_outputs(store: Any, tid: str) -> list[StaleOutput]:
    """The current revision's stale outputs (none when it was not re-run, or all match)."""
    version = store.trajectory_summary(tid).version
    for rev in store.list_revisions(tid):
        if rev.version == version and rev.checks:
            return [StaleOutput(**s) for s in rev.checks.get("stale", [])]
    return []
