"""Review campaigns: several reviewers per trajectory, handed out fairly, disagreements settled.

An admin makes a campaign from a queue filter (run, verdict, human hint, …) and "at most k per
problem", names its reviewers, the overlap N (reviewers per trajectory) and optionally an
adjudicator. Each reviewer pulls their next item (:func:`next_item`): never one they already
decided or skipped, never one that already has N holders, and never waiting on an item someone
else holds — a lease (15 minutes by default) that runs out puts the item back in the pool. An
item is done when N reviewers decided. Items whose reviewers disagree wait in
:func:`needs_adjudication` for an admin or the named adjudicator, who sees every review side by
side (:func:`adjudication_view`) and records the final decision (:func:`adjudicate`). Selection
and export then take the adjudicated decision, then the consensus, then the rules
(:mod:`startui.store.consensus`).

Who may do what: creating and closing a campaign and adjudicating need an admin (or, for
adjudicating, being the campaign's adjudicator); pulling and deciding need a reviewer named in the
campaign; a viewer is refused with a message. Reading progress and agreement is open to all.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from startui.answers import SCORER
from startui.review.edits import SegmentDiff, diff
from startui.review.guide import check_rating
from startui.review.users import PermissionDenied, check_name, require, role_of
from startui.store.campaigns import Campaign, Dispute, Progress
from startui.store.consensus import FINAL, outcome
from startui.store.queue import QueueFilter
from startui.store.reviews import Review

__all__ = ["DEFAULT_LEASE_SECONDS", "AdjudicationView", "Campaign", "Dispute", "Progress",
           "ReviewerSide", "adjudicate", "adjudication_view", "can_adjudicate",
           "close_campaign", "create_campaign", "get_campaign", "held_items", "list_campaigns",
           "needs_adjudication", "next_item", "prefetch_item", "progress", "release_item"]

DEFAULT_LEASE_SECONDS = 15 * 60
_DECISION_WORDS = {"accept": "accepted", "accepted": "accepted", "reject": "rejected",
                   "rejected": "rejected"}


def get_campaign(store: Any, campaign: Campaign | str | int) -> Campaign:
    """A campaign by name or id (a :class:`Campaign` is read again: its counts move)."""
    return store.get_campaign(campaign.id if isinstance(campaign, Campaign) else campaign)


def list_campaigns(store: Any) -> list[Campaign]:
    return store.list_campaigns()


def _may_review(store: Any, name: str, what: str) -> None:
    if store.list_users() and store.get_user(name) is None:
        raise ValueError(f"no user {name!r}: add them first (`python -m startui users add "
                         f"{name}`)")
    role = role_of(store, name)
    if role not in ("admin", "reviewer"):
        raise ValueError(f"{name} is a {role} and cannot be {what} (an admin can change it with "
                         f"`python -m startui users role {name} reviewer`)")


def create_campaign(store: Any, name: str, *, by: str, filter: QueueFilter | None = None,
                    reviewers: list[str] | tuple[str, ...], overlap: int = 2,
                    per_problem: int | None = None, adjudicator: str | None = None,
                    lease_seconds: int = DEFAULT_LEASE_SECONDS) -> Campaign:
    """Make a campaign over what ``filter`` picks (default: the pending queue), at most
    ``per_problem`` trajectories per problem, each to be decided by ``overlap`` of
    ``reviewers``. Admins only."""
    if not store.list_users():
        raise PermissionDenied("a campaign hands work to named people: add an admin and the "
                               "reviewers first (`python -m startui users add ann --role admin`)")
    require(store, by, "campaign")
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise ValueError("a campaign needs a name of 1 to 200 characters")
    people = list(dict.fromkeys(r.strip() for r in reviewers if r and r.strip()))
    if int(overlap) != overlap or overlap < 1:
        raise ValueError(f"the overlap (reviewers per trajectory) is at least 1, not {overlap!r}")
    if len(people) < overlap:
        raise ValueError(f"an overlap of {overlap} needs at least {overlap} reviewers; "
                         f"{len(people)} named ({', '.join(people) or 'none'})")
    if per_problem is not None and per_problem < 1:
        raise ValueError(f"per problem is at least 1 (or no cap), not {per_problem}")
    if lease_seconds < 1:
        raise ValueError(f"a lease lasts at least a second, not {lease_seconds}")
    for person in people:
        check_name(person)
        _may_review(store, person, "a campaign's reviewer")
    if adjudicator:
        _may_review(store, check_name(adjudicator.strip()), "its adjudicator")
    return store.create_campaign(name, filter=filter or QueueFilter(), per_problem=per_problem,
                                 overlap=int(overlap), reviewers=people,
                                 adjudicator=adjudicator.strip() if adjudicator else None,
                                 lease_seconds=int(lease_seconds), created_by=by)


def close_campaign(store: Any, campaign: Campaign | str | int, *, by: str,
                   reopen: bool = False) -> Campaign:
    """Stop (or restart) handing out and taking votes; what was decided stays."""
    require(store, by, "campaign")
    c = get_campaign(store, campaign)
    return store.set_campaign_status(c.id, "open" if reopen else "closed")


def check_reviewer(store: Any, campaign: Campaign, reviewer: str, *,
                   role_checked: bool = False) -> None:
    """``reviewer`` may pull and decide in ``campaign``: a reviewer (or admin) it names."""
    if not role_checked:
        require(store, reviewer, "decide")
    if reviewer not in campaign.reviewers:
        raise PermissionDenied(f"{reviewer} is not a reviewer of campaign {campaign.name} (its "
                               f"reviewers: {', '.join(campaign.reviewers)}); an admin names "
                               "the reviewers when creating a campaign")


def next_item(store: Any, campaign: Campaign | str | int, reviewer: str, *,
              now: datetime | None = None) -> str | None:
    """The trajectory id ``reviewer`` should review now: the one they hold (lease renewed), else
    a new one; None when nothing is left that they may take (all done, decided by them, or held
    by others for now). Safe to call from many reviewers at once."""
    c = get_campaign(store, campaign)
    check_reviewer(store, c, reviewer)
    return store.claim_campaign_item(c.id, reviewer, now=now)


def prefetch_item(store: Any, campaign: Campaign | str | int, reviewer: str, *,
                  now: datetime | None = None) -> str | None:
    """A second item held for ``reviewer`` (the one a review screen loads in advance)."""
    c = get_campaign(store, campaign)
    check_reviewer(store, c, reviewer)
    return store.claim_campaign_item(c.id, reviewer, hold=2, now=now)


def held_items(store: Any, campaign: Campaign | str | int, reviewer: str) -> list[str]:
    return store.held_campaign_items(get_campaign(store, campaign).id, reviewer)


def release_item(store: Any, campaign: Campaign | str | int, reviewer: str, tid: str) -> bool:
    """Give a held item back now rather than when its lease runs out."""
    c = get_campaign(store, campaign)
    check_reviewer(store, c, reviewer)
    return store.release_campaign_item(c.id, reviewer, tid)


def progress(store: Any, campaign: Campaign | str | int) -> Progress:
    """Items done / started / untouched / leased, consensus / disputed / adjudicated, and per
    reviewer: decided, skipped, leased (held now), remaining (items not done that they have not
    decided or skipped, the held ones included: what is left in their queue)."""
    return store.campaign_progress(get_campaign(store, campaign).id)


# --- adjudication -------------------------------------------------------------------------------

def can_adjudicate(store: Any, campaign: Campaign, name: str) -> bool:
    try:
        _check_adjudicator(store, campaign, name)
    except PermissionDenied:
        return False
    return True


def _check_adjudicator(store: Any, campaign: Campaign, name: str) -> None:
    if campaign.adjudicator and name == campaign.adjudicator:
        require(store, name, "decide")  # the named adjudicator, unless made a viewer since
        return
    try:
        require(store, name, "adjudicate")
    except PermissionDenied as e:
        if campaign.adjudicator:
            raise PermissionDenied(f"{e}; campaign {campaign.name}'s adjudicator is "
                                   f"{campaign.adjudicator}") from None
        raise


def needs_adjudication(store: Any, campaign: Campaign | str | int, *, by: str,
                       include_adjudicated: bool = False) -> list[Dispute]:
    """Items every one of whose N reviewers decided, and who disagree, still unsettled (with
    ``include_adjudicated``: the settled ones too), in the campaign's order."""
    c = get_campaign(store, campaign)
    _check_adjudicator(store, c, by)
    return store.campaign_disputes(c.id, include_adjudicated=include_adjudicated)


@dataclass
class EditDiff:
    """One revision a reviewer saved, as the changes from the revision before it."""

    version: int
    note: str
    created_at: str | None
    diffs: list[SegmentDiff]


@dataclass
class ReviewerSide:
    """One reviewer's word on the item, as the adjudicator sees it."""

    reviewer: str
    decision: str | None
    score: float | None
    labels: list[str]
    comment: str
    decided_at: str | None
    version: int | None  # the trajectory version they decided on
    step_labels: dict[int, int] = field(default_factory=dict)  # of that version
    edits: list[EditDiff] = field(default_factory=list)


@dataclass
class AdjudicationView:
    campaign: str
    trajectory_id: str
    version: int
    review_status: str
    correct: bool | None  # the current rule verdict (None: unscored or scored before an edit)
    state: str  # disputed | consensus | in progress | adjudicated
    sides: list[ReviewerSide]
    adjudication: Review | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def adjudication_view(store: Any, campaign: Campaign | str | int, tid: str, *,
                      by: str) -> AdjudicationView:
    """Every reviewer's decision, score, labels, comment, step labels and edits (as diffs
    between revisions) on one item of the campaign, side by side."""
    c = get_campaign(store, campaign)
    _check_adjudicator(store, c, by)
    _, by_item = store.campaign_votes(c.id)
    if tid not in by_item:
        raise ValueError(f"trajectory {tid} is not an item of campaign {c.name}")
    summary = store.trajectory_summary(tid)
    mine = [r for r in store.list_reviews(tid)
            if r.campaign_id == c.id and r.undone_at is None]
    latest: dict[str, Review] = {}
    adjudication = None
    for r in mine:
        if r.detail.get("adjudication"):
            adjudication = r if r.decision in FINAL else adjudication
        else:
            latest[r.reviewer] = r  # in order: their latest vote
    revisions = store.list_revisions(tid)
    labels_by_version: dict[int, dict[str, dict[int, int]]] = {}
    sides = []
    for reviewer, r in latest.items():
        if r.trajectory_version not in labels_by_version:
            labels_by_version[r.trajectory_version] = store.step_labels(
                tid, r.trajectory_version)
        edits = [EditDiff(rev.version, rev.note, rev.created_at,
                          diff(revisions[i - 1].segments, rev.segments))
                 for i, rev in enumerate(revisions) if i and rev.editor == reviewer]
        sides.append(ReviewerSide(
            reviewer=reviewer, decision=r.decision, score=r.score, labels=list(r.labels),
            comment=r.notes, decided_at=r.created_at, version=r.trajectory_version,
            step_labels=dict(labels_by_version[r.trajectory_version].get(reviewer, {})),
            edits=edits))
    o = outcome(by_item[tid], c.overlap)
    state = ("adjudicated" if o.adjudication else "disputed" if o.disputed
             else "consensus" if o.complete else "in progress")
    score = store.latest_scores(tid).get(SCORER)
    current = score is not None and score.trajectory_version in (None, summary.version)
    return AdjudicationView(campaign=c.name, trajectory_id=tid, version=summary.version,
                            review_status=summary.review_status,
                            correct=score.correct if current else None, state=state,
                            sides=sides, adjudication=adjudication)


def adjudicate(store: Any, campaign: Campaign | str | int, tid: str, decision: str, *, by: str,
               score: int | None = None, comment: str = "",
               labels: list[str] | tuple[str, ...] = (),
               expected_version: int | None = None) -> Review:
    """The final decision on an item (accept or reject): a review with the campaign's id and
    ``detail["adjudication"]``; it sets the trajectory's review status and beats the
    reviewers' votes in selection and export."""
    c = get_campaign(store, campaign)
    _check_adjudicator(store, c, by)
    final = _DECISION_WORDS.get((decision or "").strip().lower())
    if final is None:
        raise ValueError(f"an adjudication accepts or rejects, not {decision!r}")
    check_rating(store, score, labels)
    return store.add_adjudication(c.id, tid, reviewer=by, decision=final,
                                  score=None if score is None else float(score),
                                  notes=comment or "", labels=list(labels),
                                  expected_version=expected_version)
