"""Where trajectories stand with people and the rule scorer, read in bulk and without their text:
review status (and how people's word came about), the current rule score (or that it went stale
with an edit), who edited them, and the step labels of their current version.

This is the part of a :class:`~startui.store.records.Record` that is not the trajectory itself.
Selection and the Dataset tab need it for every trajectory of the runs, 100,000 at a time, so
it reads each table once per scope (a list of ids, or a ``SELECT`` of the runs' ids) instead of
loading segments. People's status is decided by :mod:`startui.store.consensus`, as everywhere.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from sqlalchemy import null, true
from sqlalchemy import select as sql
from sqlalchemy.orm import Session

from startui.answers import SCORER, ScoreResult
from startui.store import consensus
from startui.store.models import ReviewRow, RevisionRow, ScoreRow, StepLabelRow

CHUNK = 500  # ids per IN list


@dataclass(slots=True)
class Standing:
    """What people and the rule scorer said about one trajectory at its current version."""

    review_status: str  # pending | accepted | rejected | skipped | needs_review
    # How people's status came about: "adjudicated", "consensus", "disputed" (a campaign's
    # reviewers disagree, nobody adjudicated: neither accepted nor rejected), "reviewer" (one
    # person's decision), None (nobody decided: the rules do).
    human: str | None
    reviewer: str | None
    score: ScoreResult | None  # the current rule score (None: unscored, or scored before an edit)
    score_stale: bool = False
    editors: list[str] = field(default_factory=list)  # who edited it (revisions), in order
    # Process supervision of this version: {position: -1 | 0 | +1} by ``labelled_by`` (the
    # deciding reviewer's labels when they labelled it, else the latest labeller's)
    step_labels: dict[int, int] = field(default_factory=dict)
    labelled_by: str | None = None

    @property
    def correct(self) -> bool | None:
        return None if self.score is None else self.score.correct


def _scoped(column: Any, ids: Sequence[str], scope: Any) -> Iterator[Any]:
    """WHERE clauses covering ``ids``: ``column IN (scope)`` once, none at all (``scope`` True:
    every trajectory's rows are read, those of other trajectories ignored), or the ids 500 at
    a time (a trajectory's rows always fall in one chunk, so per-trajectory order is kept)."""
    if scope is True:
        yield true()
        return
    if scope is not None:
        yield column.in_(scope)
        return
    for i in range(0, len(ids), CHUNK):
        yield column.in_(list(ids[i:i + CHUNK]))


def standings(s: Session, rows: Sequence[Any], *, scope: Any = None,
              details: bool = True) -> list[Standing]:
    """One :class:`Standing` per trajectories row (``id``, ``version``, ``review_status``), in
    order. ``scope``: a ``SELECT`` of trajectory ids that covers ``rows`` (the runs' ids), so
    each table is read in one pass; True: read every trajectory's (when ``rows`` are nearly
    all of them); None: the rows' ids, in IN lists. ``details=False``: the
    scores come without their ``detail`` (empty; selection and the dashboards need only
    whether it was correct, and 100,000 JSON documents less is a good part of a draw)."""
    conn = s.connection()  # Core: 100,000 rows need no ORM result machinery
    keys = list(map(attrgetter("id", "version", "review_status"), rows))
    ids = [k[0] for k in keys] if scope is None else []
    S, R, V, L = ScoreRow, ReviewRow, RevisionRow, StepLabelRow
    scores: dict[str, Any] = {}
    q = sql(S.trajectory_id, S.correct, S.value,
            S.detail if details else null().label("detail"), S.trajectory_version)
    for where in _scoped(S.trajectory_id, ids, scope):
        # each trajectory's scores oldest first (its index's order: no sort), the newest wins
        for score in conn.execute(q.where(where, S.scorer == SCORER)
                                  .order_by(S.trajectory_id, S.created_at, S.id)).fetchall():
            scores[score[0]] = score
    reviewers: dict[str, str] = {}
    votes: dict[str, list[consensus.Vote]] = defaultdict(list)
    q = sql(R.id, R.trajectory_id, R.reviewer, R.decision, R.campaign_id, R.detail)
    for where in _scoped(R.trajectory_id, ids, scope):
        for rv in conn.execute(q.where(where, R.decision.is_not(None), R.undone_at.is_(None))
                               .order_by(R.created_at, R.id)):
            reviewers[rv.trajectory_id] = rv.reviewer
            votes[rv.trajectory_id].append(consensus.vote(rv))
    overlaps = consensus.overlaps(s, (v.campaign_id for vs in votes.values() for v in vs
                                      if v.campaign_id is not None))
    editors: dict[str, list[str]] = defaultdict(list)
    q = sql(V.trajectory_id, V.editor)
    for where in _scoped(V.trajectory_id, ids, scope):
        for tid, editor in conn.execute(q.where(where, V.editor.is_not(None))
                                        .order_by(V.trajectory_id, V.version)):
            if editor not in editors[tid]:
                editors[tid].append(editor)
    labelled: dict[str, list[Any]] = defaultdict(list)  # every version's, in order
    q = sql(L.trajectory_id, L.trajectory_version, L.reviewer, L.position, L.label)
    for where in _scoped(L.trajectory_id, ids, scope):
        for lb in conn.execute(q.where(where).order_by(L.created_at, L.id)):
            labelled[lb[0]].append(lb)
    out = []
    reviewer_said = consensus.REVIEWER
    for tid, version, status in keys:  # 100,000 at a time: most take none of the branches
        human = None if status == "pending" else reviewer_said
        reviewer = reviewers.get(tid)
        if tid in votes:
            resolved = consensus.resolve(votes[tid], overlaps)
            if resolved is not None:
                status, human = resolved
                if human == consensus.ADJUDICATED:  # the adjudicator has the last word
                    reviewer = next(v.reviewer for v in reversed(votes[tid]) if v.adjudication)
        by, steps = None, {}
        if tid in labelled:  # this version's: the deciding reviewer's if any, else the latest's
            mine: dict[str, dict[int, int]] = {}
            for _, v, who, position, label in labelled[tid]:
                if v == version:
                    mine.setdefault(who, {})[position] = label
                    by = who
            if reviewer in mine:
                by = reviewer
            if by:
                steps = dict(sorted(mine[by].items()))
        score, stale = None, False
        sc = scores.get(tid)
        if sc is not None:
            if sc[4] is None or sc[4] == version:
                score = ScoreResult(sc[1], sc[2], dict(sc[3] or {}))
            else:
                stale = True
        out.append(Standing(status, human, reviewer, score, stale, editors.get(tid, []), steps,
                            by))
    return out
