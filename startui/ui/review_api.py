"""The Review tab's actions for ``gradio_client``: trajectory ids as plain strings in, plain
JSON out. The reviewer is the logged-in user, as on the page, and the library's permission checks
apply; a refusal comes back as an error with the library's message."""

from __future__ import annotations

from typing import Any

import gradio as gr

from startui.review import decisions, edits
from startui.review import labels as step_labels
from startui.review.session import ReviewSession, load_item
from startui.ui import auth
from startui.ui import review_render as rr
from startui.ui.studio import Services

DECISIONS = {"accept": "accepted", "reject": "rejected", "skip": "skipped",
             "needs_review": "needs_review", "needs review": "needs_review"}


def label_names(value: Any) -> list[str]:
    """Review labels from a list, or comma-separated text."""
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def score_value(value: Any) -> int | None:
    """The 1–5 score (None, "" or 0: no score)."""
    if value in (None, "", 0):
        return None
    return int(float(value))


def decision_name(value: str) -> str:
    d = (value or "").strip().lower()
    return DECISIONS.get(d, d)


def build(services: Services) -> None:
    """The endpoints, on hidden components (call inside the Blocks)."""
    store = services.store

    def who(request: gr.Request | None, profile: gr.OAuthProfile | None) -> str:
        if store is None:
            raise gr.Error("this app runs without a store")
        return auth.reviewer(store, request, profile, public=services.deployment.public)

    @auth.said
    def review_next(review_status: str, verdict: str, run: str, source: str, kind: str,
                    has_tool_calls: str, human_hint: str, ends_in_error: str, search: str,
                    sort: str, seed: float | None, request: gr.Request,
                    profile: gr.OAuthProfile | None = None) -> dict[str, Any] | None:
        """The first trajectory of the queue under these filters ("any" or "": no filter)."""
        f = rr.queue_filter(review_status or "pending", verdict, run, source, kind,
                            has_tool_calls, human_hint, ends_in_error, search, sort, seed)
        return rr.item_dict(ReviewSession(store, who(request, profile), f).set_filter(f))

    @auth.said
    def review_open(trajectory_id: str, request: gr.Request,
                    profile: gr.OAuthProfile | None = None) -> dict[str, Any] | None:
        """Any trajectory by id, with its verdict, labels, stale outputs and reviews."""
        return rr.item_dict(load_item(store, (trajectory_id or "").strip(),
                                      who(request, profile)))

    @auth.said
    def review_decide(trajectory_id: str, decision: str, score: float | None, labels: Any,
                      comment: str, override_reason: str, request: gr.Request,
                      profile: gr.OAuthProfile | None = None) -> dict[str, Any]:
        """accepted · rejected · skipped · needs_review, with an optional 1–5 score, labels
        (a list or comma-separated), a comment and, to accept over stale outputs, a reason."""
        review = decisions.decide(store, (trajectory_id or "").strip(),
                                  reviewer=who(request, profile), decision=decision_name(decision),
                                  score=score_value(score), labels=label_names(labels),
                                  comment=comment or "",
                                  override_reason=(override_reason or "").strip() or None)
        return review.to_dict()

    @auth.said
    def review_label(trajectory_id: str, labels: Any, request: gr.Request,
                     profile: gr.OAuthProfile | None = None) -> dict[str, Any]:
        """Step labels: {position: 1 | 0 | -1 | null} as JSON (or a list of pairs)."""
        tid = (trajectory_id or "").strip()
        name = who(request, profile)
        version = step_labels.label_steps(store, tid, name, rr.parse_labels(labels))
        item = load_item(store, tid, name)
        return {"version": version,
                "labels": {str(k): v for k, v in item.my_labels.items()}}

    @auth.said
    async def review_edit(trajectory_id: str, segments: Any, expected_version: float,
                          request: gr.Request, profile: gr.OAuthProfile | None = None,
                          ) -> dict[str, Any]:
        """Save new segments (JSON list of {kind, text, source, meta}) as a revision, if the
        trajectory is still at ``expected_version``; edited code is re-run, stale outputs listed."""
        if expected_version in (None, ""):
            raise ValueError("expected_version is required: the version you edited")
        result = await edits.save_edit(store, await services.pool(),
                                       (trajectory_id or "").strip(),
                                       rr.parse_segments(segments),
                                       expected_version=int(expected_version),
                                       editor=who(request, profile))
        return {"version": result.version, "reran": result.reran,
                "stale": [{"position": s.position, "stored": s.stored, "fresh": s.fresh,
                           "error": s.error, "code_position": s.code_position}
                          for s in result.stale]}

    @auth.said
    def review_undo(request: gr.Request, profile: gr.OAuthProfile | None = None,
                    ) -> dict[str, Any] | None:
        """Undo my last decision; returns the review that was undone (null: nothing to undo)."""
        review = decisions.undo(store, who(request, profile))
        return review.to_dict() if review is not None else None

    text = [gr.Textbox(visible=False) for _ in range(10)]
    number = [gr.Number(None, visible=False) for _ in range(2)]
    anything = gr.JSON(visible=False)
    out = gr.JSON(visible=False)
    btn = gr.Button(visible=False)
    btn.click(review_next, [*text[:10], number[0]], out, api_name="review_next")
    btn.click(review_open, text[0], out, api_name="review_open")
    btn.click(review_decide, [text[0], text[1], number[0], anything, text[2], text[3]], out,
              api_name="review_decide")
    btn.click(review_label, [text[0], anything], out, api_name="review_label")
    btn.click(review_edit, [text[0], anything, number[1]], out, api_name="review_edit")
    btn.click(review_undo, None, out, api_name="review_undo")
