"""The START Studio app: Gradio Blocks with one tab per activity (the live demo first)."""

from __future__ import annotations

import logging
import os
from typing import Any

import gradio as gr

from startui.studio import Services, Studio
from startui.ui import render
from startui.ui.live import build_live_tab

log = logging.getLogger(__name__)

INTRO = """# START Studio
Watch a model **think**, **steer** it with hints, and see the Python it writes **run** in a real
Jupyter kernel — the *Self-taught Reasoner with Tools* method
([arXiv 2503.04625](https://arxiv.org/abs/2503.04625)). Hints from the paper's library go in when
the model wants to stop (and, if you like, after "Wait"/"Alternatively"); yours go in at the next
token. Every run is saved as it streams.
"""

CSS = """
#trajectory .message-wrap { font-size: 0.95rem; }
#status { min-height: 2.2em; }
"""


def open_store(url: str | None) -> Any:
    """The store, or None with a logged reason: the demo still runs without one."""
    try:
        from startui.store import Store

        store = Store(url)
        store.seed_samples(only_if_empty=True)
        return store
    except Exception as e:  # noqa: BLE001 - a broken database must not stop the demo
        log.error("running without a store: %s", e)
        return None


def build_app(services: Services | None = None, *, db_url: str | None = None,
              concurrency: int | None = None) -> gr.Blocks:
    services = services or Services(open_store(db_url))
    from startui.problems import load_sample_problems

    examples = [p for p in load_sample_problems() if p.kind == "math"]
    if concurrency is None:
        concurrency = int(os.environ.get("STARTUI_CONCURRENCY", "1"))

    with gr.Blocks(title="START Studio", fill_width=True) as demo:
        studio_state = gr.State(None, delete_callback=lambda s: s and s.stop())
        gr.Markdown(INTRO)
        with gr.Tabs():
            with gr.Tab("Hint-infer", id="live"):
                build_live_tab(demo, services, studio_state, examples=examples,
                               concurrency=concurrency)
        demo.load(lambda: Studio(services), None, studio_state)
    demo.services = services  # type: ignore[attr-defined]
    return demo


def launch(demo: gr.Blocks, *, warm: bool = False, **kw: Any) -> Any:
    """Launch with the theme and CSS (Gradio 6 takes them at launch) and the image folder;
    ``warm`` preloads the default model while the server starts."""
    render.IMAGE_DIR.mkdir(parents=True, exist_ok=True)
    if warm:
        demo.services.warm()  # type: ignore[attr-defined]
    return demo.queue(default_concurrency_limit=None).launch(
        css=CSS, allowed_paths=[str(render.IMAGE_DIR)], theme=gr.themes.Soft(), **kw)
