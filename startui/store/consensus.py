"""What people decided about a trajectory, when several of them did: adjudication, then
consensus, then a single reviewer's decision (and the rules when nobody decided).

A decision made in a review campaign is one *vote*. An item of a campaign with overlap N is
*complete* when N different reviewers voted accept, reject or needs-review on it (a skip passes
the item on and is not a vote; a reviewer's latest vote counts). A complete item whose votes are
all "accepted" (or all "rejected") has a *consensus*; any other complete item is *disputed* and
waits for an admin or the campaign's adjudicator, whose decision (a review with
``detail["adjudication"]``) beats everything. An item still being voted on has no campaign
outcome yet: what a reviewer decided outside any campaign stands meanwhile.

Trajectories without campaign votes keep the behaviour they always had: their latest decision
(``trajectories.review_status``) is their status. The same rules set that column after every
campaign vote, undo and adjudication (so the queue and its counts agree with the export) and
decide a record's status at export time (:mod:`startui.store.records`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from startui.store.models import CampaignRow, ReviewRow, TrajectoryRow, utcnow

VOTES = ("accepted", "rejected", "needs_review")  # what counts towards a campaign's overlap
FINAL = ("accepted", "rejected")  # what an adjudication or a consensus can be
# How people's status came about (Record.human): the first three need a campaign.
ADJUDICATED, CONSENSUS, DISPUTED, REVIEWER = "adjudicated", "consensus", "disputed", "reviewer"
CAMPAIGN_SOURCES = (ADJUDICATED, CONSENSUS, DISPUTED)


@dataclass(frozen=True)
class Vote:
    """A live (not undone) decision on one trajectory, in the order it was made."""

    id: int
    reviewer: str
    decision: str
    campaign_id: int | None = None
    adjudication: bool = False


@dataclass(frozen=True)
class Outcome:
    """One campaign's word on one trajectory."""

    complete: bool
    decision: str | None  # the consensus, when complete and unanimous
    votes: dict[str, str]  # reviewer -> their latest vote (skips left out)
    adjudication: str | None = None

    @property
    def disputed(self) -> bool:
        return self.complete and self.decision is None


def outcome(votes: Sequence[Vote], overlap: int) -> Outcome:
    """The outcome of one campaign's votes on one trajectory (``votes`` in order)."""
    latest: dict[str, str] = {}
    adjudication = None
    for v in votes:
        if v.adjudication:
            if v.decision in FINAL:
                adjudication = v.decision
            continue
        latest[v.reviewer] = v.decision
    counted = {r: d for r, d in latest.items() if d in VOTES}
    complete = len(counted) >= max(1, overlap)
    kinds = set(counted.values())
    decision = kinds.pop() if complete and len(kinds) == 1 else None
    return Outcome(complete, decision if decision in FINAL else None, counted, adjudication)


def resolve(votes: Sequence[Vote], overlaps: Mapping[int, int]) -> tuple[str, str | None] | None:
    """(review status, how it came about) from a trajectory's live decisions in order; None when
    none of them was made in a campaign (the stored status stands, as before campaigns).

    Adjudication beats consensus beats a single reviewer's decision; a complete campaign item
    whose reviewers disagree (or two campaigns that disagree) is "needs_review": neither
    accepted nor rejected by people, so the rules decide its fate in a selection."""
    if not any(v.campaign_id is not None for v in votes):
        return None
    adjudications = [v for v in votes if v.adjudication and v.decision in FINAL]
    if adjudications:
        return adjudications[-1].decision, ADJUDICATED
    by_campaign: dict[int, list[Vote]] = defaultdict(list)
    for v in votes:
        if v.campaign_id is not None:
            by_campaign[v.campaign_id].append(v)
    finals = set()
    for cid, vs in by_campaign.items():
        o = outcome(vs, overlaps.get(cid, 1))
        if o.disputed:
            return "needs_review", DISPUTED
        if o.complete:
            finals.add(o.decision)
    if len(finals) > 1:
        return "needs_review", DISPUTED
    if finals:
        return finals.pop(), CONSENSUS
    plain = [v for v in votes if v.campaign_id is None]
    return (plain[-1].decision, REVIEWER) if plain else ("pending", None)


def load_votes(s: Session, ids: Iterable[str]) -> dict[str, list[Vote]]:
    """Every live decision of these trajectories, in order."""
    out: dict[str, list[Vote]] = defaultdict(list)
    ids = list(ids)
    for i in range(0, len(ids), 500):
        for r in s.execute(select(ReviewRow.id, ReviewRow.trajectory_id, ReviewRow.reviewer,
                                  ReviewRow.decision, ReviewRow.campaign_id, ReviewRow.detail)
                           .where(ReviewRow.trajectory_id.in_(ids[i:i + 500]),
                                  ReviewRow.decision.is_not(None),
                                  ReviewRow.undone_at.is_(None))
                           .order_by(ReviewRow.created_at, ReviewRow.id)):
            out[r.trajectory_id].append(vote(r))
    return out


def vote(r: Any) -> Vote:
    return Vote(r.id, r.reviewer, r.decision, r.campaign_id,
                bool((r.detail or {}).get("adjudication")) and r.campaign_id is not None)


def overlaps(s: Session, campaign_ids: Iterable[int]) -> dict[int, int]:
    ids = sorted(set(campaign_ids))
    if not ids:
        return {}
    return dict(s.execute(select(CampaignRow.id, CampaignRow.overlap)
                          .where(CampaignRow.id.in_(ids))).all())


def statuses(s: Session, ids: Iterable[str]) -> dict[str, tuple[str, str | None]]:
    """{trajectory id: (status, how)} for those of ``ids`` that have campaign votes."""
    votes = load_votes(s, ids)
    camp = overlaps(s, (v.campaign_id for vs in votes.values() for v in vs
                        if v.campaign_id is not None))
    out = {}
    for tid, vs in votes.items():
        got = resolve(vs, camp)
        if got is not None:
            out[tid] = got
    return out


def refresh(s: Session, tid: str) -> str | None:
    """Set a trajectory's review status from its votes when it has campaign votes; returns the
    status set (None: no campaign vote, nothing changed)."""
    s.flush()
    got = statuses(s, [tid]).get(tid)
    if got is None:
        return None
    row = s.get(TrajectoryRow, tid)
    if row is not None and row.review_status != got[0]:
        row.review_status = got[0]
        row.reviewed_at = None if got[0] == "pending" else utcnow()
    return got[0]
