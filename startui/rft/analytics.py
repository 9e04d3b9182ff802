"""What a batch taught us, as plotly figures: the paper's sequential test-time scaling curve
(accuracy after 0, 1, 2 … end-of-reasoning hint rounds), tool use and correctness per hint
category, greedy vs hinted accuracy per run, people's hints against automatic ones, and the
lengths of right and wrong trajectories.

The functions split in two: ``collect`` reads the store once into small per-trajectory
:class:`Facts`, and pure functions turn facts into tables and figures — so the app's Dataset tab
and ``python -m startui report`` draw the same figures, and tests need no database.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from startui.answers import answers_match, extract_answer
from startui.rft.select import GREEDY, mode_of
from startui.store.records import Record
from startui.trajectory import TOOL_LIMIT_ERROR

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from startui.store import Store


@dataclass
class HintFact:
    category: str
    source: str  # auto | human
    used_tool: bool  # a cell ran before the next hint
    error_free: bool  # ... and every such cell ran without an error


@dataclass
class Facts:
    """One finished trajectory, reduced to what the figures need."""

    id: str
    run: str
    mode: str
    kind: str
    correct: bool | None  # the current rule score
    rounds: list[bool | None] = field(default_factory=list)  # correct after k rounds, k = 0..R
    hints: list[HintFact] = field(default_factory=list)
    tool_calls: int = 0
    tokens: int = 0
    chars: int = 0  # of the completion: what the export's length filter measures


def _answer_before(segments: Sequence[Any], end: int) -> str | None:
    prose = [s.text for s in segments[:end] if s.source == "model" and s.kind in ("think",
                                                                                  "answer")]
    for text in reversed(prose):  # the last paragraph that says something answer-like
        answer, _ = extract_answer(text)
        if answer is not None:
            return answer
    return None


def facts(rec: Record) -> Facts:
    traj = rec.trajectory
    segs = traj.segments
    f = Facts(id=traj.id, run=rec.run_id or "", mode=mode_of(traj), kind=traj.problem.kind,
              correct=rec.correct, tool_calls=traj.tool_calls, tokens=traj.tokens,
              chars=sum(len(s.render()) for s in segs))
    hint_at = [i for i, s in enumerate(segs) if s.kind == "hint"]
    for n, i in enumerate(hint_at):
        end = hint_at[n + 1] if n + 1 < len(hint_at) else len(segs)
        outs = [s for s in segs[i + 1:end] if s.kind == "output" and s.source == "kernel"
                and s.meta.get("error") != TOOL_LIMIT_ERROR]
        h = segs[i]
        f.hints.append(HintFact(str(h.meta.get("category") or h.source), h.source, bool(outs),
                                bool(outs) and not any(o.meta.get("error") for o in outs)))
    hints_cfg = traj.settings.get("hints") if isinstance(traj.settings.get("hints"), dict) else {}
    planned = int((hints_cfg or {}).get("rounds") or 0)
    round_at = {int(s.meta["round"]): i for i, s in enumerate(segs)
                if s.kind == "hint" and isinstance(s.meta.get("round"), int)}
    if traj.problem.kind == "math" and traj.problem.answer is not None and (planned or round_at):
        total = max([planned, *round_at])
        for k in range(total + 1):
            if k + 1 in round_at:  # the model had stopped; this is what it would have answered
                ok = answers_match(_answer_before(segs, round_at[k + 1]), traj.problem.answer)
            else:  # no more rounds happened: the final answer stands
                ok = f.correct if f.correct is not None else answers_match(
                    _answer_before(segs, len(segs)), traj.problem.answer)
            f.rounds.append(ok)
    return f


def collect(store: Store, run_ids: Sequence[str]) -> list[Facts]:
    return [facts(rec) for rec in store.iter_records(run_ids, status="finished")]


# --- tables ----------------------------------------------------------------------------------

def _rate(xs: Iterable[bool | None]) -> tuple[float | None, int]:
    vals = [x for x in xs if x is not None]
    return (sum(vals) / len(vals) if vals else None), len(vals)


def scaling_curve(data: Iterable[Facts]) -> list[dict[str, Any]]:
    """Accuracy after k hint rounds, per run: one row per (run, k)."""
    by: dict[tuple[str, int], list[bool | None]] = defaultdict(list)
    for f in data:
        for k, ok in enumerate(f.rounds):
            by[(f.run, k)].append(ok)
    rows = []
    for (run, k), xs in sorted(by.items()):
        acc, n = _rate(xs)
        rows.append({"run": run, "rounds": k, "accuracy": acc, "n": n})
    return rows


def category_table(data: Iterable[Facts]) -> list[dict[str, Any]]:
    """Per hint category: how often the model went on to run code, whether that code ran
    cleanly, and how often trajectories with such a hint ended correct."""
    hints: dict[str, list[HintFact]] = defaultdict(list)
    trajs: dict[str, list[bool | None]] = defaultdict(list)
    for f in data:
        for h in f.hints:
            hints[h.category].append(h)
        for cat in {h.category for h in f.hints}:
            trajs[cat].append(f.correct)
    rows = []
    for cat in sorted(hints):
        hs = hints[cat]
        correct, scored = _rate(trajs[cat])
        rows.append({"category": cat, "hints": len(hs),
                     "tool_use_rate": sum(h.used_tool for h in hs) / len(hs),
                     "error_free_rate": sum(h.error_free for h in hs) / len(hs),
                     "correct_rate": correct, "trajectories": len(trajs[cat]),
                     "scored": scored})
    return rows


def mode_table(data: Iterable[Facts]) -> list[dict[str, Any]]:
    """Accuracy per (run, mode): the greedy baseline next to Hint-infer."""
    by: dict[tuple[str, str], list[Facts]] = defaultdict(list)
    for f in data:
        by[(f.run, f.mode)].append(f)
    rows = []
    for (run, mode), fs in sorted(by.items()):
        acc, scored = _rate(f.correct for f in fs)
        rows.append({"run": run, "mode": mode, "trajectories": len(fs), "scored": scored,
                     "accuracy": acc,
                     "tool_calls_mean": sum(f.tool_calls for f in fs) / len(fs),
                     "hints_mean": sum(len(f.hints) for f in fs) / len(fs)})
    return rows


SOURCES = {"auto": "automatic hints only", "human": "a person's hint", "none": "no hint"}


def source_table(data: Iterable[Facts]) -> list[dict[str, Any]]:
    """People's hints against the automatic ones: per hint source, how often the model went on
    to run code and whether it ran cleanly; per trajectory (with a person's hint, with only
    automatic hints, with none), how often it ended correct."""
    hints: dict[str, list[HintFact]] = defaultdict(list)
    trajs: dict[str, list[bool | None]] = defaultdict(list)
    for f in data:
        for h in f.hints:
            hints[h.source].append(h)
        sources = {h.source for h in f.hints}
        group = "human" if "human" in sources else "auto" if sources else "none"
        trajs[group].append(f.correct)
    rows = []
    for src in [k for k in SOURCES if k in hints or k in trajs]:
        hs = hints.get(src, [])
        correct, scored = _rate(trajs.get(src, []))
        rows.append({"source": src, "name": SOURCES[src], "hints": len(hs),
                     "tool_use_rate": sum(h.used_tool for h in hs) / len(hs) if hs else None,
                     "error_free_rate": sum(h.error_free for h in hs) / len(hs) if hs else None,
                     "trajectories": len(trajs.get(src, [])), "scored": scored,
                     "correct_rate": correct})
    return rows


def _verdict(f: Facts) -> str:
    return "unscored" if f.correct is None else "correct" if f.correct else "wrong"


def length_table(data: Iterable[Facts]) -> list[dict[str, Any]]:
    """Completion lengths (characters; tokens where the backend counted them) per mode and rule
    verdict: long wrong trajectories are what the length filter and reviewers look at."""
    by: dict[tuple[str, str], list[Facts]] = defaultdict(list)
    for f in data:
        by[(f.mode, _verdict(f))].append(f)
    rows = []
    for (mode, verdict), fs in sorted(by.items()):
        chars = sorted(f.chars for f in fs)
        rows.append({"mode": mode, "verdict": verdict, "trajectories": len(fs),
                     "chars_median": chars[len(chars) // 2], "chars_max": chars[-1],
                     "tokens_mean": sum(f.tokens for f in fs) / len(fs),
                     "tool_calls_mean": sum(f.tool_calls for f in fs) / len(fs)})
    return rows


# --- figures ---------------------------------------------------------------------------------

def _pct(x: float | None) -> float | None:
    return None if x is None else round(100 * x, 2)


def scaling_figure(data: Iterable[Facts]) -> go.Figure:
    import plotly.graph_objects as go

    rows = scaling_curve(data)
    fig = go.Figure()
    for run in sorted({r["run"] for r in rows}):
        pts = [r for r in rows if r["run"] == run]
        fig.add_trace(go.Scatter(
            x=[r["rounds"] for r in pts], y=[_pct(r["accuracy"]) for r in pts],
            mode="lines+markers", name=run, customdata=[r["n"] for r in pts],
            hovertemplate="%{y:.1f}% after %{x} rounds (n=%{customdata})<extra>" + run
            + "</extra>"))
    fig.update_layout(title="Sequential test-time scaling: accuracy vs hint rounds (math)",
                      xaxis={"title": "end-of-reasoning hint rounds", "dtick": 1},
                      yaxis={"title": "accuracy (%)", "range": [0, 100]},
                      template="plotly_white")
    return fig


def category_figure(data: Iterable[Facts]) -> go.Figure:
    import plotly.graph_objects as go

    rows = category_table(data)
    cats = [r["category"] for r in rows]
    fig = go.Figure()
    for key, name in (("tool_use_rate", "ran code after the hint"),
                      ("error_free_rate", "code ran without error"),
                      ("correct_rate", "trajectory correct")):
        fig.add_trace(go.Bar(x=cats, y=[_pct(r[key]) for r in rows], name=name,
                             customdata=[r["hints"] for r in rows],
                             hovertemplate="%{x}: %{y:.1f}% (%{customdata} hints)"))
    fig.update_layout(title="Tool use and correctness per hint category", barmode="group",
                      yaxis={"title": "%", "range": [0, 100]}, template="plotly_white")
    return fig


def modes_figure(data: Iterable[Facts]) -> go.Figure:
    import plotly.graph_objects as go

    rows = mode_table(data)
    fig = go.Figure()
    for mode in sorted({r["mode"] for r in rows}, key=lambda m: (m != GREEDY, m)):
        pts = [r for r in rows if r["mode"] == mode]
        fig.add_trace(go.Bar(x=[r["run"] for r in pts], y=[_pct(r["accuracy"]) for r in pts],
                             name=mode, customdata=[r["scored"] for r in pts],
                             hovertemplate="%{x} " + mode + ": %{y:.1f}% (%{customdata} scored)"))
    fig.update_layout(title="Greedy vs hinted accuracy per run", barmode="group",
                      yaxis={"title": "accuracy (%)", "range": [0, 100]},
                      template="plotly_white")
    return fig


def sources_figure(data: Iterable[Facts]) -> go.Figure:
    import plotly.graph_objects as go

    rows = source_table(data)
    names = [r["name"] for r in rows]
    fig = go.Figure()
    for key, name in (("tool_use_rate", "ran code after the hint"),
                      ("error_free_rate", "code ran without error"),
                      ("correct_rate", "trajectory correct")):
        fig.add_trace(go.Bar(x=names, y=[_pct(r[key]) for r in rows], name=name,
                             customdata=[[r["hints"], r["trajectories"]] for r in rows],
                             hovertemplate="%{x}: %{y:.1f}% (%{customdata[0]} hints, "
                                           "%{customdata[1]} trajectories)"))
    fig.update_layout(title="Human vs automatic hints", barmode="group",
                      yaxis={"title": "%", "range": [0, 100]}, template="plotly_white")
    return fig


def lengths_figure(data: Iterable[Facts]) -> go.Figure:
    import plotly.graph_objects as go

    fig = go.Figure()
    by: dict[str, list[int]] = defaultdict(list)
    for f in data:
        by[_verdict(f)].append(f.chars)
    colors = {"correct": "#2da44e", "wrong": "#cf222e", "unscored": "#8c959f"}
    for verdict in ("correct", "wrong", "unscored"):
        if by.get(verdict):
            fig.add_trace(go.Histogram(x=by[verdict], name=verdict, opacity=0.7,
                                       marker_color=colors[verdict], nbinsx=30))
    fig.update_layout(title="Trajectory lengths by rule verdict", barmode="overlay",
                      xaxis={"title": "completion length (characters)"},
                      yaxis={"title": "trajectories"}, template="plotly_white")
    return fig


def figures(data: Sequence[Facts]) -> dict[str, go.Figure]:
    return {"scaling": scaling_figure(data), "categories": category_figure(data),
            "modes": modes_figure(data), "sources": sources_figure(data),
            "lengths": lengths_figure(data)}
