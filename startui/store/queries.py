"""Read-side queries of the trajectory store: lists of recent runs, the review queue, export scans
and counts. Functions take a ``Session`` (``Store`` runs them on reader connections, which never
wait for the writer under SQLite WAL).

The review queue is the hot path of the review UI; it is a range scan of
``ix_trajectories_queue`` / ``ix_trajectories_run_queue`` (see bench/bench_store.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, func, select, tuple_

from startui.store.models import (
    ArtifactRow,
    CampaignItemRow,
    CampaignRow,
    ProblemRow,
    ReviewRow,
    RunRow,
    SegmentRow,
    StepLabelRow,
    TrajectoryRow,
)
from startui.store.repository import NotFoundError, format_ts, load_many, parse_ts
from startui.trajectory import STATUSES, Trajectory

PREVIEW_CHARS = 200


@dataclass
class TrajectorySummary:
    """One line of a "recent runs" list or the review queue: no segments, no prompt."""

    id: str
    problem_id: str
    question: str
    kind: str
    status: str
    review_status: str
    answer: str | None
    tokens: int
    tool_calls: int
    hints: int
    segments: int
    version: int
    run_id: str | None
    parent_id: str | None
    branch_point: int | None
    error: str | None
    created_at: str | None
    updated_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


T, P = TrajectoryRow, ProblemRow


def _summary_select() -> Select[Any]:
    return select(
        T.id, T.problem_id, func.substr(P.question, 1, PREVIEW_CHARS).label("question"),
        P.kind, T.status, T.review_status, T.answer, T.tokens, T.tool_calls, T.hints,
        T.n_segments, T.version, T.run_id, T.parent_id, T.branch_point, T.error, T.created_at,
        T.updated_at,
    ).join(P, P.id == T.problem_id)


def _summary(r: Any) -> TrajectorySummary:
    return TrajectorySummary(
        id=r.id, problem_id=r.problem_id, question=r.question, kind=r.kind, status=r.status,
        review_status=r.review_status, answer=r.answer, tokens=r.tokens,
        tool_calls=r.tool_calls, hints=r.hints, segments=r.n_segments, version=r.version,
        run_id=r.run_id, parent_id=r.parent_id, branch_point=r.branch_point, error=r.error,
        created_at=format_ts(r.created_at), updated_at=format_ts(r.updated_at))


def _filters(q: Select[Any], *, status: str | None = None, problem_id: str | None = None,
             run_id: str | None = None, review_status: str | None = None,
             parent_id: str | None = None, kind: str | None = None,
             visitor: str | None = None) -> Select[Any]:
    if status is not None:
        q = q.where(T.status == status)
    if problem_id is not None:
        q = q.where(T.problem_id == problem_id)
    if run_id is not None:
        q = q.where(T.run_id == run_id)
    if review_status is not None:
        q = q.where(T.review_status == review_status)
    if parent_id is not None:
        q = q.where(T.parent_id == parent_id)
    if kind is not None:
        q = q.where(P.kind == kind)
    if visitor is not None:  # the public demo's "your runs": kept in the trajectory's settings
        q = q.where(T.settings["visitor"].as_string() == visitor)
    return q


def list_trajectories(s: Any, *, limit: int = 50, offset: int = 0, newest_first: bool = True,
                      **filters: Any) -> list[TrajectorySummary]:
    order = (T.created_at.desc(), T.id.desc()) if newest_first else (T.created_at, T.id)
    q = _filters(_summary_select(), **filters).order_by(*order).limit(limit).offset(offset)
    return [_summary(r) for r in s.execute(q)]


def summary(s: Any, tid: str) -> TrajectorySummary:
    r = s.execute(_summary_select().where(T.id == tid)).first()
    if r is None:
        raise NotFoundError(f"no trajectory {tid!r} in the store")
    return _summary(r)


def count_trajectories(s: Any, **filters: Any) -> int:
    q = select(func.count()).select_from(T)
    if filters.get("kind") is not None:
        q = q.join(P, P.id == T.problem_id)
    return s.scalar(_filters(q, **filters))


def review_queue(s: Any, *, run_id: str | None = None, kind: str | None = None,
                 status: str = "finished", review_status: str = "pending", limit: int = 50,
                 offset: int = 0, after: tuple[str, str] | None = None,
                 ) -> list[TrajectorySummary]:
    """A page of trajectories waiting for review, oldest first. ``after`` = (created_at, id) of
    the last row of the previous page is keyset pagination: constant time at any depth, and no
    row skipped or repeated when others are reviewed meanwhile (OFFSET shifts)."""
    q = _filters(_summary_select(), status=status, review_status=review_status, run_id=run_id,
                 kind=kind)
    if after is not None:
        q = q.where(tuple_(T.created_at, T.id) > tuple_(parse_ts(after[0]), after[1]))
    return [_summary(r) for r in s.execute(
        q.order_by(T.created_at, T.id).limit(limit).offset(offset))]


def iter_trajectories(session_factory: Any, *, batch_size: int = 200, **filters: Any,
                      ) -> Iterator[Trajectory]:
    """Every matching trajectory, oldest first, fully loaded, a batch per short read transaction
    (keyset-paginated, so a long export never holds a snapshot or a lock for its whole run)."""
    last: tuple[Any, str] | None = None
    while True:
        with session_factory() as s:
            q = _filters(select(T.__table__), **{k: v for k, v in filters.items()
                                                  if k != "kind"})
            if filters.get("kind") is not None:
                q = q.join(P, P.id == T.problem_id).where(P.kind == filters["kind"])
            if last is not None:
                q = q.where(tuple_(T.created_at, T.id) > tuple_(*last))
            rows = s.execute(q.order_by(T.created_at, T.id).limit(batch_size)).all()
            batch = load_many(s, rows)
        if not rows:
            return
        yield from batch
        last = (rows[-1].created_at, rows[-1].id)


def trajectory_statuses(s: Any, run_id: str) -> dict[str, str]:
    T = TrajectoryRow
    return dict(s.execute(select(T.id, T.status).where(T.run_id == run_id)).all())


def stats(s: Any) -> dict[str, Any]:
    """Counts for ``python -m startui stats`` and dashboards (cheap: aggregates of denormalized
    counters, plus one count of the segments table)."""
    by_status = {st: 0 for st in STATUSES}
    totals = {"tool_calls": 0, "hints": 0, "tokens": 0}
    for st, n, tc, h, tok in s.execute(
            select(T.status, func.count(), func.sum(T.tool_calls), func.sum(T.hints),
                   func.sum(T.tokens)).group_by(T.status)):
        by_status[st] = n
        totals["tool_calls"] += tc or 0
        totals["hints"] += h or 0
        totals["tokens"] += tok or 0
    review = dict(s.execute(select(T.review_status, func.count()).group_by(T.review_status)
                            ).all())
    problems_by_kind = dict(s.execute(select(P.kind, func.count()).group_by(P.kind)).all())
    return {
        "problems": sum(problems_by_kind.values()),
        "problems_by_kind": problems_by_kind,
        "trajectories": sum(by_status.values()),
        "by_status": by_status,
        "segments": s.scalar(select(func.count()).select_from(SegmentRow)),
        **totals,
        "accepted": review.get("accepted", 0),
        "rejected": review.get("rejected", 0),
        "unreviewed": review.get("pending", 0),
        "reviews": s.scalar(select(func.count()).select_from(ReviewRow)),
        "runs": s.scalar(select(func.count()).select_from(RunRow)),
        "artifacts": s.scalar(select(func.count()).select_from(ArtifactRow)),
    }


# --- dashboards (the Dataset tab, ``python -m startui report``) ------------------------------

def _in_runs(q: Select[Any], run_ids: Sequence[str] | None) -> Select[Any]:
    return q if run_ids is None else q.where(T.run_id.in_(list(run_ids)))


def _in_campaign(q: Select[Any], campaign_id: int | None) -> Select[Any]:
    if campaign_id is None:
        return q
    return q.where(T.id.in_(select(CampaignItemRow.trajectory_id)
                            .where(CampaignItemRow.campaign_id == campaign_id)))


def funnel_counts(s: Any, *, run_ids: Sequence[str] | None = None,
                  campaign_id: int | None = None) -> dict[str, int]:
    """How far the trajectories of the runs (``None``: all) and of one campaign's items got:
    generated, finished, scored (a current rule verdict), correct, reviewed (accepted or
    rejected by people, as :mod:`startui.store.consensus` settled it), accepted, rejected. One
    aggregate over the denormalized columns the review queue keeps current."""
    def n(cond: Any) -> Any:
        return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)

    q = select(func.count(), n(T.status == "finished"), n(T.verdict.is_not(None)),
               n(T.verdict == "correct"), n(T.review_status.in_(("accepted", "rejected"))),
               n(T.review_status == "accepted"), n(T.review_status == "rejected")
               ).select_from(T)
    row = s.execute(_in_campaign(_in_runs(q, run_ids), campaign_id)).one()
    keys = ("generated", "finished", "scored", "correct", "reviewed", "accepted", "rejected")
    return {k: int(v or 0) for k, v in zip(keys, row, strict=True)}


def _day(s: Any, column: Any) -> Any:
    """A timestamp's UTC calendar day as 'YYYY-MM-DD' text, in SQL."""
    if s.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.date(column)  # SQLite keeps naive UTC ISO text (models.UTCDateTime)


def review_throughput(s: Any, *, run_ids: Sequence[str] | None = None,
                      campaign_id: int | None = None) -> list[dict[str, Any]]:
    """Decisions (accept, reject, skip, needs review; adjudications too, undone ones not) per
    reviewer per UTC day, oldest day first: ``{"reviewer", "day", "decisions"}`` rows."""
    R = ReviewRow
    day = _day(s, R.created_at).label("day")
    q = (select(R.reviewer, day, func.count())
         .where(R.decision.is_not(None), R.undone_at.is_(None)))
    if campaign_id is not None:
        q = q.where(R.campaign_id == campaign_id)
    if run_ids is not None:
        q = q.where(R.trajectory_id.in_(select(T.id).where(T.run_id.in_(list(run_ids)))))
    q = q.group_by(R.reviewer, day).order_by(day, R.reviewer)
    return [{"reviewer": r, "day": str(d), "decisions": int(c)} for r, d, c in s.execute(q)]


def campaign_rating_times(s: Any, campaign_id: int,
                          ) -> list[tuple[str, str, str, float | None, datetime]]:
    """(trajectory id, reviewer, decision, score, when) of every live vote of a campaign, in
    order, adjudications left out: agreement as it grew (the dashboards' agreement over time)."""
    R = ReviewRow
    out = []
    for r in s.execute(select(R.trajectory_id, R.reviewer, R.decision, R.score, R.created_at,
                              R.detail)
                       .where(R.campaign_id == campaign_id, R.decision.is_not(None),
                              R.undone_at.is_(None))
                       .order_by(R.created_at, R.id)):
        if not (r.detail or {}).get("adjudication"):
            out.append((r.trajectory_id, r.reviewer, r.decision, r.score, r.created_at))
    return out


def campaign_label_times(s: Any, campaign_id: int,
                         ) -> list[tuple[str, int, int, str, int, datetime]]:
    """(trajectory id, version, position, reviewer, label, when) of the step labels the
    campaign's reviewers put on its items (what its step-label agreement is computed from),
    each as it stands, at the time it was last set: step-label agreement as it grew."""
    L, item = StepLabelRow, CampaignItemRow
    reviewers = s.scalar(select(CampaignRow.reviewers).where(CampaignRow.id == campaign_id))
    q = (select(L.trajectory_id, L.trajectory_version, L.position, L.reviewer, L.label,
                L.created_at)
         .join(item, (item.trajectory_id == L.trajectory_id) & (item.campaign_id == campaign_id))
         .where(L.reviewer.in_(list(reviewers or ())))
         .order_by(L.created_at, L.id))
    return [tuple(r) for r in s.execute(q)]


def problem_sources(s: Any) -> list[dict[str, Any]]:
    """Every problem source (an import's name) with its problems per kind, largest first."""
    rows = s.execute(select(P.source, P.kind, func.count()).group_by(P.source, P.kind)).all()
    by: dict[str, dict[str, int]] = {}
    for source, kind, n in rows:
        by.setdefault(source, {})[kind] = int(n)
    return [{"source": src, "problems": sum(kinds.values()), "by_kind": kinds}
            for src, kinds in sorted(by.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))]
