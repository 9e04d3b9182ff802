"""What people and scorers add to a trajectory: edits (revisions), reviews and scores.

Edits use optimistic locking: the editor says which ``version`` it edited, and the write happens
only if the trajectory is still at that version — two reviewers editing the same trajectory get
one success and one :class:`ConflictError`, never a silent overwrite. The model's original text is
snapshotted as a revision before the first edit, so Hint-RFT can always see (and cite) what was
changed by whom.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from startui.answers import SCORER
from startui.store import consensus
from startui.store.models import (
    DECISIONS,
    ROLES,
    ReviewRow,
    RevisionRow,
    ScoreRow,
    SettingRow,
    StepLabelRow,
    TrajectoryRow,
    UserRow,
    utcnow,
)
from startui.store.repository import (
    ConflictError,
    NotFoundError,
    derived,
    format_ts,
    jsonable,
    load_segments,
    sync_segments,
)
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
    labels: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)
    undone_at: str | None = None
    campaign_id: int | None = None  # the review campaign it was made in

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
    checks: dict[str, Any] | None = None


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
                     created_at=format_ts(r.created_at), checks=r.checks)
            for r in s.scalars(select(RevisionRow).where(RevisionRow.trajectory_id == tid)
                               .order_by(RevisionRow.version))]


def _review(r: ReviewRow) -> Review:
    return Review(id=r.id, trajectory_id=r.trajectory_id, reviewer=r.reviewer,
                  decision=r.decision, score=r.score, notes=r.notes,
                  trajectory_version=r.trajectory_version, created_at=format_ts(r.created_at),
                  labels=list(r.labels or []), detail=dict(r.detail or {}),
                  undone_at=format_ts(r.undone_at), campaign_id=r.campaign_id)


def add_review(s: Session, tid: str, *, reviewer: str, decision: str | None = None,
               score: float | None = None, notes: str = "",
               expected_version: int | None = None, labels: Sequence[str] = (),
               detail: dict[str, Any] | None = None, campaign_id: int | None = None) -> Review:
    """Record a review; a decision (accepted, rejected, skipped, needs_review) becomes the
    trajectory's review status, and the status it replaced is kept so the decision can be undone.
    With ``expected_version`` the review only lands on the version the reviewer saw.

    A trajectory with decisions made in a review campaign (``campaign_id``) takes its status from
    :mod:`startui.store.consensus` instead: adjudication, then consensus, then the rest."""
    if decision is not None and decision not in DECISIONS:
        raise ValueError(f"decision must be one of {DECISIONS} or None, not {decision!r}")
    if not reviewer:
        raise ValueError("a review needs a reviewer name")
    row = _row(s, tid)
    if expected_version is not None and row.version != expected_version:
        raise _conflict(s, tid, expected_version)
    now = utcnow()
    detail = dict(detail or {})
    if decision is not None:
        detail["previous_status"] = row.review_status
    r = ReviewRow(trajectory_id=tid, reviewer=reviewer, decision=decision, score=score,
                  notes=notes or "", trajectory_version=row.version, created_at=now,
                  updated_at=now, labels=[str(x) for x in labels], detail=jsonable(detail),
                  campaign_id=campaign_id)
    s.add(r)
    if decision is not None:
        row.review_status = decision
        row.reviewed_at = now
        consensus.refresh(s, tid)
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


def undo_last_decision(s: Session, reviewer: str) -> Review | None:
    """Undo ``reviewer``'s latest decision that is not undone yet: the review row stays (marked
    undone, for the audit trail) and the trajectory gets back the status the decision replaced —
    unless someone decided on it since, in which case their decision stands."""
    r = s.scalars(select(ReviewRow).where(
        ReviewRow.reviewer == reviewer, ReviewRow.decision.is_not(None),
        ReviewRow.undone_at.is_(None)).order_by(ReviewRow.created_at.desc(), ReviewRow.id.desc())
        .limit(1)).first()
    if r is None:
        return None
    r.undone_at = utcnow()
    later = s.scalar(select(ReviewRow.id).where(
        ReviewRow.trajectory_id == r.trajectory_id, ReviewRow.decision.is_not(None),
        ReviewRow.undone_at.is_(None), ReviewRow.id > r.id).limit(1))
    if consensus.refresh(s, r.trajectory_id) is None and later is None:
        row = _row(s, r.trajectory_id)
        row.review_status = (r.detail or {}).get("previous_status", "pending")
        row.reviewed_at = None if row.review_status == "pending" else row.reviewed_at
    s.flush()
    return _review(r)


# --- step labels (process supervision) ---------------------------------------------------------

STEP_LABELS = (-1, 0, 1)


def set_step_labels(s: Session, tid: str, *, reviewer: str, labels: dict[int, int | None],
                    expected_version: int | None = None) -> int:
    """Set ``reviewer``'s labels of the current version: ``{position: -1 | 0 | +1 | None}``
    (None removes a label: "unlabelled" is not 0). Returns the version labelled."""
    row = _row(s, tid)
    if expected_version is not None and row.version != expected_version:
        raise _conflict(s, tid, expected_version)
    for pos, lab in labels.items():
        if not 0 <= int(pos) < row.n_segments:
            raise ValueError(f"trajectory {tid} has no segment {pos} (it has {row.n_segments})")
        if lab is not None and lab not in STEP_LABELS:
            raise ValueError(f"a step label is -1, 0 or +1 (or None to clear), not {lab!r}")
    if labels:
        s.execute(delete(StepLabelRow).where(
            StepLabelRow.trajectory_id == tid, StepLabelRow.trajectory_version == row.version,
            StepLabelRow.reviewer == reviewer, StepLabelRow.position.in_([int(p) for p in labels])))
    now = utcnow()
    for pos, lab in labels.items():
        if lab is not None:
            s.add(StepLabelRow(trajectory_id=tid, trajectory_version=row.version,
                               position=int(pos), label=int(lab), reviewer=reviewer,
                               created_at=now))
    s.flush()
    return row.version


def step_labels(s: Session, tid: str, version: int | None = None) -> dict[str, dict[int, int]]:
    """{reviewer: {position: label}} for ``version`` (default: the current one)."""
    if version is None:
        version = _row(s, tid).version
    out: dict[str, dict[int, int]] = {}
    for r in s.execute(select(StepLabelRow.reviewer, StepLabelRow.position, StepLabelRow.label)
                       .where(StepLabelRow.trajectory_id == tid,
                              StepLabelRow.trajectory_version == version)
                       .order_by(StepLabelRow.reviewer, StepLabelRow.position)):
        out.setdefault(r.reviewer, {})[r.position] = r.label
    return out


def set_revision_checks(s: Session, tid: str, version: int, checks: dict[str, Any]) -> None:
    """Attach the re-run of a revision's code (stale outputs) to that revision."""
    rev = s.scalars(select(RevisionRow).where(RevisionRow.trajectory_id == tid,
                                              RevisionRow.version == version)).first()
    if rev is None:
        raise NotFoundError(f"trajectory {tid} has no revision {version}")
    rev.checks = jsonable(checks)
    s.flush()


# --- people and team settings ------------------------------------------------------------------

@dataclass
class User:
    name: str
    role: str
    has_password: bool
    created_at: str | None


def _user(r: UserRow) -> User:
    return User(name=r.name, role=r.role, has_password=r.password_hash is not None,
                created_at=format_ts(r.created_at))


def upsert_user(s: Session, name: str, *, role: str = "reviewer",
                password_hash: str | None = None, keep_password: bool = False) -> User:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    r = s.get(UserRow, name)
    if r is None:
        r = UserRow(name=name, role=role, password_hash=password_hash, created_at=utcnow())
        s.add(r)
    else:
        r.role = role
        if not keep_password:
            r.password_hash = password_hash
    s.flush()
    return _user(r)


def password_hash_of(s: Session, name: str) -> str | None:
    r = s.get(UserRow, name)
    return None if r is None else r.password_hash


def get_user(s: Session, name: str) -> User | None:
    r = s.get(UserRow, name)
    return None if r is None else _user(r)


def list_users(s: Session) -> list[User]:
    return [_user(r) for r in s.scalars(select(UserRow).order_by(UserRow.name))]


def remove_user(s: Session, name: str) -> None:
    """Remove a person's login; what they reviewed stays, under their name."""
    if s.execute(delete(UserRow).where(UserRow.name == name)).rowcount == 0:
        raise NotFoundError(f"no user {name!r}")


def get_setting(s: Session, key: str, default: Any = None) -> Any:
    r = s.get(SettingRow, key)
    return default if r is None else r.value


def set_setting(s: Session, key: str, value: Any, *, by: str | None = None) -> None:
    r = s.get(SettingRow, key)
    if r is None:
        s.add(SettingRow(key=key, value=jsonable(value), updated_by=by, updated_at=utcnow()))
    else:
        r.value, r.updated_by, r.updated_at = jsonable(value), by, utcnow()
    s.flush()
