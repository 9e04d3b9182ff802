"""What people and scorers add to a trajectory: edits (revisions), reviews and scores.

Edits use optimistic locking: the editor says which ``version`` it edited, and the write happens
only if the trajectory is still at that version — two reviewers editing the same trajectory get
one success and one :class:`ConflictError`, never a silent overwrite. The model's original text is
snapshotted as a revision before the first edit, so Hint-RFT can always see (and cite) what was
changed by whom.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from startui.store.models import DECISIONS, ReviewRow, RevisionRow, ScoreRow, TrajectoryRow, utcnow
from startui.store.repository import (
    ConflictError,
    NotFoundError,
    derived,
    format_ts,
    jsonable,
    load_segments,
    sync_segments,
)
from startui.answers import SCORER
from startui.trajectory import Segment


@dataclass
class Review:
    id: int
    trajectory_id: str
    reviewer: str
    decision: str | None
    score: float | None
    notes: str
    trajectory_version: int
    created_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Revision:
    trajectory_id: str
    version: int
    editor: str | None
    note: str
    segments: list[Segment]
    created_at: str | None


@dataclass
class Score:
    id: int
    trajectory_id: str
    scorer: str
    correct: bool | None
    value: float | None
    detail: dict[str, Any]
    trajectory_version: int | None
    created_at: str | None


def _row(s: Session, tid: str) -> TrajectoryRow:
    row = s.get(TrajectoryRow, tid)
    if row is None:
        raise NotFoundError(f"no trajectory {tid!r} in the store")
    return row


def _conflict(s: Session, tid: str, expected: int) -> ConflictError:
    row = _row(s, tid)
    last = s.execute(select(RevisionRow.editor, RevisionRow.created_at)
                     .where(RevisionRow.trajectory_id == tid)
                     .order_by(RevisionRow.version.desc()).limit(1)).first()
    who = (f"; last edited by {last.editor} at {format_ts(last.created_at)}"
           if last and last.editor else "")
    return ConflictError(
        f"trajectory {tid} changed since you loaded it (you had version {expected}, it is now "
        f"version {row.version}{who}); reload it and apply your edit again",
        current_version=row.version)


def update_segments(s: Session, tid: str, segments: Sequence[Segment], *, expected_version: int,
                    editor: str, note: str = "") -> int:
    """Replace a trajectory's segments if it is still at ``expected_version``; returns the new
    version. The compare-and-set is one UPDATE, so it is atomic on every database."""
    new_version = expected_version + 1
    bumped = s.execute(
        update(TrajectoryRow)
        .where(TrajectoryRow.id == tid, TrajectoryRow.version == expected_version,
               TrajectoryRow.status != "running")
        .values(version=new_version, updated_at=utcnow(), **derived(segments))
        .execution_options(synchronize_session=False)).rowcount
    if not bumped:
        if _row(s, tid).status == "running":  # the engine's next write would undo the edit
            raise ConflictError(f"trajectory {tid} is still running; stop it or wait for it to "
                                "finish before editing")
        raise _conflict(s, tid, expected_version)
    has_snapshot = s.scalar(select(RevisionRow.id).where(
        RevisionRow.trajectory_id == tid, RevisionRow.version == expected_version))
    if has_snapshot is None:
        before = load_segments(s, [tid])[tid]
        s.add(RevisionRow(trajectory_id=tid, version=expected_version, editor=None, note="",
                          segments=jsonable([seg.to_dict() for seg in before])))
    sync_segments(s, tid, segments)
    s.add(RevisionRow(trajectory_id=tid, version=new_version, editor=editor, note=note,
                      segments=jsonable([seg.to_dict() for seg in segments])))
    s.flush()
    return new_version


def list_revisions(s: Session, tid: str) -> list[Revision]:
    _row(s, tid)
    return [Revision(trajectory_id=r.trajectory_id, version=r.version, editor=r.editor,
                     note=r.note, segments=[Segment.from_dict(d) for d in r.segments],
                     created_at=format_ts(r.created_at))
            for r in s.scalars(select(RevisionRow).where(RevisionRow.trajectory_id == tid)
                               .order_by(RevisionRow.version))]


def _review(r: ReviewRow) -> Review:
    return Review(id=r.id, trajectory_id=r.trajectory_id, reviewer=r.reviewer,
                  decision=r.decision, score=r.score, notes=r.notes,
                  trajectory_version=r.trajectory_version, created_at=format_ts(r.created_at))


def add_review(s: Session, tid: str, *, reviewer: str, decision: str | None = None,
               score: float | None = None, notes: str = "",
               expected_version: int | None = None) -> Review:
    """Record a review; a decision (accepted/rejected) becomes the trajectory's review status.
    With ``expected_version`` the review only lands on the version the reviewer saw."""
    if decision is not None and decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS} or None, not {decision!r}")
    if not reviewer:
        raise ValueError("a review needs a reviewer name")
    row = _row(s, tid)
    if expected_version is not None and row.version != expected_version:
        raise _conflict(s, tid, expected_version)
    now = utcnow()
    r = ReviewRow(trajectory_id=tid, reviewer=reviewer, decision=decision, score=score,
                  notes=notes or "", trajectory_version=row.version, created_at=now,
                  updated_at=now)
    s.add(r)
    if decision is not None:
        row.review_status = decision
        row.reviewed_at = now
    s.flush()
    return _review(r)


def list_reviews(s: Session, tid: str) -> list[Review]:
    _row(s, tid)
    return [_review(r) for r in s.scalars(select(ReviewRow).where(ReviewRow.trajectory_id == tid)
                                          .order_by(ReviewRow.created_at, ReviewRow.id))]


def add_score(s: Session, tid: str, *, scorer: str, correct: bool | None = None,
              value: float | None = None, detail: dict[str, Any] | None = None) -> int:
    row = _row(s, tid)
    r = ScoreRow(trajectory_id=tid, scorer=scorer, correct=correct, value=value,
                 detail=jsonable(detail or {}), trajectory_version=row.version)
    s.add(r)
    if scorer == SCORER:  # the review queue filters on the current rule verdict
        row.verdict = None if correct is None else "correct" if correct else "wrong"
    s.flush()
    return r.id


def latest_scores(s: Session, tid: str) -> dict[str, Score]:
    """The current score per scorer (re-scoring adds rows; the newest wins)."""
    _row(s, tid)
    out: dict[str, Score] = {}
    for r in s.scalars(select(ScoreRow).where(ScoreRow.trajectory_id == tid)
                       .order_by(ScoreRow.created_at, ScoreRow.id)):
        out[r.scorer] = Score(id=r.id, trajectory_id=r.trajectory_id, scorer=r.scorer,
                              correct=r.correct, value=r.value, detail=dict(r.detail or {}),
                              trajectory_version=r.trajectory_version,
                              created_at=format_ts(r.created_at))
    return out
