"""What the Review tab shows, as small pure functions (tested without a browser).

The trajectory itself goes through :func:`startui.ui.render.messages`, the live tab's renderer;
this module only adds the review's marks (step numbers, +1/0/−1 labels, stale outputs) and the
panels beside it: the verdict, the progress line, the diff, the stale outputs, and the
conversions from the filter controls and the API's plain strings to the library's types.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from startui.store.queue import QueueFilter
from startui.trajectory import Segment, Trajectory
from startui.ui import render

# PRM800K's convention: +1 good, 0 neutral (fine, but no progress), −1 wrong; unlabelled is None.
LABEL_MARKS = {1: "✅", 0: "➖", -1: "❌"}
LABEL_CHOICES = [("✅ +1 good", "+1"), ("➖ 0 neutral", "0"), ("❌ −1 wrong", "-1"),
                 ("clear", "clear")]
STALE_MARK = "🕓 stale"
ANY = "any"
REVIEW_STATUSES = ["pending", "needs_review", "accepted", "rejected", "skipped"]
STATUS_NAMES = {"pending": "pending", "needs_review": "needs another review",
                "accepted": "accepted", "rejected": "rejected", "skipped": "skipped"}
VERDICTS = {True: "✅ correct", False: "❌ wrong", None: "➖ unscored"}


# --- the trajectory ------------------------------------------------------------------------

def segment_marks(traj: Trajectory, labels: Mapping[int, int | None] | None = None,
                  stale: Iterable[int] = ()) -> dict[int, str]:
    """A tag for every segment: its number (what the segment picker and the API call it), its
    step label, and a stale flag on an output the edited code no longer produces."""
    labels = labels or {}
    stale = set(stale)
    out = {}
    for i in range(len(traj.segments)):
        tag = f"#{i}"
        if (label := labels.get(i)) is not None:
            tag += f" {LABEL_MARKS[label]} {label:+d}" if label else f" {LABEL_MARKS[0]} 0"
        if i in stale:
            tag += f" {STALE_MARK}"
        out[i] = tag
    return out


def item_messages(item: Any) -> list[render.Message]:
    """The Item's trajectory through the live tab's renderer, with the review's marks."""
    if item is None:
        return []
    marks = segment_marks(item.trajectory, item.my_labels, [s.position for s in item.stale])
    return render.messages(item.trajectory, marks=marks)


def segment_choices(traj: Trajectory | None, labels: Mapping[int, int | None] | None = None,
                    ) -> list[tuple[str, int]]:
    """(label, index) pairs for the segment picker: number, kind, step label, a preview."""
    if traj is None:
        return []
    labels = labels or {}
    out = []
    for i, seg in enumerate(traj.segments):
        label = labels.get(i)
        tag = f" {LABEL_MARKS[label]}" if label is not None else ""
        preview = " ".join(seg.text.split())[:48]
        out.append((f"#{i} · {seg.kind}{tag} · {preview}", i))
    return out


def label_value(choice: str | None) -> int | None:
    """The label picker's value ("+1", "0", "-1", "clear") as a step label (None: unlabelled)."""
    if choice in (None, "", "clear"):
        return None
    value = int(str(choice).replace("−", "-"))
    if value not in LABEL_MARKS:
        raise ValueError(f"a step label is +1, 0 or -1, not {choice!r}")
    return value


def label_choice(value: int | None) -> str:
    return "clear" if value is None else f"{value:+d}" if value else "0"


# --- the panels beside it ------------------------------------------------------------------

def verdict_panel(item: Any) -> str:
    """The final answer next to the reference, the rule verdict, and how the answer was found."""
    if item is None:
        return ""
    answer = item.answer if item.answer not in (None, "") else "—"
    reference = item.reference if item.reference not in (None, "") else "—"
    how = f"extracted by *{item.extracted_by}*" if item.extracted_by else "no answer extracted"
    verdict = VERDICTS.get(item.correct, "➖")
    if item.correct is None and item.revisions:
        verdict += " since the edit"  # the rule scored the model's original, not this revision
    return (f"| final answer | reference |\n|---|---|\n| `{_cell(answer)}` | "
            f"`{_cell(reference)}` |\n\n**Rule verdict: {verdict}** · {how}")


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|").replace("`", "'")


def item_status(item: Any, editable: bool = True) -> str:
    """One line about the item on screen: its id, version, review status, who said what."""
    if item is None:
        return "**The queue is empty** for this filter: change the filter, or open an id."
    t = item.trajectory
    parts = [f"**{STATUS_NAMES.get(item.review_status, item.review_status)}**",
             f"id `{t.id}`", f"version {item.version}",
             f"{item.revisions} revision{'s' if item.revisions != 1 else ''}",
             f"{t.tool_calls} tool calls", f"{t.hints} hints"]
    decided = [r for r in item.reviews if r.decision and not r.undone_at]
    if decided:
        last = decided[-1]
        parts.append(f"last: {last.decision} by {last.reviewer}")
    line = " · ".join(parts)
    if item.stale:
        line += (f"\n\n🕓 **{len(item.stale)} stale output{'s' if len(item.stale) != 1 else ''}**"
                 ": take the new output, or accept with a reason")
    if not editable:
        line += "\n\n👁 read-only: your role may look, not decide, label or edit"
    return line


def progress_line(who: str, counts: Mapping[str, int], progress: Mapping[str, int],
                  *, note: str = "") -> str:
    """What never leaves the screen: who is reviewing (``who``, a line of markdown), their own
    count, the overall progress and the counts per review status (for the current filter)."""
    total = int(progress.get("total", counts.get("total", 0)) or 0)
    done = int(progress.get("done", counts.get("accepted", 0) + counts.get("rejected", 0)) or 0)
    pct = f" ({100 * done / total:.0f}%)" if total else ""
    per_status = " · ".join(f"{STATUS_NAMES[s]} {counts.get(s, 0)}" for s in REVIEW_STATUSES)
    line = (f"👤 {who} · you: **{progress.get('today', 0)}** today / "
            f"**{progress.get('mine', 0)}** in all · progress **{done} / {total}**{pct} "
            f"accepted or rejected · {per_status}")
    return line + (f"\n\n{note}" if note else "")


def stale_panel(stale: Sequence[Any]) -> str:
    """Each stale output: what is stored and what the edited code gives now."""
    if not stale:
        return "No stale outputs."
    out = []
    for s in stale:
        err = f" (now raises {s.error})" if s.error else ""
        out.append(f"**#{s.position}** (the output of cell #{s.code_position}){err}\n\n"
                   f"stored:\n```text\n{s.stored}\n```\nre-run gives:\n```text\n{s.fresh}\n```")
    return "\n\n".join(out)


def stale_choices(stale: Sequence[Any]) -> list[tuple[str, int]]:
    return [(f"#{s.position} (cell #{s.code_position})", s.position) for s in stale]


def diff_html(diffs: Sequence[Any], title: str) -> str:
    """A list of changed segments as HTML. Everything from a trajectory is escaped here; the
    library's inline diff (``d.html``) is escaped where it is made."""
    head = f"<h4>{html.escape(title)}</h4>"
    if not diffs:
        return head + "<p><em>no changes</em></p>"
    rows = []
    for d in diffs:
        where = "" if d.position is None else f" #{int(d.position)}"
        body = d.html if getattr(d, "html", "") else (
            f"<del>{html.escape(d.before)}</del><ins>{html.escape(d.after)}</ins>")
        rows.append(f"<div class='review-diff'><b>{html.escape(d.change)} "
                    f"{html.escape(d.kind)}{where}</b><pre>{body}</pre></div>")
    return head + "".join(rows)


def revisions_panel(revisions: Sequence[Any]) -> str:
    if not revisions:
        return "No edits: this is the model's original."
    lines = [f"- v{r.version} · {r.editor or 'the model (original)'} · "
             f"{(r.created_at or '')[:16].replace('T', ' ')}" + (f" · {r.note}" if r.note else "")
             for r in revisions]
    return "**Revisions**\n" + "\n".join(lines)


# --- controls and API strings → the library's types ----------------------------------------

def _tri(value: str | None) -> bool | None:
    return {"yes": True, "no": False}.get((value or ANY).lower())


def queue_filter(review_status: str | None = "pending", verdict: str | None = None,
                 run_id: str | None = None, source: str | None = None, kind: str | None = None,
                 has_tool_calls: str | None = None, human_hint: str | None = None,
                 ends_in_error: str | None = None, search: str | None = None,
                 sort: str | None = "oldest", seed: float | int | None = 0) -> QueueFilter:
    """The filter controls' values (``any`` or empty: no filter; yes/no for the three flags) as
    the library's :class:`QueueFilter`. Bad values raise ``ValueError`` with what is allowed."""
    def opt(v: str | None) -> str | None:
        v = (v or "").strip()
        return None if v in ("", ANY) else v

    return QueueFilter(review_status=opt(review_status), verdict=opt(verdict), run_id=opt(run_id),
                       source=opt(source), kind=opt(kind), has_tool_calls=_tri(has_tool_calls),
                       human_hint=_tri(human_hint), ends_in_error=_tri(ends_in_error),
                       search=opt(search), sort=opt(sort) or "oldest",
                       seed=int(seed or 0))


def parse_labels(value: Any) -> dict[int, int | None]:
    """Step labels from an API caller: ``{"3": -1}`` (JSON text or a dict), or a list of
    ``[position, label]`` pairs; a label is +1, 0, -1 or null (clear)."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError as e:
            raise ValueError(f"labels must be JSON like {{\"3\": -1}}: {e}") from None
    pairs = value.items() if isinstance(value, Mapping) else value
    out: dict[int, int | None] = {}
    try:
        for pos, label in pairs:
            out[int(pos)] = label_value(None if label is None else str(label))
    except (TypeError, ValueError) as e:
        raise ValueError(f"labels are {{position: +1 | 0 | -1 | null}}: {e}") from None
    return out


def parse_segments(value: Any) -> list[Segment]:
    """Segments from an API caller: JSON text or a list of ``{kind, text, source, meta}``."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise ValueError(f"segments must be a JSON list of {{kind, text}}: {e}") from None
    if not isinstance(value, list):
        raise ValueError("segments must be a list of {kind, text, source, meta}")
    try:
        return [Segment.from_dict(d) for d in value]
    except (KeyError, TypeError) as e:
        raise ValueError(f"each segment needs at least a kind and a text: {e}") from None


def item_dict(item: Any) -> dict[str, Any] | None:
    """The API's view of an Item: plain JSON."""
    if item is None:
        return None
    t = item.trajectory
    return {"id": t.id, "version": item.version, "review_status": item.review_status,
            "question": t.problem.question, "status": t.status,
            "segments": [s.to_dict() for s in t.segments], "answer": item.answer,
            "reference": item.reference, "correct": item.correct,
            "extracted_by": item.extracted_by,
            "my_labels": {str(k): v for k, v in (item.my_labels or {}).items()},
            "stale": [{"position": s.position, "stored": s.stored, "fresh": s.fresh,
                       "error": s.error, "code_position": s.code_position} for s in item.stale],
            "revisions": item.revisions,
            "reviews": [r.to_dict() if hasattr(r, "to_dict") else dict(r)
                        for r in item.reviews]}


def deep_link(trajectory_id: str | None, tab: str = "live") -> str:
    """The query string a page shows for a trajectory (``?t=ID``, ``&tab=review``)."""
    if not trajectory_id:
        return ""
    return f"?t={trajectory_id}" + ("&tab=review" if tab == "review" else "")
