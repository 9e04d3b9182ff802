"""A reviewer's Review tab inside a review campaign, without Gradio: the items come from the
campaign's hand-out (:func:`startui.review.campaigns.next_item`: the item they hold, else a new
lease), and each decision is their vote in it. Everything else — labels, edits, undo, opening an
id — is the ordinary :class:`~startui.review.session.ReviewSession`'s."""

from __future__ import annotations

from typing import Any

from startui.review import campaigns, decisions
from startui.review.session import Item, ReviewSession, load_item


class CampaignSession(ReviewSession):
    def __init__(self, store: Any, reviewer: str, campaign: str) -> None:
        c = campaigns.get_campaign(store, campaign)
        campaigns.check_reviewer(store, c, reviewer)  # refused now, with the library's words
        super().__init__(store, reviewer, c.queue_filter())
        self.campaign = c.name

    def pull(self) -> Item | None:
        """The next item of the campaign for me (None: nothing left that I may take now)."""
        tid = campaigns.next_item(self.store, self.campaign, self.reviewer)
        self.current = load_item(self.store, tid, self.reviewer) if tid else None
        self.upcoming = None
        self._cursor = self._up_cursor = None
        return self.current

    def set_filter(self, f: Any) -> Item | None:  # the campaign's filter made its items
        return self.pull()

    def advance(self) -> Item | None:
        return self.pull()

    def decide(self, decision: str, **kw: Any) -> Item | None:
        """My vote on the item on screen (on the version on screen), then the next item."""
        if self.current is None:
            raise ValueError(f"nothing to decide on: campaign {self.campaign} has nothing left "
                             "for you now")
        kw.setdefault("expected_version", self.current.version)
        decisions.decide(self.store, self.current.id, reviewer=self.reviewer, decision=decision,
                         campaign=self.campaign, **kw)
        return self.pull()

    def progress(self, counts: dict[str, int] | None = None) -> dict[str, int]:
        """My votes in the campaign (today: all my decisions today), and its items done."""
        mine = super().progress(counts)
        p = campaigns.progress(self.store, self.campaign)
        me = p.reviewers.get(self.reviewer, {})
        return {"mine": int(me.get("decided", 0)), "today": mine["today"], "done": p.done,
                "total": p.items}


def campaign_note(session: Any) -> str:
    """What the Review tab's top line adds in a campaign."""
    if isinstance(session, CampaignSession):
        return f" · campaign **{session.campaign}** (progress: its items decided by all)"
    return ""
