"""Trajectories with what people and scorers said about them: the rows Hint-RFT selects from.

A :class:`Record` is a trajectory, its version, its review status and its current rule score. The
selection, the export and the analytics read records only through these functions, in keyset
pages (a long export holds no lock).

People's status is decided here, by :mod:`startui.store.consensus`: an adjudication beats a
campaign's consensus, which beats a single reviewer's decision; an item whose campaign reviewers
disagree and that nobody adjudicated yet is neither accepted nor rejected (the rules decide).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, tuple_
from sqlalchemy import select as sql
from sqlalchemy.orm import Session

from startui.answers import SCORER, ScoreResult
from startui.store import consensus
from startui.store.models import (
    ReviewRow,
    RevisionRow,
    RunRow,
    ScoreRow,
    StepLabelRow,
    TrajectoryRow,
)
from startui.store.repository import NotFoundError, load_many
from startui.trajectory import Trajectory


def resolve_runs(s: Session, names: Sequence[str]) -> list[str]:
    """Run ids for the names a user typed (a run's id or its name)."""
    if not names:
        raise ValueError("name at least one run (--run NAME); `python -m startui stats` and "
                         "the Runs list show them")
    rows = s.execute(sql(RunRow.id, RunRow.name).where(
        or_(RunRow.id.in_(names), RunRow.name.in_(names)))).all()
    ids: list[str] = []
    for name in names:
        match = [r.id for r in rows if r.id == name] or sorted(
            r.id for r in rows if r.name == name)
        if not match:
            known = s.scalars(sql(RunRow.id).order_by(RunRow.created_at.desc()).limit(10)).all()
            raise NotFoundError(f"unknown run {name!r}; recent runs: "
                                f"{', '.join(known) or 'none (generate one first)'}")
        ids += [m for m in match if m not in ids]
    return ids


@dataclass
class Record:
    """A trajectory with what people and scorers said about it."""

    trajectory: Trajectory
    version: int
    review_status: str  # pending | accepted | rejected
    reviewer: str | None
    run_id: str | None
    score: ScoreResult | None  # the current rule score (None: unscored, or scored before an edit)
    score_stale: bool = False
    editors: list[str] = field(default_factory=list)  # who edited it (revisions), in order
    # Process supervision of this version: {position: -1 | 0 | +1} by ``labelled_by`` (the
    # deciding reviewer's labels when they labelled it, else the latest labeller's)
    step_labels: dict[int, int] = field(default_factory=dict)
    labelled_by: str | None = None
    created_at: Any = None  # the row's, for keyset paging
    # How people's status came about: "adjudicated", "consensus", "disputed" (a campaign's
    # reviewers disagree, nobody adjudicated: neither accepted nor rejected), "reviewer" (one
    # person's decision), None (nobody decided: the rules do).
    human: str | None = None

    @property
    def correct(self) -> bool | None:
        return None if self.score is None else self.score.correct


def attach(s: Session, rows: Sequence[Any]) -> list[Record]:
    trajs = load_many(s, rows)
    ids = [r.id for r in rows]
    scores: dict[str, Any] = {}
    for sc in s.execute(sql(ScoreRow.trajectory_id, ScoreRow.correct, ScoreRow.value,
                               ScoreRow.detail, ScoreRow.trajectory_version)
                        .where(ScoreRow.trajectory_id.in_(ids), ScoreRow.scorer == SCORER)
                        .order_by(ScoreRow.created_at, ScoreRow.id)):
        scores[sc.trajectory_id] = sc  # the newest wins
    reviewers: dict[str, str] = {}
    votes: dict[str, list[consensus.Vote]] = defaultdict(list)
    for rv in s.execute(sql(ReviewRow.id, ReviewRow.trajectory_id, ReviewRow.reviewer,
                            ReviewRow.decision, ReviewRow.campaign_id, ReviewRow.detail)
                        .where(ReviewRow.trajectory_id.in_(ids), ReviewRow.decision.is_not(None),
                               ReviewRow.undone_at.is_(None))
                        .order_by(ReviewRow.created_at, ReviewRow.id)):
        reviewers[rv.trajectory_id] = rv.reviewer
        votes[rv.trajectory_id].append(consensus.vote(rv))
    overlaps = consensus.overlaps(s, (v.campaign_id for vs in votes.values() for v in vs
                                      if v.campaign_id is not None))
    editors: dict[str, list[str]] = defaultdict(list)
    for rv in s.execute(sql(RevisionRow.trajectory_id, RevisionRow.editor)
                        .where(RevisionRow.trajectory_id.in_(ids), RevisionRow.editor.is_not(None))
                        .order_by(RevisionRow.trajectory_id, RevisionRow.version)):
        if rv.editor not in editors[rv.trajectory_id]:
            editors[rv.trajectory_id].append(rv.editor)
    versions = {r.id: r.version for r in rows}
    labels: dict[str, dict[str, dict[int, int]]] = defaultdict(dict)
    latest: dict[str, str] = {}
    for lb in s.execute(sql(StepLabelRow.trajectory_id, StepLabelRow.trajectory_version,
                            StepLabelRow.reviewer, StepLabelRow.position, StepLabelRow.label)
                        .where(StepLabelRow.trajectory_id.in_(ids))
                        .order_by(StepLabelRow.created_at, StepLabelRow.id)):
        if lb.trajectory_version == versions[lb.trajectory_id]:
            labels[lb.trajectory_id].setdefault(lb.reviewer, {})[lb.position] = lb.label
            latest[lb.trajectory_id] = lb.reviewer
    out = []
    for row, traj in zip(rows, trajs, strict=True):
        status, human = row.review_status, None if row.review_status == "pending" else "reviewer"
        resolved = consensus.resolve(votes.get(row.id, []), overlaps)
        if resolved is not None:
            status, human = resolved
            if human == consensus.ADJUDICATED:  # the adjudicator has the last word
                reviewers[row.id] = next(v.reviewer for v in reversed(votes[row.id])
                                         if v.adjudication)
        by = reviewers.get(row.id) if reviewers.get(row.id) in labels[row.id] else latest.get(
            row.id)
        sc = scores.get(row.id)
        current = sc is not None and sc.trajectory_version in (None, row.version)
        out.append(Record(
            trajectory=traj, version=row.version, created_at=row.created_at,
            review_status=status, human=human,
            reviewer=reviewers.get(row.id), run_id=row.run_id,
            score=ScoreResult(sc.correct, sc.value, dict(sc.detail or {})) if current else None,
            score_stale=sc is not None and not current, editors=editors.get(row.id, []),
            step_labels=dict(sorted(labels[row.id].get(by, {}).items())) if by else {},
            labelled_by=by))
    return out


def records_page(s: Session, run_ids: Sequence[str], *, status: str | None = None,
                 after: tuple[Any, str] | None = None, limit: int = 500) -> list[Record]:
    """One keyset page of the runs' records in (created_at, id) order, after ``after``."""
    T = TrajectoryRow
    q = sql(T.__table__).where(T.run_id.in_(list(run_ids)))
    if status is not None:
        q = q.where(T.status == status)
    if after is not None:
        q = q.where(tuple_(T.created_at, T.id) > tuple_(*after))
    rows = s.execute(q.order_by(T.created_at, T.id).limit(limit)).all()
    return attach(s, rows) if rows else []


def records_by_id(s: Session, ids: Sequence[str]) -> dict[str, Record]:
    T = TrajectoryRow
    rows = s.execute(sql(T.__table__).where(T.id.in_(list(ids)))).all()
    return {r.trajectory.id: r for r in attach(s, rows)}
