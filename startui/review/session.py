"""One reviewer's hands on the queue: the item on screen, the next one already loaded, undo.

What the Review tab and the benchmark drive. Deciding shows the prefetched next item at once;
undo brings the undone item back on screen (and the one you were on becomes next again). Keyset
cursors keep the place in a queue of 100k+ trajectories while others review too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from startui.answers import SCORER
from startui.review import decisions
from startui.review.edits import StaleOutput, stale_outputs
from startui.store.queue import QueueFilter
from startui.store.reviews import Review
from startui.trajectory import Trajectory


@dataclass
class Item:
    """A trajectory as a reviewer sees it."""

    trajectory: Trajectory
    version: int
    review_status: str
    answer: str | None
    reference: str | None
    extracted_by: str | None
    correct: bool | None  # the current rule verdict; None: unscored (or scored before an edit)
    reviews: list[Review] = field(default_factory=list)
    my_labels: dict[int, int] = field(default_factory=dict)
    stale: list[StaleOutput] = field(default_factory=list)
    revisions: int = 0

    @property
    def id(self) -> str:
        return self.trajectory.id


def load_item(store: Any, tid: str, reviewer: str) -> Item:
    traj, version = store.load_trajectory_versioned(tid)
    summary = store.trajectory_summary(tid)
    score = store.latest_scores(tid).get(SCORER)
    current = score is not None and score.trajectory_version in (None, version)
    detail = score.detail if score is not None else {}
    if not current:  # unscored, or scored before an edit: extract it as scoring would
        answer, how = traj.final_answer()
    else:
        answer, how = detail.get("answer"), detail.get("extracted_by")
    return Item(trajectory=traj, version=version, review_status=summary.review_status,
                answer=answer, reference=detail.get("reference", traj.problem.answer),
                extracted_by=how, correct=score.correct if current else None,
                reviews=store.list_reviews(tid),
                my_labels=store.step_labels(tid, version).get(reviewer, {}),
                stale=stale_outputs(store, tid), revisions=len(store.list_revisions(tid)))


class ReviewSession:
    def __init__(self, store: Any, reviewer: str, filter: QueueFilter | None = None) -> None:
        self.store, self.reviewer = store, reviewer
        self.filter = filter or QueueFilter()
        self.current: Item | None = None
        self.upcoming: Item | None = None
        self._cursor: list[Any] | None = None  # the current item's place in the queue
        self._up_cursor: list[Any] | None = None

    def _next(self, after: list[Any] | None, exclude: tuple[str, ...] = (),
              ) -> tuple[Item | None, list[Any] | None]:
        page = self.store.queue_page(self.filter, after=after, limit=1, exclude=exclude)
        if not page.items:
            return None, None
        return load_item(self.store, page.items[0].id, self.reviewer), page.cursor

    def _prefetch(self) -> None:
        if self.current is not None and self._cursor is None:
            self.upcoming, self._up_cursor = None, None  # the current one was the last
            return
        self.upcoming, self._up_cursor = self._next(
            self._cursor, (self.current.id,) if self.current else ())

    def set_filter(self, f: QueueFilter) -> Item | None:
        """Start the queue over with ``f``; the first item."""
        self.filter = f
        self.current, self._cursor = self._next(None)
        self._prefetch()
        return self.current

    def open(self, tid: str) -> Item:
        """Any trajectory by its id (a deep link), in the queue or not; the queue's head is
        next."""
        self.current = load_item(self.store, str(tid).strip(), self.reviewer)
        self.upcoming, self._up_cursor = self._next(None, (self.current.id,))
        self._cursor = None
        return self.current

    def reload(self) -> Item | None:
        """The current item again (after an edit or a label)."""
        if self.current is not None:
            self.current = load_item(self.store, self.current.id, self.reviewer)
        return self.current

    def advance(self) -> Item | None:
        """The prefetched item becomes current as it is (one summary read checks that nobody
        edited or decided it meanwhile; only then is it loaded again); the next is prefetched."""
        self.current, self._cursor = self.upcoming, self._up_cursor
        if self.current is not None:
            summary = self.store.trajectory_summary(self.current.id)
            if (summary.version, summary.review_status) != (self.current.version,
                                                            self.current.review_status):
                self.current = load_item(self.store, self.current.id, self.reviewer)
            self._prefetch()
        else:
            self.upcoming = None
        return self.current

    def decide(self, decision: str, **kw: Any) -> Item | None:
        """Decide on the current item (on the version on screen) and show the next."""
        if self.current is None:
            raise ValueError("nothing to decide on: the queue is empty for these filters")
        kw.setdefault("expected_version", self.current.version)
        decisions.decide(self.store, self.current.id, reviewer=self.reviewer,
                         decision=decision, **kw)
        return self.advance()

    def undo(self) -> Item | None:
        """Undo my last decision: that item is back on screen, the one I was on is next."""
        review = decisions.undo(self.store, self.reviewer)
        if review is None:
            return None
        was, was_cursor = self.current, self._cursor
        self.current = load_item(self.store, review.trajectory_id, self.reviewer)
        if was is not None and was.id != self.current.id:
            self.upcoming, self._up_cursor = was, was_cursor
        self._cursor = None
        return self.current

    def counts(self) -> dict[str, int]:
        return self.store.queue_counts(self.filter)

    def progress(self, counts: dict[str, int] | None = None) -> dict[str, int]:
        """My decisions (today, in all) and the queue's (``counts``: when the caller already
        has them, they are not counted again)."""
        counts = counts if counts is not None else self.counts()
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        mine = self.store.reviewer_progress(self.reviewer, since=today)
        return {"mine": mine["decided"], "today": mine["since"],
                "done": counts["accepted"] + counts["rejected"], "total": counts["total"]}
