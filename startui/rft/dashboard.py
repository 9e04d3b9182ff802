"""The dashboards of a set of runs (and of one review campaign): what the app's Dataset tab shows
and ``python -m startui report`` writes, drawn by the same functions.

:func:`gather` reads the store once — every trajectory of the runs as its digest (the facts
taken from its text once, :mod:`startui.rft.digest`), with its scores and reviews — into a
:class:`Dashboard`: the per-trajectory :class:`~startui.rft.analytics.Facts`, the funnel
(generated → scored → reviewed → accepted → exported, where "exported" is what the export's
selection keeps, by :func:`startui.rft.select.select_candidates`, the code
``python -m startui export`` runs), review throughput per reviewer per day, and each campaign's
agreement as it grew. Pure functions turn that into tables and plotly figures.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from startui.bulk import collector_paused
from startui.review.agreement import agreement
from startui.rft import analytics, digest
from startui.rft.analytics import Facts
from startui.rft.select import (
    Candidate,
    SelectConfig,
    SelectionReport,
    candidate,
    candidate_of,
    select_candidates,
)

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from startui.store import Store

# (key, what the figure calls it): the path from a problem to a training row
FUNNEL = (("generated", "generated"), ("scored", "scored by rule"),
          ("reviewed", "reviewed by people"), ("accepted", "accepted"),
          ("exported", "selected for export"))
Rating = tuple[str, str, str, float | None, datetime]
LabelTime = tuple[str, int, int, str, int, datetime]  # (item, version, step, reviewer, label, when)


@dataclass
class Dashboard:
    runs: list[str]  # run ids
    campaign: str | None
    facts: list[Facts]
    funnel: dict[str, int]
    selection: SelectionReport
    throughput: list[dict[str, Any]] = field(default_factory=list)
    agreement: list[dict[str, Any]] = field(default_factory=list)


def gather(store: Store, runs: Sequence[str] | None = None, *, campaign: str | None = None,
           select_config: SelectConfig | None = None, from_text: bool = False) -> Dashboard:
    """The dashboards of ``runs`` (names or ids; None or empty: every run), restricted to the
    items of ``campaign`` when one is named. "Exported" counts what the export's selection
    (``select_config``, default D_START) keeps of them.

    Read from the trajectories' digests (:mod:`startui.rft.digest`; the first read of an old
    store computes them once), never their text, unless ``from_text`` or filters the digests
    cannot answer ask for the slow, exact path."""
    with collector_paused():  # what is built and dropped in _gather is never walked
        return _gather(store, runs, campaign, select_config or SelectConfig(), from_text)


def _gather(store: Store, runs: Sequence[str] | None, campaign: str | None, cfg: SelectConfig,
            from_text: bool) -> Dashboard:
    run_ids = store.resolve_runs(list(runs)) if runs else [r["id"] for r in store.list_runs()]
    named = run_ids if runs else None  # None: every trajectory, run or not
    items = set(store.campaign_votes(campaign)[1]) if campaign else None
    data: list[Facts] = []
    by_problem: dict[str, list[Candidate]] = defaultdict(list)
    if from_text or not digest.answers(cfg.filters):
        for rec in store.iter_records(run_ids) if run_ids else ():
            c = candidate(rec, cfg)  # the selection sees every record: D_seed needs baselines
            by_problem[c.problem_id].append(c)
            if rec.trajectory.status == "finished" and (items is None or c.id in items):
                data.append(analytics.facts(rec))
    else:
        check, facts_of, keep = digest.checker(cfg.filters), analytics.facts_of, data.append
        for r in digest.current(store, run_ids):
            c = candidate_of(r, cfg, check)
            by_problem[c.problem_id].append(c)
            if r.status == "finished" and (items is None or c.id in items):
                keep(facts_of(r))
    selection = select_candidates(by_problem, cfg)
    exported = len(selection.ids) if items is None else len(items.intersection(selection.ids))
    funnel = {**store.funnel_counts(named, campaign=campaign), "exported": exported}
    names = [campaign] if campaign else [c.name for c in store.list_campaigns()]
    timeline = []
    for name in names:
        c = store.get_campaign(name)
        timeline += agreement_timeline(c.name, store.campaign_rating_times(c.id), c.reviewers,
                                       store.campaign_label_times(c.id))
    return Dashboard(runs=run_ids, campaign=campaign, facts=data, funnel=funnel,
                     selection=selection.report,
                     throughput=store.review_throughput(named, campaign=campaign),
                     agreement=timeline)


# --- tables ----------------------------------------------------------------------------------

def funnel_table(funnel: dict[str, int]) -> list[dict[str, Any]]:
    """Each stage with its count and its share of what was generated."""
    total = funnel.get("generated", 0)
    return [{"stage": name, "trajectories": funnel.get(key, 0),
             "share": funnel.get(key, 0) / total if total else None} for key, name in FUNNEL]


def throughput_table(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per reviewer: decisions in all, days they reviewed on, decisions per such day."""
    by: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        by[r["reviewer"]].append(int(r["decisions"]))
    return [{"reviewer": who, "decisions": sum(ns), "days": len(ns),
             "per_day": sum(ns) / len(ns)} for who, ns in sorted(by.items())]


def agreement_timeline(campaign: str, ratings: Sequence[Rating],
                       reviewers: Iterable[str] = (),
                       labels: Sequence[LabelTime] = ()) -> list[dict[str, Any]]:
    """A campaign's agreement at the end of each UTC day it had votes or step labels on, from
    every vote and label made until then (each reviewer's latest vote per item, as
    :func:`startui.review.agreement.campaign_agreement` takes them): raw agreement, Light's
    kappa and Krippendorff's alpha on accept/reject, alpha (ordinal) on the 1–5 score, and
    alpha on the step labels (+1/0/−1 per step of a revision, nominal). A day computed before
    from the same votes and labels is taken from memory (a redraw computes today's)."""
    votes = sorted(((r[4].date().isoformat(), r) for r in ratings), key=lambda x: x[1][4])
    marks = sorted(((lb[5].date().isoformat(), lb) for lb in labels), key=lambda x: x[1][5])
    rows = []
    decisions: dict[str, dict[str, str]] = defaultdict(dict)
    scores: dict[str, dict[str, float]] = defaultdict(dict)
    steps: dict[tuple[str, int, int], dict[str, int]] = defaultdict(dict)
    team = tuple(sorted(reviewers))
    seen: Any = (campaign, team)  # everything the day's figures are made of, hashed as it grows
    i = j = 0
    for day in sorted({d for d, _ in votes} | {d for d, _ in marks}):
        while i < len(votes) and votes[i][0] <= day:
            tid, reviewer, decision, score, _ = votes[i][1]
            decisions[tid][reviewer] = decision
            if score is not None:
                scores[tid][reviewer] = score
            seen = hash((seen, votes[i][1]))
            i += 1
        while j < len(marks) and marks[j][0] <= day:
            tid, version, position, reviewer, label, _ = marks[j][1]
            steps[(tid, version, position)][reviewer] = label
            seen = hash((seen, marks[j][1]))
            j += 1
        key = (campaign, day, i, j, seen)
        row = _DAYS.get(key)
        if row is None:  # a past day's figures change only when its votes do (an undo)
            rep = agreement(decisions, scores=scores, steps=steps, reviewers=team,
                            campaign=campaign, per_pair=False)
            row = {"campaign": campaign, "day": day, "items": rep.items,
                   "agreement": rep.agreement.value, "kappa": rep.kappa.value,
                   "alpha": rep.alpha.value, "score_alpha": rep.score_alpha.value,
                   "steps_alpha": rep.steps_alpha.value}
            if len(_DAYS) >= 2048:
                _DAYS.clear()
            _DAYS[key] = row
        rows.append(dict(row))
    return rows


# Each day's agreement, by everything it was computed from (campaign, reviewers, every vote and
# label up to that day): a redraw recomputes only the days whose votes changed (today's).
_DAYS: dict[tuple[Any, ...], dict[str, Any]] = {}


# --- figures ---------------------------------------------------------------------------------

def funnel_figure(funnel: dict[str, int]) -> go.Figure:
    import plotly.graph_objects as go

    rows = funnel_table(funnel)
    fig = go.Figure(go.Funnel(y=[r["stage"] for r in rows], x=[r["trajectories"] for r in rows],
                              textinfo="value+percent initial"))
    fig.update_layout(title="From generated to exported", template="plotly_white")
    return fig


def throughput_figure(rows: Sequence[dict[str, Any]]) -> go.Figure:
    import plotly.graph_objects as go

    fig = go.Figure()
    for who in sorted({r["reviewer"] for r in rows}):
        pts = [r for r in rows if r["reviewer"] == who]
        fig.add_trace(go.Bar(x=[r["day"] for r in pts], y=[r["decisions"] for r in pts],
                             name=who, hovertemplate="%{x}: %{y} decisions<extra>" + who
                             + "</extra>"))
    fig.update_layout(title="Review throughput per reviewer per day", barmode="group",
                      xaxis={"title": "day (UTC)", "type": "category"},
                      yaxis={"title": "decisions"}, template="plotly_white")
    return fig


def agreement_figure(rows: Sequence[dict[str, Any]]) -> go.Figure:
    import plotly.graph_objects as go

    fig = go.Figure()
    for name in sorted({r["campaign"] for r in rows}):
        pts = [r for r in rows if r["campaign"] == name]
        for key, what, dash in (("kappa", "kappa", "solid"), ("alpha", "alpha", "dot"),
                                ("score_alpha", "score alpha", "dash"),
                                ("steps_alpha", "step-label alpha", "dashdot")):
            fig.add_trace(go.Scatter(
                x=[r["day"] for r in pts], y=[r[key] for r in pts], mode="lines+markers",
                name=f"{name}: {what}", line={"dash": dash}, customdata=[r["items"] for r in pts],
                hovertemplate="%{y:.3f} on %{x} (%{customdata} items)<extra>" + name
                + "</extra>"))
    fig.update_layout(title="Agreement over time (decisions: kappa, alpha; scores, step "
                            "labels: alpha)",
                      xaxis={"title": "day (UTC)", "type": "category"},
                      yaxis={"title": "coefficient", "range": [-1, 1]}, template="plotly_white")
    return fig


def figures(d: Dashboard) -> dict[str, go.Figure]:
    """Every figure, in the order the tab and the report show them."""
    with collector_paused():
        return {"funnel": funnel_figure(d.funnel), **analytics.figures(d.facts),
                "throughput": throughput_figure(d.throughput),
                "agreement": agreement_figure(d.agreement)}
