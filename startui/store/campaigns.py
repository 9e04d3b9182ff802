"""Review campaigns in the database: items, leases, votes, progress.

A campaign hands each of its items to ``overlap`` different reviewers. Every item has ``overlap``
slots; a reviewer holds one from the moment the item is handed out (a lease that runs out after
``lease_seconds``) until they skip it, and keeps it once they decided. The hand-out
(:func:`claim`) is one write transaction that

1. returns the leases that ran out to the pool,
2. gives the reviewer back the item they already hold (a reload must not take a second one), or
3. takes the first open item (in the campaign's order) that the reviewer does not hold, has not
   decided and has not skipped: a compare-and-set on the item's slot counter
   (``UPDATE … SET taken = taken + 1 WHERE taken < overlap``) and an assignment row that is
   unique per (item, reviewer).

SQLite runs it on the store's single writer (``BEGIN IMMEDIATE`` serializes other processes);
PostgreSQL reads the candidates ``FOR UPDATE SKIP LOCKED``, so two reviewers pulling at once
never wait on each other's item, and the compare-and-set and the unique constraint hold the
invariants even if a lock were missed: no reviewer holds an item twice, no item has more than
``overlap`` holders, and an expired lease frees its slot for anyone (its reviewer included).
When every candidate left is locked by a transaction in flight (another claim or vote, a few
milliseconds), "nothing left" would be wrong: :class:`Busy` says so, and the caller tries again
a moment later (:meth:`startui.store.Store.claim_campaign_item`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, exists, func, insert, select, true, update
from sqlalchemy.orm import Session

from startui.store import consensus, reviews
from startui.store.models import (
    CampaignAssignmentRow,
    CampaignItemRow,
    CampaignRow,
    ProblemRow,
    ReviewRow,
    StepLabelRow,
    TrajectoryRow,
    utcnow,
)
from startui.store.queue import QueueFilter, _order_key, _where
from startui.store.repository import ConflictError, NotFoundError, format_ts, jsonable

C, I, A = CampaignRow, CampaignItemRow, CampaignAssignmentRow  # noqa: E741 - as T, P elsewhere
HOLDS_SLOT = {"leased": True, "decided": True, "skipped": False, "expired": False}
_CANDIDATES = 16  # open items read (and, on PostgreSQL, locked) per attempt


class Busy(Exception):
    """Every open item is locked by a transaction in flight right now: ask again shortly."""


@dataclass
class Campaign:
    id: int
    name: str
    filter: dict[str, Any]
    per_problem: int | None
    overlap: int
    reviewers: list[str]
    adjudicator: str | None
    lease_seconds: int
    status: str
    created_by: str
    created_at: str | None
    items: int = 0

    def queue_filter(self) -> QueueFilter:
        return QueueFilter(**self.filter)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Dispute:
    """A complete item whose reviewers disagree (or one already adjudicated)."""

    trajectory_id: str
    votes: dict[str, str]  # reviewer -> decision
    adjudication: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Progress:
    campaign: str
    items: int
    done: int  # decided by ``overlap`` reviewers
    started: int  # some decisions, not all
    untouched: int
    leased: int  # live leases now
    consensus: int
    disputed: int  # complete, reviewers disagree, no adjudication yet
    adjudicated: int
    reviewers: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _campaign(r: CampaignRow) -> Campaign:
    return Campaign(id=r.id, name=r.name, filter=dict(r.filter or {}), per_problem=r.per_problem,
                    overlap=r.overlap, reviewers=list(r.reviewers or []),
                    adjudicator=r.adjudicator, lease_seconds=r.lease_seconds, status=r.status,
                    created_by=r.created_by, created_at=format_ts(r.created_at), items=r.items)


def get(s: Session, ref: str | int) -> Campaign:
    """A campaign by its name or id."""
    row = s.get(C, ref) if isinstance(ref, int) else None
    if row is None:
        row = s.scalars(select(C).where(C.name == str(ref))).first()
    if row is None and str(ref).isdigit():
        row = s.get(C, int(ref))
    if row is None:
        known = s.scalars(select(C.name).order_by(C.created_at.desc()).limit(10)).all()
        raise NotFoundError(f"no review campaign {ref!r}; campaigns: "
                            f"{', '.join(known) or 'none yet (an admin creates one)'}")
    return _campaign(row)


def list_all(s: Session) -> list[Campaign]:
    return [_campaign(r) for r in s.scalars(select(C).order_by(C.created_at, C.id))]


def create(s: Session, *, name: str, filter: QueueFilter, per_problem: int | None,
           overlap: int, reviewers: list[str], adjudicator: str | None, lease_seconds: int,
           created_by: str) -> Campaign:
    """The campaign and its items: the trajectories ``filter`` picks, in its order, at most
    ``per_problem`` per problem (the first ones in that order)."""
    if s.scalar(select(C.id).where(C.name == name)) is not None:
        raise ValueError(f"a campaign named {name!r} exists already; pick another name")
    q = _where(select(TrajectoryRow.id, TrajectoryRow.problem_id).select_from(TrajectoryRow)
               .join(ProblemRow, ProblemRow.id == TrajectoryRow.problem_id), filter)
    per: Counter[str] = Counter()
    ids = []
    for tid, pid in s.execute(q.order_by(*_order_key(filter))):
        if per_problem is not None and per[pid] >= per_problem:
            continue
        per[pid] += 1
        ids.append(tid)
    if not ids:
        raise ValueError("the filter picks no trajectory: nothing to review (check the run, "
                         "the verdict and the status; `startui review list` shows the queue)")
    row = C(name=name, filter=jsonable(filter.to_dict()), per_problem=per_problem,
            overlap=overlap, reviewers=list(reviewers), adjudicator=adjudicator,
            lease_seconds=lease_seconds, status="open", items=len(ids), created_by=created_by,
            created_at=utcnow())
    s.add(row)
    s.flush()
    for i in range(0, len(ids), 5000):
        s.execute(insert(I), [{"campaign_id": row.id, "trajectory_id": tid, "position": n,
                               "taken": 0, "decided": 0, "is_open": True}
                              for n, tid in enumerate(ids[i:i + 5000], i)])
    return _campaign(row)


def set_status(s: Session, ref: str | int, status: str) -> Campaign:
    c = get(s, ref)
    s.execute(update(C).where(C.id == c.id).values(status=status))
    c.status = status
    return c


def _open(c: Campaign) -> None:
    if c.status != "open":
        raise ValueError(f"campaign {c.name} is {c.status}: it hands out and takes nothing more")


# --- slots ---------------------------------------------------------------------------------

def _move(s: Session, c: Campaign, item_id: int, old: str | None, new: str) -> bool:
    """Move a reviewer's hold on an item from state ``old`` (None: no row) to ``new`` and keep
    the item's counters right; False when it needs a slot and none is free."""
    dt = int(HOLDS_SLOT[new]) - int(HOLDS_SLOT.get(old or "", False))
    dd = int(new == "decided") - int(old == "decided")
    if not dt and not dd:
        return True
    q = update(I).where(I.id == item_id)
    if dt > 0:
        q = q.where(I.taken < c.overlap)  # the compare-and-set that caps the holders
    done = s.execute(q.values(taken=I.taken + dt, decided=I.decided + dd,
                              is_open=I.taken + dt < c.overlap)
                     .execution_options(synchronize_session=False)).rowcount
    return bool(done)


def sweep(s: Session, cid: int, now: datetime) -> int:
    """Return the slots of leases that ran out to the pool; how many."""
    freed = s.execute(update(A).where(A.campaign_id == cid, A.state == "leased",
                                      A.expires_at < now)
                      .values(state="expired").returning(A.item_id)
                      .execution_options(synchronize_session=False)).scalars().all()
    for item_id, n in sorted(Counter(freed).items()):
        s.execute(update(I).where(I.id == item_id).values(taken=I.taken - n, is_open=true())
                  .execution_options(synchronize_session=False))
    return len(freed)


def _held(s: Session, cid: int, reviewer: str) -> list[A]:
    return list(s.scalars(select(A).where(A.campaign_id == cid, A.reviewer == reviewer,
                                          A.state == "leased")
                          .order_by(A.leased_at, A.id)))


def held(s: Session, ref: str | int, reviewer: str, now: datetime) -> list[str]:
    """The items ``reviewer`` holds now, oldest first."""
    c = get(s, ref)
    return [a.trajectory_id for a in _held(s, c.id, reviewer) if a.expires_at >= now]


def claim(s: Session, ref: str | int, reviewer: str, *, now: datetime, hold: int = 1,
          ) -> str | None:
    """The item for ``reviewer``: the ``hold``-th one they hold (its lease renewed), else a new
    one (None: nothing left that they may take). ``hold=2`` is the prefetched next item."""
    c = get(s, ref)
    _open(c)
    sweep(s, c.id, now)
    until = now + timedelta(seconds=c.lease_seconds)
    mine = _held(s, c.id, reviewer)
    if len(mine) >= hold:
        a = mine[hold - 1]
        a.expires_at = until
        return a.trajectory_id
    postgres = s.get_bind().dialect.name == "postgresql"
    seen = select(A.id).where(A.item_id == I.id, A.reviewer == reviewer, A.state != "expired")
    for _ in range(8):
        q = (select(I.id, I.trajectory_id).where(I.campaign_id == c.id, I.is_open == true(),
                                                  ~exists(seen))
             .order_by(I.position).limit(_CANDIDATES))
        rows = s.execute(q.with_for_update(skip_locked=True, of=I) if postgres else q).all()
        if not rows:  # none, or (PostgreSQL) all of them locked by someone's claim or vote
            if postgres and s.execute(q.limit(1)).first() is not None:
                raise Busy(f"every open item of {c.name} is being claimed or decided")
            return None
        for item_id, tid in rows:
            old = s.scalars(select(A).where(A.item_id == item_id, A.reviewer == reviewer)).first()
            if not _move(s, c, item_id, old.state if old else None, "leased"):
                continue  # filled up since it was read
            if old is None:
                s.add(A(campaign_id=c.id, item_id=item_id, trajectory_id=tid, reviewer=reviewer,
                        state="leased", leased_at=now, expires_at=until))
            else:
                old.state, old.leased_at, old.expires_at = "leased", now, until
            s.flush()
            return tid
    return None


def release(s: Session, ref: str | int, reviewer: str, tid: str) -> bool:
    """Give a held item back before its lease runs out; False if it was not held."""
    c = get(s, ref)
    a = s.scalars(select(A).where(A.campaign_id == c.id, A.reviewer == reviewer,
                                  A.trajectory_id == tid, A.state == "leased")).first()
    if a is None:
        return False
    _move(s, c, a.item_id, "leased", "expired")
    a.state = "expired"
    s.flush()
    return True


def _item(s: Session, c: Campaign, tid: str) -> CampaignItemRow:
    item = s.scalars(select(I).where(I.campaign_id == c.id, I.trajectory_id == tid)).first()
    if item is None:
        raise NotFoundError(f"trajectory {tid} is not an item of campaign {c.name}")
    return item


def record_decision(s: Session, ref: str | int, tid: str, *, reviewer: str, decision: str,
                    score: float | None = None, notes: str = "",
                    expected_version: int | None = None, labels: tuple[str, ...] = (),
                    detail: dict[str, Any] | None = None, now: datetime) -> reviews.Review:
    """A reviewer's vote on an item, as a review with the campaign's id. Deciding on an item not
    held (never handed out, or its lease ran out) takes a free slot if there is one; a skip
    gives the slot back."""
    c = get(s, ref)
    _open(c)
    # Locks in one order everywhere: the trajectory (its status is recomputed from every vote
    # on it, so votes on it take turns), the reviewer's hold, the item (a sweep: hold, item).
    s.get(TrajectoryRow, tid, with_for_update=True)
    item = _item(s, c, tid)
    a = s.scalars(select(A).where(A.item_id == item.id, A.reviewer == reviewer)
                  .with_for_update()).first()
    old = a.state if a is not None else None
    new = "skipped" if decision == "skipped" else "decided"
    if not _move(s, c, item.id, old, new):
        raise ConflictError(
            f"trajectory {tid} already has its {c.overlap} reviewers in campaign {c.name} "
            f"({'your lease ran out and someone else took it; ' if old else ''}nothing was "
            "recorded): take the next item")
    review = reviews.add_review(s, tid, reviewer=reviewer, decision=decision, score=score,
                                notes=notes, expected_version=expected_version, labels=labels,
                                detail=detail, campaign_id=c.id)
    if a is None:
        a = A(campaign_id=c.id, item_id=item.id, trajectory_id=tid, reviewer=reviewer,
              leased_at=now, expires_at=now)
        s.add(a)
    a.state, a.decided_at, a.review_id = new, now, review.id
    s.flush()
    return review


def record_adjudication(s: Session, ref: str | int, tid: str, *, reviewer: str, decision: str,
                        score: float | None = None, notes: str = "",
                        labels: tuple[str, ...] = (), expected_version: int | None = None,
                        ) -> reviews.Review:
    c = get(s, ref)
    s.get(TrajectoryRow, tid, with_for_update=True)  # votes on it take turns (record_decision)
    _item(s, c, tid)
    if decision not in consensus.FINAL:
        raise ValueError(f"an adjudication accepts or rejects, not {decision!r}")
    return reviews.add_review(s, tid, reviewer=reviewer, decision=decision, score=score,
                              notes=notes, labels=labels, expected_version=expected_version,
                              detail={"adjudication": True}, campaign_id=c.id)


def undo_last_decision(s: Session, reviewer: str, *, now: datetime) -> reviews.Review | None:
    """:func:`startui.store.reviews.undo_last_decision`, and when the decision was a campaign
    vote the reviewer's hold goes back to what their remaining votes say (none left: the item is
    theirs again, leased, so it comes back on screen)."""
    r = reviews.undo_last_decision(s, reviewer)
    if r is None or r.campaign_id is None or r.detail.get("adjudication"):
        return r
    a = s.scalars(select(A).where(A.campaign_id == r.campaign_id, A.reviewer == reviewer,
                                  A.trajectory_id == r.trajectory_id)).first()
    if a is None:
        return r
    c = get(s, r.campaign_id)
    last = s.scalars(select(ReviewRow).where(
        ReviewRow.campaign_id == c.id, ReviewRow.trajectory_id == r.trajectory_id,
        ReviewRow.reviewer == reviewer, ReviewRow.decision.is_not(None),
        ReviewRow.undone_at.is_(None)).order_by(ReviewRow.created_at.desc(), ReviewRow.id.desc())
        .limit(1)).first()
    if last is None:
        new = "leased"
    else:
        new = "skipped" if last.decision == "skipped" else "decided"
    if not _move(s, c, a.item_id, a.state, new):
        new = "expired"  # its slot went to someone else meanwhile
        _move(s, c, a.item_id, a.state, new)
    a.state, a.review_id = new, None if last is None else last.id
    if new == "leased":
        a.leased_at, a.expires_at = now, now + timedelta(seconds=c.lease_seconds)
    s.flush()
    return r


# --- what a campaign holds ------------------------------------------------------------------

def votes(s: Session, ref: str | int) -> tuple[Campaign, dict[str, list[consensus.Vote]]]:
    """The campaign and its live votes per item (adjudications included), in order; every item
    is a key, voted on or not."""
    c = get(s, ref)
    out: dict[str, list[consensus.Vote]] = {
        tid: [] for tid in s.scalars(select(I.trajectory_id).where(I.campaign_id == c.id)
                                     .order_by(I.position))}
    for r in s.execute(select(ReviewRow.id, ReviewRow.trajectory_id, ReviewRow.reviewer,
                              ReviewRow.decision, ReviewRow.campaign_id, ReviewRow.detail)
                       .where(ReviewRow.campaign_id == c.id, ReviewRow.decision.is_not(None),
                              ReviewRow.undone_at.is_(None))
                       .order_by(ReviewRow.created_at, ReviewRow.id)):
        out.setdefault(r.trajectory_id, []).append(consensus.vote(r))
    return c, out


def campaign_reviews(s: Session, ref: str | int) -> list[reviews.Review]:
    """Every live review made in the campaign (decisions, scores, labels; adjudications have
    ``detail["adjudication"]``), in order."""
    c = get(s, ref)
    return [reviews._review(r) for r in s.scalars(
        select(ReviewRow).where(ReviewRow.campaign_id == c.id, ReviewRow.undone_at.is_(None))
        .order_by(ReviewRow.created_at, ReviewRow.id))]


def ratings(s: Session, ref: str | int) -> list[tuple[str, str, str, float | None]]:
    """(trajectory id, reviewer, decision, score) of every live vote in the campaign, in order,
    adjudications left out: what agreement is computed from (plain rows, no objects)."""
    c = get(s, ref)
    out = []
    for r in s.execute(select(ReviewRow.trajectory_id, ReviewRow.reviewer, ReviewRow.decision,
                              ReviewRow.score, ReviewRow.detail)
                       .where(ReviewRow.campaign_id == c.id, ReviewRow.decision.is_not(None),
                              ReviewRow.undone_at.is_(None))
                       .order_by(ReviewRow.created_at, ReviewRow.id)):
        if not (r.detail or {}).get("adjudication"):
            out.append((r.trajectory_id, r.reviewer, r.decision, r.score))
    return out


def step_labels(s: Session, ref: str | int) -> list[tuple[str, int, int, str, int]]:
    """(trajectory id, version, position, reviewer, label) of the campaign's reviewers on its
    items, every revision."""
    c = get(s, ref)
    q = (select(StepLabelRow.trajectory_id, StepLabelRow.trajectory_version,
                StepLabelRow.position, StepLabelRow.reviewer, StepLabelRow.label)
         .join(I, and_(I.trajectory_id == StepLabelRow.trajectory_id, I.campaign_id == c.id))
         .where(StepLabelRow.reviewer.in_(c.reviewers))
         .order_by(StepLabelRow.trajectory_id, StepLabelRow.trajectory_version,
                   StepLabelRow.position, StepLabelRow.reviewer))
    return [tuple(r) for r in s.execute(q)]


def disputes(s: Session, ref: str | int, *, include_adjudicated: bool = False) -> list[Dispute]:
    """Complete items whose reviewers disagree, in the campaign's order: the ones still waiting
    for an adjudication (``include_adjudicated``: those already adjudicated too)."""
    c, by_item = votes(s, ref)
    out = []
    for tid, vs in by_item.items():
        o = consensus.outcome(vs, c.overlap)
        if o.disputed and (include_adjudicated or o.adjudication is None):
            out.append(Dispute(tid, o.votes, o.adjudication))
    return out


def progress(s: Session, ref: str | int, *, now: datetime) -> Progress:
    c, by_item = votes(s, ref)
    counts = Counter()
    for vs in by_item.values():
        o = consensus.outcome(vs, c.overlap)
        if o.adjudication is not None:
            counts["adjudicated"] += 1
        elif o.disputed:
            counts["disputed"] += 1
        elif o.complete:
            counts["consensus"] += 1
    row = s.execute(select(
        func.count(),
        func.sum(case((I.decided >= c.overlap, 1), else_=0)),
        func.sum(case((and_(I.decided > 0, I.decided < c.overlap), 1), else_=0)),
    ).where(I.campaign_id == c.id)).one()
    total, done, started = int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)
    per: dict[str, dict[str, int]] = defaultdict(
        lambda: {"decided": 0, "skipped": 0, "leased": 0, "remaining": 0})
    for reviewer, state, n, live in s.execute(
            select(A.reviewer, A.state, func.count(),
                   func.sum(case((A.expires_at >= now, 1), else_=0)))
            .where(A.campaign_id == c.id).group_by(A.reviewer, A.state)):
        if state in ("decided", "skipped"):
            per[reviewer][state] += n
        elif state == "leased":
            per[reviewer]["leased"] += int(live or 0)
    leased = sum(p["leased"] for p in per.values())
    for reviewer in c.reviewers:  # left for them: not done, not decided or skipped by them
        seen = select(A.id).where(A.item_id == I.id, A.reviewer == reviewer,
                                  A.state.in_(("decided", "skipped")))
        per[reviewer]["remaining"] = s.scalar(
            select(func.count()).select_from(I)
            .where(I.campaign_id == c.id, I.decided < c.overlap, ~exists(seen))) or 0
    return Progress(campaign=c.name, items=total, done=done, started=started,
                    untouched=total - done - started, leased=leased,
                    consensus=counts["consensus"], disputed=counts["disputed"],
                    adjudicated=counts["adjudicated"],
                    reviewers={r: dict(per[r]) for r in sorted(per)})
