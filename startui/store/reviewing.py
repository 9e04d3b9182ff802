"""The store's methods for what people add to trajectories: edits, reviews and rule scores, the
review queue, step labels and re-run checks, review campaigns, users and team settings.

A base class of :class:`~startui.store.facade.Store`, split out so that neither file is a wall:
everything here goes through the store's ``read`` / ``write`` transactions and the functions of
this package, like the rest of the facade.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from startui.store import campaigns, reviews
from startui.store import queue as review_queue
from startui.store.repository import StoreError
from startui.store.reviews import Review, Revision, Score
from startui.trajectory import Segment

R = TypeVar("R")


class Reviewing:
    # --- edits, reviews, scores --------------------------------------------------------------

    def update_trajectory_segments(self, trajectory_id: str, segments: list[Segment], *,
                                   expected_version: int, editor: str, note: str = "") -> int:
        """Replace the segments if nobody changed the trajectory since ``expected_version``
        (else :class:`ConflictError`); records a revision; returns the new version."""
        return self.write(lambda s: reviews.update_segments(
            s, trajectory_id, segments, expected_version=expected_version, editor=editor,
            note=note))

    def list_revisions(self, trajectory_id: str) -> list[Revision]:
        with self.read() as s:
            return reviews.list_revisions(s, trajectory_id)

    def add_review(self, trajectory_id: str, *, reviewer: str, decision: str | None = None,
                   score: float | None = None, notes: str = "",
                   expected_version: int | None = None, labels: Sequence[str] = (),
                   detail: dict[str, Any] | None = None) -> Review:
        """A review outside any campaign (:meth:`add_campaign_review` for a campaign's)."""
        return self.write(lambda s: reviews.add_review(
            s, trajectory_id, reviewer=reviewer, decision=decision, score=score, notes=notes,
            expected_version=expected_version, labels=labels, detail=detail))

    def undo_last_decision(self, reviewer: str) -> Review | None:
        """Undo ``reviewer``'s latest decision (None when there is none left to undo); a
        campaign vote undone gives the reviewer the item back."""
        return self.write(lambda s: campaigns.undo_last_decision(s, reviewer, now=_now()))

    # --- review campaigns --------------------------------------------------------------------

    def create_campaign(self, name: str, *, filter: review_queue.QueueFilter,
                        per_problem: int | None, overlap: int, reviewers: Sequence[str],
                        adjudicator: str | None, lease_seconds: int, created_by: str,
                        ) -> campaigns.Campaign:
        """The campaign and its items (what ``filter`` picks, in its order, at most
        ``per_problem`` per problem), in one transaction."""
        return self.write(lambda s: campaigns.create(
            s, name=name, filter=filter, per_problem=per_problem, overlap=overlap,
            reviewers=list(reviewers), adjudicator=adjudicator, lease_seconds=lease_seconds,
            created_by=created_by))

    def get_campaign(self, ref: str | int) -> campaigns.Campaign:
        with self.read() as s:
            return campaigns.get(s, ref)

    def list_campaigns(self) -> list[campaigns.Campaign]:
        with self.read() as s:
            return campaigns.list_all(s)

    def set_campaign_status(self, ref: str | int, status: str) -> campaigns.Campaign:
        return self.write(lambda s: campaigns.set_status(s, ref, status))

    def claim_campaign_item(self, ref: str | int, reviewer: str, *, hold: int = 1,
                            now: datetime | None = None) -> str | None:
        """Hand ``reviewer`` an item (see :func:`startui.store.campaigns.claim`): one write
        transaction, retried when a concurrent one on PostgreSQL won a race it lost, or when
        every item left was locked by a transaction in flight (a few ms; never a lease)."""
        for attempt in range(12):
            try:
                return self._retrying(lambda s: campaigns.claim(s, ref, reviewer, hold=hold,
                                                                now=now or _now()))
            except campaigns.Busy:
                time.sleep(min(0.2, 0.002 * 2 ** attempt))
        return None

    def release_campaign_item(self, ref: str | int, reviewer: str, trajectory_id: str) -> bool:
        return self.write(lambda s: campaigns.release(s, ref, reviewer, trajectory_id))

    def held_campaign_items(self, ref: str | int, reviewer: str, *,
                            now: datetime | None = None) -> list[str]:
        with self.read() as s:
            return campaigns.held(s, ref, reviewer, now or _now())

    def add_campaign_review(self, ref: str | int, trajectory_id: str, *, reviewer: str,
                            decision: str, score: float | None = None, notes: str = "",
                            expected_version: int | None = None, labels: Sequence[str] = (),
                            detail: dict[str, Any] | None = None,
                            now: datetime | None = None) -> Review:
        return self._retrying(lambda s: campaigns.record_decision(
            s, ref, trajectory_id, reviewer=reviewer, decision=decision, score=score,
            notes=notes, expected_version=expected_version, labels=tuple(labels),
            detail=detail, now=now or _now()))

    def add_adjudication(self, ref: str | int, trajectory_id: str, *, reviewer: str,
                         decision: str, score: float | None = None, notes: str = "",
                         labels: Sequence[str] = (), expected_version: int | None = None,
                         ) -> Review:
        return self._retrying(lambda s: campaigns.record_adjudication(
            s, ref, trajectory_id, reviewer=reviewer, decision=decision, score=score,
            notes=notes, labels=tuple(labels), expected_version=expected_version))

    def campaign_votes(self, ref: str | int,
                       ) -> tuple[campaigns.Campaign, dict[str, list[Any]]]:
        with self.read() as s:
            return campaigns.votes(s, ref)

    def campaign_reviews(self, ref: str | int) -> list[Review]:
        with self.read() as s:
            return campaigns.campaign_reviews(s, ref)

    def campaign_ratings(self, ref: str | int) -> list[tuple[str, str, str, float | None]]:
        with self.read() as s:
            return campaigns.ratings(s, ref)

    def campaign_step_labels(self, ref: str | int) -> list[tuple[str, int, int, str, int]]:
        with self.read() as s:
            return campaigns.step_labels(s, ref)

    def campaign_disputes(self, ref: str | int, *, include_adjudicated: bool = False,
                          ) -> list[campaigns.Dispute]:
        with self.read() as s:
            return campaigns.disputes(s, ref, include_adjudicated=include_adjudicated)

    def campaign_progress(self, ref: str | int, *, now: datetime | None = None,
                          ) -> campaigns.Progress:
        with self.read() as s:
            return campaigns.progress(s, ref, now=now or _now())

    def _retrying(self, fn: Callable[[Session], R], attempts: int = 6) -> R:
        """A campaign's write (a claim, a vote). On SQLite it is the writer's, like every write.
        On PostgreSQL it runs on the caller's thread, concurrently with other reviewers' (row
        locks and SKIP LOCKED keep them apart, which is what they are for; one writer would make
        eight reviewers queue behind each other's commits), and a race the database refuses (a
        unique key two transactions tried at once, a deadlock, a serialization failure) runs
        again on fresh data."""
        for attempt in range(attempts):
            try:
                if self.is_sqlite:
                    return self.write(fn)
                if self._closed:
                    raise StoreError("the store is closed")
                return self._tx(fn)
            except (IntegrityError, OperationalError) as e:
                race = isinstance(e, IntegrityError) or getattr(
                    e.orig, "sqlstate", None) in ("40001", "40P01")
                if not race or self.is_sqlite or attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    # --- the review queue --------------------------------------------------------------------

    def queue_page(self, f: review_queue.QueueFilter, *, after: list[Any] | None = None,
                   limit: int = 20, exclude: tuple[str, ...] = ()) -> review_queue.QueuePage:
        with self.read() as s:
            return review_queue.page(s, f, after=after, limit=limit, exclude=exclude)

    def queue_counts(self, f: review_queue.QueueFilter) -> dict[str, int]:
        with self.read() as s:
            return review_queue.counts(s, f)

    def reviewer_progress(self, reviewer: str, *, since: datetime | None = None,
                          ) -> dict[str, int]:
        with self.read() as s:
            return review_queue.progress(s, reviewer, since=since)

    # --- step labels, re-run checks ----------------------------------------------------------

    def set_step_labels(self, trajectory_id: str, *, reviewer: str,
                        labels: dict[int, int | None], expected_version: int | None = None,
                        ) -> int:
        return self.write(lambda s: reviews.set_step_labels(
            s, trajectory_id, reviewer=reviewer, labels=labels,
            expected_version=expected_version))

    def step_labels(self, trajectory_id: str, version: int | None = None,
                    ) -> dict[str, dict[int, int]]:
        with self.read() as s:
            return reviews.step_labels(s, trajectory_id, version)

    def set_revision_checks(self, trajectory_id: str, version: int,
                            checks: dict[str, Any]) -> None:
        self.write(lambda s: reviews.set_revision_checks(s, trajectory_id, version, checks))

    # --- people and team settings ------------------------------------------------------------

    def upsert_user(self, name: str, *, role: str = "reviewer", password_hash: str | None = None,
                    keep_password: bool = False) -> reviews.User:
        return self.write(lambda s: reviews.upsert_user(
            s, name, role=role, password_hash=password_hash, keep_password=keep_password))

    def get_user(self, name: str) -> reviews.User | None:
        with self.read() as s:
            return reviews.get_user(s, name)

    def password_hash_of(self, name: str) -> str | None:
        with self.read() as s:
            return reviews.password_hash_of(s, name)

    def list_users(self) -> list[reviews.User]:
        with self.read() as s:
            return reviews.list_users(s)

    def remove_user(self, name: str) -> None:
        self.write(lambda s: reviews.remove_user(s, name))

    def get_setting(self, key: str, default: Any = None) -> Any:
        with self.read() as s:
            return reviews.get_setting(s, key, default)

    def set_setting(self, key: str, value: Any, *, by: str | None = None) -> None:
        self.write(lambda s: reviews.set_setting(s, key, value, by=by))

    def list_reviews(self, trajectory_id: str) -> list[Review]:
        with self.read() as s:
            return reviews.list_reviews(s, trajectory_id)

    def add_score(self, trajectory_id: str, *, scorer: str, correct: bool | None = None,
                  value: float | None = None, detail: dict[str, Any] | None = None) -> int:
        return self.write(lambda s: reviews.add_score(
            s, trajectory_id, scorer=scorer, correct=correct, value=value, detail=detail))

    def latest_scores(self, trajectory_id: str) -> dict[str, Score]:
        with self.read() as s:
            return reviews.latest_scores(s, trajectory_id)


def _now() -> datetime:
    return datetime.now(UTC)
