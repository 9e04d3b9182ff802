"""SQLAlchemy 2.x models of the trajectory store.

The tables follow the data flow in DESIGN.md: problems → runs (the settings a batch used) →
trajectories → segments (+ artifacts) → scores, reviews and revisions. Everything the review and
Hint-RFT issues need is designed here so that they add code, not migrations.

Choices worth knowing:

* ``segments`` hold a trajectory's text in order, one row per :class:`~startui.trajectory.Segment`,
  unique by ``(trajectory_id, position)`` so the engine's "segment finished" is an upsert.
* Images and plotly figures from the kernel live in ``artifacts``, not in the segment's ``meta``,
  so listing and exporting text never drags megabytes of base64 along.
* ``trajectories.version`` is bumped by every committed change of a trajectory's content; writers
  that edit (the review UI) compare it and fail loudly on conflict.
* ``trajectories.review_status`` duplicates the latest review decision so the review queue is one
  indexed range scan (see ``ix_trajectories_queue``); ``reviews`` keeps the full history.
* ``worker`` records which process is writing a running trajectory, so a second process opening the
  same database does not mark live trajectories as interrupted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names: Alembic migrations (and SQLite batch mode) need them.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# A trajectory's review status is its latest decision: "skipped" (a reviewer passed on it) and
# "needs_review" (a reviewer asks for a second opinion) keep it out of the accepted set.
REVIEW_STATES = ("pending", "accepted", "rejected", "skipped", "needs_review")
DECISIONS = ("accepted", "rejected", "skipped", "needs_review")
VERDICTS = ("correct", "wrong")  # trajectories.verdict; NULL is "unscored"
ROLES = ("admin", "reviewer", "viewer")
# A reviewer's hold on a campaign item: "leased" (handed out, until ``expires_at``), "decided",
# "skipped" (passed on it: the slot goes to someone else) or "expired" (the lease ran out first).
ASSIGNMENT_STATES = ("leased", "decided", "skipped", "expired")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    SQLite has no timezone type; without this a value written as UTC comes back naive and
    comparisons with aware datetimes raise.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# JSONB on PostgreSQL (indexable, compact); JSON text elsewhere.
JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class ProblemRow(Base):
    """A problem to solve. ``id`` is the key the whole app uses; ``(source, external_id)`` is the
    identity in the file it was imported from, which makes re-imports idempotent."""

    __tablename__ = "problems"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    source: Mapped[str] = mapped_column(String(200))
    external_id: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16), default="math")
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str | None] = mapped_column(Text)
    tests: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    meta: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        Index(None, "kind"),
    )


class RunRow(Base):
    """The settings a group of trajectories was made with (backend, model, sampling, hints).

    A batch names its run (``settings["run_id"]``); otherwise trajectories with identical settings
    share a run whose id is a hash of those settings.
    """

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    backend: Mapped[str | None] = mapped_column(String(100))
    model: Mapped[str | None] = mapped_column(String(500))
    sampling: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    hint_policy: Mapped[Any | None] = mapped_column(JSONType, nullable=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index(None, "name"),)


class TrajectoryRow(Base):
    """One attempt at a problem. ``settings`` is kept verbatim (the run row is the normalized,
    queryable copy); counters are denormalized so lists and stats never scan segments."""

    __tablename__ = "trajectories"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    problem_id: Mapped[str] = mapped_column(ForeignKey("problems.id"))
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id"))
    parent_id: Mapped[str | None] = mapped_column(
        ForeignKey("trajectories.id", ondelete="SET NULL"))
    branch_point: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="running")
    prompt: Mapped[str] = mapped_column(Text)
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    answer: Mapped[str | None] = mapped_column(Text)
    tokens: Mapped[int] = mapped_column(Integer, default=0)
    tool_calls: Mapped[int] = mapped_column(Integer, default=0)
    hints: Mapped[int] = mapped_column(Integer, default=0)
    n_segments: Mapped[int] = mapped_column(Integer, default=0)
    review_status: Mapped[str] = mapped_column(String(16), default="pending")
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)
    worker: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What the review queue filters and sorts on, kept current with the segments (derived()):
    verdict: Mapped[str | None] = mapped_column(String(8))  # current rule score; NULL: unscored
    human_hints: Mapped[int] = mapped_column(Integer, default=0)
    ends_in_error: Mapped[bool] = mapped_column(Boolean, default=False)
    length: Mapped[int] = mapped_column(Integer, default=0)  # characters of all segments
    shuffle: Mapped[int] = mapped_column(Integer, default=0)  # a hash of the id: "shuffled" order

    __table_args__ = (
        # The review queue: finished + pending, oldest first (optionally within one run).
        Index("ix_trajectories_queue", "status", "review_status", "created_at", "id"),
        Index("ix_trajectories_queue_length", "status", "review_status", "length", "id"),
        # The queue's counts under a rule-verdict filter (the Review tab's "wrong answers").
        Index("ix_trajectories_queue_verdict", "status", "verdict", "review_status"),
        Index("ix_trajectories_run_queue", "run_id", "status", "review_status", "created_at"),
        # "Recent runs" and the problem page.
        Index(None, "created_at"),
        Index(None, "problem_id", "status"),
        Index(None, "parent_id"),
    )


class SegmentRow(Base):
    """One segment of a trajectory; ``meta`` minus images/plotly (those are artifacts)."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trajectory_id: Mapped[str] = mapped_column(
        ForeignKey("trajectories.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text, default="")
    meta: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    closed: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("trajectory_id", "position"),)


class ArtifactRow(Base):
    """An image (base64 PNG, kept as given) or a plotly figure (JSON text) a segment produced.

    ``key`` is the segment meta key it came from ("images" or "plotly") and ``ordinal`` its index
    in that list, so loading puts ``segment.meta[key]`` back exactly.
    """

    __tablename__ = "artifacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"))
    trajectory_id: Mapped[str] = mapped_column(
        ForeignKey("trajectories.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(32))
    ordinal: Mapped[int] = mapped_column(Integer, default=0)
    mime: Mapped[str] = mapped_column(String(100))
    data: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index(None, "segment_id"), Index(None, "trajectory_id"))


class ScoreRow(Base):
    """An automatic score (final-answer match, code tests) by a named scorer. Several scorers,
    and re-scoring, add rows; the latest per scorer is current."""

    __tablename__ = "scores"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trajectory_id: Mapped[str] = mapped_column(
        ForeignKey("trajectories.id", ondelete="CASCADE"))
    scorer: Mapped[str] = mapped_column(String(100))
    correct: Mapped[bool | None] = mapped_column(Boolean)
    value: Mapped[float | None] = mapped_column(Float)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    trajectory_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index(None, "trajectory_id", "scorer", "created_at"),)


class ReviewRow(Base):
    """A person's judgement of a trajectory. ``decision`` None is a comment or score only; the
    latest decision is mirrored into ``trajectories.review_status``."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trajectory_id: Mapped[str] = mapped_column(
        ForeignKey("trajectories.id", ondelete="CASCADE"))
    reviewer: Mapped[str] = mapped_column(String(200))
    decision: Mapped[str | None] = mapped_column(String(16))
    score: Mapped[float | None] = mapped_column(Float)
    notes: Mapped[str] = mapped_column(Text, default="")
    trajectory_version: Mapped[int] = mapped_column(Integer)
    labels: Mapped[list[str]] = mapped_column(JSONType, default=list)  # from the label set
    # {"previous_status": …, "stale_override": reason, …}: what undo and audits need
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # undo keeps the row
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The review campaign this decision was made in (an adjudication carries its campaign too,
    # and ``detail["adjudication"]``); None: a review outside any campaign.
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("review_campaigns.id", ondelete="SET NULL"))

    __table_args__ = (
        Index(None, "trajectory_id", "created_at"),
        Index(None, "reviewer", "created_at"),
        Index(None, "campaign_id", "trajectory_id"),
    )


class RevisionRow(Base):
    """A full snapshot of a trajectory's segments at ``version``, by ``editor`` (None for the
    original model output, snapshotted before the first edit). Exports cite the revision they
    used; a reviewer can diff any two."""

    __tablename__ = "revisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trajectory_id: Mapped[str] = mapped_column(
        ForeignKey("trajectories.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    editor: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str] = mapped_column(Text, default="")
    segments: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    # The re-run of this revision's code in a fresh kernel: {"ran_at", "stale": [{"position",
    # "stored", "fresh", "error"}]}; None when the revision's code was not re-run.
    checks: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("trajectory_id", "version"),)


class StepLabelRow(Base):
    """A reviewer's process-supervision label of one segment of one revision (PRM800K's
    convention: +1 good, 0 neutral, -1 wrong; no row is "unlabelled", which is not 0)."""

    __tablename__ = "step_labels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trajectory_id: Mapped[str] = mapped_column(
        ForeignKey("trajectories.id", ondelete="CASCADE"))
    trajectory_version: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)
    label: Mapped[int] = mapped_column(Integer)
    reviewer: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("trajectory_id", "trajectory_version", "reviewer", "position"),
        Index(None, "trajectory_id", "trajectory_version"),
    )


class UserRow(Base):
    """A person who reviews. ``password_hash`` is a salted scrypt hash (None for people who log
    in through Hugging Face); ``role`` is admin, reviewer or viewer."""

    __tablename__ = "users"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    password_hash: Mapped[str | None] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(16), default="reviewer")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SettingRow(Base):
    """Team-wide settings edited in the app: the review guidelines (markdown), the label set."""

    __tablename__ = "app_settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONType, nullable=True)
    updated_by: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CampaignRow(Base):
    """A review campaign: the items a queue filter picked (at most ``per_problem`` per problem),
    each to be decided by ``overlap`` different reviewers from ``reviewers``; disagreements go to
    an admin or the named ``adjudicator``. ``filter`` is the queue filter as given, kept so the
    campaign can say what it was made of."""

    __tablename__ = "review_campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    filter: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    per_problem: Mapped[int | None] = mapped_column(Integer)
    overlap: Mapped[int] = mapped_column(Integer, default=2)
    reviewers: Mapped[list[str]] = mapped_column(JSONType, default=list)
    adjudicator: Mapped[str | None] = mapped_column(String(200))
    lease_seconds: Mapped[int] = mapped_column(Integer, default=900)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | closed
    items: Mapped[int] = mapped_column(Integer, default=0)  # fixed when it is made
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CampaignItemRow(Base):
    """One trajectory of a campaign. ``taken`` counts the slots held (live leases and decisions,
    at most the campaign's overlap), ``decided`` the decisions; ``is_open`` (taken < overlap) is
    kept with them so the next item to hand out is one index seek on
    ``(campaign_id, is_open, position)``, however much of the campaign is done."""

    __tablename__ = "campaign_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("review_campaigns.id", ondelete="CASCADE"))
    trajectory_id: Mapped[str] = mapped_column(
        ForeignKey("trajectories.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    taken: Mapped[int] = mapped_column(Integer, default=0)
    decided: Mapped[int] = mapped_column(Integer, default=0)
    is_open: Mapped[bool] = mapped_column(Boolean, default=True)

    __table_args__ = (
        UniqueConstraint("campaign_id", "trajectory_id"),
        Index(None, "campaign_id", "is_open", "position"),
        Index(None, "trajectory_id"),
    )


class CampaignAssignmentRow(Base):
    """A reviewer's hold on a campaign item. Unique per (item, reviewer): the database itself
    refuses to hand one reviewer the same item twice."""

    __tablename__ = "campaign_assignments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("review_campaigns.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("campaign_items.id", ondelete="CASCADE"))
    trajectory_id: Mapped[str] = mapped_column(String(64))
    reviewer: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16), default="leased")
    leased_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    review_id: Mapped[int | None] = mapped_column(ForeignKey("reviews.id", ondelete="SET NULL"))

    __table_args__ = (
        UniqueConstraint("item_id", "reviewer"),
        Index(None, "campaign_id", "state", "expires_at"),
        Index(None, "campaign_id", "reviewer", "state"),
    )


class RunTaskRow(Base):
    """One task of a batch run: a ``(problem, mode, sample)`` whose trajectory id is derived
    from the run and the task. ``state`` is todo | claimed | done; a worker claims a task by
    writing its name and ``lease_until`` (renewed while it works), so a claim of a worker that
    died runs out and another worker takes the task."""

    __tablename__ = "run_tasks"

    trajectory_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    problem_id: Mapped[str] = mapped_column(ForeignKey("problems.id"))
    mode: Mapped[str] = mapped_column(String(16))
    sample: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)  # the plan's order
    state: Mapped[str] = mapped_column(String(16), default="todo")
    worker: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index(None, "run_id", "state", "position"),)


class TrajectoryDigestRow(Base):
    """What selection and the Dataset tab need from a trajectory's segments, computed once:
    valid while the trajectory is at ``version`` with ``n_segments`` segments and ``schema`` is
    the digest format this startui writes."""

    __tablename__ = "trajectory_digests"

    trajectory_id: Mapped[str] = mapped_column(
        ForeignKey("trajectories.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    n_segments: Mapped[int] = mapped_column(Integer)
    schema: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
