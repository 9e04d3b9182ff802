"""The START Studio app: Gradio Blocks with one tab per activity (the live demo first)."""

from __future__ import annotations

import logging
import os
from typing import Any

import gradio as gr

from startui import resources
from startui.infer.kernels import probe_isolation
from startui.infer.sandbox import describe_isolation, isolation_is_weak
from startui.store.backup import BackupConfig, schedule
from startui.ui import auth, links, render, review
from startui.ui.dataset import build_dataset_tab
from startui.ui.deployment import Deployment
from startui.ui.live import build_live_tab
from startui.ui.review import build_review_tab
from startui.ui.studio import RunSettings, Services

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


# Backends that generate on this machine's CPU run one trajectory at a time; servers take more.
LOCAL_BACKENDS = ("llamacpp", "transformers", "scripted")


def default_settings() -> RunSettings:
    """The settings panel's defaults: the embedded model, or what the deployment names
    (STARTUI_BACKEND, STARTUI_MODEL, STARTUI_BASE_URL — e.g. a Space in front of vLLM)."""
    urls = [u.strip() for u in os.environ.get("STARTUI_BASE_URL", "").split(",") if u.strip()]
    return RunSettings(backend=os.environ.get("STARTUI_BACKEND", "llamacpp"),
                       model=os.environ.get("STARTUI_MODEL") or None,
                       base_url=urls[0] if urls else None)


def build_app(services: Services | None = None, *, db_url: str | None = None,
              concurrency: int | None = None, defaults: RunSettings | None = None,
              ) -> gr.Blocks:
    from startui.store.problems import load_sample_problems

    defaults = defaults or default_settings()
    if concurrency is None:
        env = os.environ.get("STARTUI_CONCURRENCY")
        concurrency = int(env) if env else (1 if defaults.backend in LOCAL_BACKENDS else 8)
    if services is None:
        kernels = os.environ.get("STARTUI_MAX_KERNELS")
        services = Services(open_store(db_url), deployment=Deployment.from_env(defaults),
                            max_kernels=int(kernels) if kernels else 2 * concurrency)
    examples = [p for p in load_sample_problems() if p.kind == "math"]
    # Public mode: reviewing needs a login (the store's users, or Hugging Face's on a Space);
    # without one the tab is hidden, and its endpoints refuse anonymous visitors.
    reviewable = not services.deployment.public or auth.auth_for(services.store) is not None \
        or auth.on_spaces()

    with gr.Blocks(title="START Studio", fill_width=True) as demo:
        studio_state = gr.State(None, delete_callback=lambda s: s and s.stop())
        gr.Markdown(INTRO)
        link = gr.Textbox(visible=False)  # the page's ?t=ID&tab=… (see startui.ui.links)
        with gr.Tabs() as tabs:
            with gr.Tab("Hint-infer", id="live") as live_tab:
                live = build_live_tab(demo, services, studio_state, examples=examples,
                                      concurrency=concurrency, defaults=defaults)
            with gr.Tab("Review", id="review", visible=reviewable) as review_tab:
                reviewing = build_review_tab(demo, services, studio_state, tabs=tabs,
                                             live=live, link=link)
            # the same rule as Review: in public mode, only for people who log in
            with gr.Tab("Dataset", id="dataset", visible=reviewable) as dataset_tab:
                build_dataset_tab(demo, services, dataset_tab, defaults=defaults)
        links.wire(demo, services, studio_state, tabs=tabs, live=live, live_tab=live_tab,
                   review=reviewing, review_tab=review_tab, link=link, dataset_tab=dataset_tab)
    demo.services = services  # type: ignore[attr-defined]
    demo.defaults = defaults  # type: ignore[attr-defined]
    return demo


def check_isolation(services: Services) -> None:
    """Find out what the sandbox holds on this machine (one kernel starts), for the status line;
    public mode refuses to start where only rlimits would hold, unless the operator opts in."""
    if services.isolation is None:
        try:
            services.isolation = probe_isolation()
        except Exception as e:  # noqa: BLE001 - the kernel error shows again on the first run
            log.error("no kernel could start: %s", e)
    log.info(describe_isolation(services.isolation))
    d = services.deployment
    if d.public and isolation_is_weak(services.isolation) and not d.allow_weak_sandbox:
        raise SystemExit(
            "refusing to start in public mode: " + describe_isolation(services.isolation) +
            ". Model-written code would run with only resource limits around it. Run where "
            "Landlock or namespaces are available, or set STARTUI_ALLOW_WEAK_SANDBOX=1 to "
            "accept that.")


def start_backup(services: Services) -> Any:
    """Push consistent copies of the SQLite store to a Hugging Face dataset repo when
    STARTUI_BACKUP_REPO and HF_TOKEN are set (a Space's disk can be wiped)."""
    store = services.store
    cfg = BackupConfig.from_env(resources.data_dir()) if store is not None else None
    if cfg is None or not store.is_sqlite:
        return None
    try:
        return schedule(store.url, cfg)
    except Exception as e:  # noqa: BLE001 - a backup problem must not stop the app
        log.error("backups are off: %s", e)
        return None


def launch(demo: gr.Blocks, *, warm: bool = False, **kw: Any) -> Any:
    """Launch with the theme, CSS and the review keys (Gradio 6 takes them at launch), the
    image folder, and a login page once the store has users with passwords; ``warm`` preloads
    the default model while the server starts."""
    render.IMAGE_DIR.mkdir(parents=True, exist_ok=True)
    services: Services = demo.services  # type: ignore[attr-defined]
    check_isolation(services)
    start_backup(services)
    if warm:
        demo.services.warm(demo.defaults)  # type: ignore[attr-defined]
    kw.setdefault("auth", auth.auth_for(demo.services.store))  # type: ignore[attr-defined]
    return demo.queue(default_concurrency_limit=None).launch(
        css=CSS + review.CSS, js=review.KEYS_JS, allowed_paths=[str(render.IMAGE_DIR)],
        theme=gr.themes.Soft(), **kw)
