"""Decisions: accept, reject, skip or ask for another review — one at a time, undone, or by rule.

Every decision names the reviewer, the time and the trajectory version it was about (the store
refuses one made on a version that changed since it was loaded). Accepting a trajectory whose
current revision has stale outputs is refused unless the reviewer gives a reason, which is kept.
A decision made in a review campaign (``campaign=``) is that reviewer's vote there
(:mod:`startui.review.campaigns`): recorded with the campaign's id, and it fills the reviewer's
slot on the item.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from startui.review import campaigns
from startui.review.edits import stale_outputs
from startui.review.guide import check_rating
from startui.review.users import require
from startui.store import ConflictError
from startui.store.models import DECISIONS
from startui.store.queue import QueueFilter
from startui.store.reviews import Review


class StaleOutputsBlock(ValueError):
    """Accepting would train on outputs that no longer match their code."""


def decide(store: Any, tid: str, *, reviewer: str, decision: str, score: int | None = None,
           labels: list[str] | tuple[str, ...] = (), comment: str = "",
           expected_version: int | None = None, override_reason: str | None = None,
           campaign: campaigns.Campaign | str | int | None = None,
           now: datetime | None = None) -> Review:
    """Record ``reviewer``'s decision; with ``campaign``, as their vote in that campaign (they
    must be one of its reviewers; ``now`` is the clock its leases are read with)."""
    require(store, reviewer, "decide")
    camp = None
    if campaign is not None:
        camp = campaigns.get_campaign(store, campaign)
        campaigns.check_reviewer(store, camp, reviewer, role_checked=True)
    if decision not in DECISIONS:
        raise ValueError(f"a decision is one of {', '.join(DECISIONS)}, not {decision!r}")
    check_rating(store, score, labels)
    detail: dict[str, Any] = {}
    if decision == "accepted":
        stale = stale_outputs(store, tid)
        if stale and not (override_reason or "").strip():
            where = ", ".join(str(s.position) for s in stale)
            many = len(stale) > 1
            raise StaleOutputsBlock(
                f"{len(stale)} output{'s' if many else ''} (segment{'s' if many else ''} "
                f"{where}) no longer match{'' if many else 'es'} {'their' if many else 'its'} "
                "code after the edit: take the new output, or accept with a reason")
        if stale:
            detail = {"stale_override": override_reason.strip(), "stale": len(stale)}
    if camp is not None:
        return store.add_campaign_review(
            camp.id, tid, reviewer=reviewer, decision=decision,
            score=None if score is None else float(score), notes=comment or "",
            expected_version=expected_version, labels=list(labels), detail=detail, now=now)
    return store.add_review(tid, reviewer=reviewer, decision=decision,
                            score=None if score is None else float(score), notes=comment or "",
                            expected_version=expected_version, labels=list(labels),
                            detail=detail)


def undo(store: Any, reviewer: str) -> Review | None:
    """Take ``reviewer``'s last decision back (None: nothing left to undo)."""
    require(store, reviewer, "decide")
    return store.undo_last_decision(reviewer)


def decide_by_rule(store: Any, *, runs: list[str], reviewer: str, decision: str = "accepted",
                   verdict: str = "correct", only_pending: bool = True) -> int:
    """Decide every trajectory of ``runs`` whose rule verdict is ``verdict`` (e.g. accept every
    rule-correct one), so people review only the rest. Returns how many were decided;
    trajectories with stale outputs, or changed by someone while the pages were read, are left
    for a person. Keyset pages: deciding an item moves it out of "pending" without making the
    walk skip or repeat any other."""
    require(store, reviewer, "decide")
    done = 0
    for run in store.resolve_runs(runs):
        f = QueueFilter(review_status="pending" if only_pending else None, verdict=verdict,
                        run_id=run)
        cursor = None
        while True:
            page = store.queue_page(f, after=cursor, limit=200)
            for item in page.items:
                try:
                    decide(store, item.id, reviewer=reviewer, decision=decision,
                           expected_version=item.version)
                    done += 1
                except (StaleOutputsBlock, ConflictError):
                    continue  # stale outputs, or edited/decided meanwhile: left for a person
            if page.cursor is None:
                break
            cursor = page.cursor
    return done
