"""Deep links: every trajectory has an address — ``?t=ID`` opens it in the live tab,
``?t=ID&tab=review`` in the review tab — and the address follows what is on screen, so a reload
(or a link sent to a colleague) shows the same trajectory in the same tab. ``?tab=dataset``
opens the Dataset tab (its dashboards drawn, see :mod:`startui.ui.dataset`)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from startui.ui.live import LiveTab
from startui.ui.review import ReviewTab
from startui.ui.review_render import deep_link
from startui.ui.studio import Services, Studio

DATASET_LINK = "?tab=dataset"


def wire(demo: gr.Blocks, services: Services, studio_state: gr.State, *, tabs: gr.Tabs,
         live: LiveTab, live_tab: gr.Tab, review: ReviewTab, review_tab: gr.Tab,
         link: gr.Textbox, dataset_tab: gr.Tab | None = None) -> None:
    def on_load(studio: Studio | None, desk: Any, request: gr.Request,
                profile: gr.OAuthProfile | None = None) -> dict[Any, Any]:
        query = dict(request.query_params) if request is not None else {}
        tid = (query.get("t") or "").strip() or None
        in_review = query.get("tab") == "review"
        studio = studio or Studio(services)
        out = dict(review.load(desk, request, profile, tid if in_review else None))
        out[studio_state] = studio
        if in_review:
            out[tabs] = gr.Tabs(selected="review")
        elif query.get("tab") == "dataset" and dataset_tab is not None and dataset_tab.visible:
            out[tabs] = gr.Tabs(selected="dataset")
            out[link] = DATASET_LINK
        else:
            out[link] = deep_link(tid, "live")
            if tid:
                try:
                    out.update(zip(live.view, live.open(studio, tid), strict=True))
                except gr.Error as e:
                    out[live.view[2]] = f"⚠️ {e.message}"  # the live tab's status line
                    out[link] = ""
        return out

    def review_link(desk: Any) -> str:
        item = desk.session.current if desk is not None else None
        return deep_link(item.trajectory.id, "review") if item is not None else ""

    outputs = list(dict.fromkeys([studio_state, *live.view, tabs, *review.view, link]))
    demo.load(on_load, [studio_state, review.desk], outputs, api_name=False)
    live.current.change(lambda tid: deep_link(tid, "live"), live.current, link, api_name=False)
    live_tab.select(lambda tid: deep_link(tid, "live"), live.current, link, api_name=False)
    review_tab.select(review_link, review.desk, link, api_name=False)
    if dataset_tab is not None:
        dataset_tab.select(lambda: DATASET_LINK, None, link, api_name=False)
