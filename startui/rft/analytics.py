"""What a batch taught us, as plotly figures: the paper's sequential test-time scaling curve
(accuracy after 0, 1, 2 … end-of-reasoning hint rounds), tool use and correctness per hint
category, greedy vs hinted accuracy per run, people's hints against automatic ones, and the
lengths of right and wrong trajectories.

The functions split in two: ``collect`` reads the store once into small per-trajectory
:class:`Facts`, and pure functions turn facts into tables and figures — so the app's Dataset tab
and ``python -m startui report`` draw the same figures, and tests need no database.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from startui.answers import answers_match
from startui.bulk import collector_paused
from startui.rft import digest
from startui.rft.digest import answer_before, hint_facts, round_answers
from startui.rft.modes import GREEDY, mode_of
from startui.store.digests import DigestRecord
from startui.store.records import Record

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from startui.store import Store


@dataclass(frozen=True, slots=True)
class HintFact:
    category: str
    source: str  # auto | human
    used_tool: bool  # a cell ran before the next hint
    error_free: bool  # ... and every such cell ran without an error


@dataclass(slots=True)
class Facts:
    """One finished trajectory, reduced to what the figures need."""

    id: str
    run: str
    mode: str
    kind: str
    correct: bool | None  # the current rule score
    # correct after k rounds, k = 0..R; the hints in order (tuples: a draw keeps 100,000 Facts,
    # and equal hint sequences are one shared tuple, see _hints)
    rounds: tuple[bool | None, ...] = ()
    hints: tuple[HintFact, ...] = ()
    tool_calls: int = 0
    tokens: int = 0
    chars: int = 0  # of the completion: what the export's length filter measures


def facts(rec: Record) -> Facts:
    """A record's facts, from its text (the exact path; :func:`facts_of` is the same from its
    digest)."""
    traj = rec.trajectory
    segs = traj.segments
    f = Facts(id=traj.id, run=rec.run_id or "", mode=mode_of(traj), kind=traj.problem.kind,
              correct=rec.correct, tool_calls=traj.tool_calls, tokens=traj.tokens,
              chars=sum(len(s.render()) for s in segs),
              hints=tuple(HintFact(*h) for h in hint_facts(segs)))
    planned, round_at = round_answers(traj)
    if traj.problem.kind == "math" and traj.problem.answer is not None and (planned or round_at):
        total = max([planned, *round_at])
        rounds = []
        for k in range(total + 1):
            if k + 1 in round_at:  # the model had stopped; this is what it would have answered
                ok = answers_match(answer_before(segs, round_at[k + 1]), traj.problem.answer)
            else:  # no more rounds happened: the final answer stands
                ok = f.correct if f.correct is not None else answers_match(
                    answer_before(segs, len(segs)), traj.problem.answer)
            rounds.append(ok)
        f.rounds = tuple(rounds)
    return f


# A draw makes 100,000 Facts with a few hints each, out of few distinct hint sequences: each
# distinct one is made once, and shared (tuples of frozen hint facts).
_HINTS: dict[str, tuple[HintFact, ...]] = {}


def _hints(text: str) -> tuple[HintFact, ...]:
    """The hint facts of a digest's ``hints`` JSON text, made once per distinct text."""
    hs = _HINTS.get(text)
    if hs is None:
        if len(_HINTS) > 50_000:
            _HINTS.clear()
        hs = _HINTS[text] = tuple(HintFact(*h) for h in json.loads(text))
    return hs


def facts_of(rec: DigestRecord) -> Facts:
    """A trajectory's facts from its digest (no text): equal to :func:`facts` of its record.
    100,000 of them are made per draw, so equal hint facts are one shared object."""
    d = rec.data
    if d is None:
        raise ValueError(f"trajectory {rec.id} has no digest: read it with "
                         "startui.rft.digest.current")
    score = rec.standing.score
    correct = None if score is None else score.correct
    rounds = digest.round_correct(d, rec.kind, rec.reference, correct) if (
        d["planned"] or d["rounds"]) else ()
    return Facts(rec.id, rec.run_id or "", d["mode"], rec.kind, correct, rounds,  # positional:
                 _hints(d["hints"]), d["tool_calls"], rec.tokens, d["chars"])  # 100,000 a draw


def collect(store: Store, run_ids: Sequence[str]) -> list[Facts]:
    """The facts of the runs' finished trajectories, from their digests."""
    with collector_paused():
        return [facts_of(r) for r in digest.current(store, run_ids) if r.status == "finished"]


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


def _by_hint(data: Iterable[Facts], key: Callable[[HintFact], str],
             ) -> tuple[dict[str, list[int]], list[tuple[frozenset[str], bool | None]]]:
    """Per value of ``key`` (a hint's category or source): [hints, of which the model ran code
    after, of which all that code ran cleanly]; and per trajectory, the values among its hints
    with its rule verdict. Each distinct hint sequence is summed once (a draw's Facts share
    them)."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    per_traj = []
    memo: dict[int, tuple[Any, tuple[tuple[str, int, int, int], ...], frozenset[str]]] = {}
    for f in data:
        got = memo.get(id(f.hints))
        if got is None:
            mine: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
            for h in f.hints:
                c = mine[key(h)]
                c[0], c[1], c[2] = c[0] + 1, c[1] + h.used_tool, c[2] + h.error_free
            got = memo[id(f.hints)] = (f.hints, tuple((k, *c) for k, c in mine.items()),
                                       frozenset(mine))
        for k, n, used, clean in got[1]:
            c = counts[k]
            c[0], c[1], c[2] = c[0] + n, c[1] + used, c[2] + clean
        per_traj.append((got[2], f.correct))
    return counts, per_traj


def category_table(data: Iterable[Facts]) -> list[dict[str, Any]]:
    """Per hint category: how often the model went on to run code, whether that code ran
    cleanly, and how often trajectories with such a hint ended correct."""
    counts, per_traj = _by_hint(data, lambda h: h.category)
    trajs: dict[str, list[bool | None]] = defaultdict(list)
    for cats, correct in per_traj:
        for cat in cats:
            trajs[cat].append(correct)
    rows = []
    for cat in sorted(counts):
        n, used, clean = counts[cat]
        correct, scored = _rate(trajs[cat])
        rows.append({"category": cat, "hints": n, "tool_use_rate": used / n,
                     "error_free_rate": clean / n, "correct_rate": correct,
                     "trajectories": len(trajs[cat]), "scored": scored})
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
    counts, per_traj = _by_hint(data, lambda h: h.source)
    trajs: dict[str, list[bool | None]] = defaultdict(list)
    for sources, correct in per_traj:
        group = "human" if "human" in sources else "auto" if sources else "none"
        trajs[group].append(correct)
    rows = []
    for src in [k for k in SOURCES if k in counts or k in trajs]:
        n, used, clean = counts[src] if src in counts else (0, 0, 0)
        correct, scored = _rate(trajs.get(src, []))
        rows.append({"source": src, "name": SOURCES[src], "hints": n,
                     "tool_use_rate": used / n if n else None,
                     "error_free_rate": clean / n if n else None,
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
    import numpy as np
    import plotly.graph_objects as go

    fig = go.Figure()
    by: dict[str, list[int]] = defaultdict(list)
    for f in data:
        by[_verdict(f)].append(f.chars)
    colors = {"correct": "#2da44e", "wrong": "#cf222e", "unscored": "#8c959f"}
    for verdict in ("correct", "wrong", "unscored"):
        if by.get(verdict):  # an array: 100,000 lengths validate and serialise 5x faster
            fig.add_trace(go.Histogram(x=np.asarray(by[verdict]), name=verdict, opacity=0.7,
                                       marker_color=colors[verdict], nbinsx=30))
    fig.update_layout(title="Trajectory lengths by rule verdict", barmode="overlay",
                      xaxis={"title": "completion length (characters)"},
                      yaxis={"title": "trajectories"}, template="plotly_white")
    return fig


def figures(data: Sequence[Facts]) -> dict[str, go.Figure]:
    return {"scaling": scaling_figure(data), "categories": category_figure(data),
            "modes": modes_figure(data), "sources": sources_figure(data),
            "lengths": lengths_figure(data)}
