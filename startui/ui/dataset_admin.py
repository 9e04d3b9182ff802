"""The Dataset tab's admin panels: import a problem file, start a batch Hint-infer run and watch
its progress bar, stop and resume it; add users, change their roles, remove them. Everything is
a :class:`~startui.ui.dataset_actions.DatasetActions` call, refused with a message for anyone but
an admin (the library's checks)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from startui.ui import auth, dataset_render
from startui.ui.dataset_actions import DatasetActions
from startui.ui.dataset_api import who_of
from startui.ui.live import BACKENDS
from startui.ui.settings import RunSettings

PROBLEM_FILES = [".jsonl", ".json", ".csv", ".tsv", ".parquet"]


@dataclass
class AdminPanels:
    outputs: list[Any]  # what load() updates
    load: Callable[[str], dict[Any, Any]]


def build_admin(actions: DatasetActions, *, acting: Callable[..., Any], message: Any,
                defaults: RunSettings, roles: list[str]) -> AdminPanels:
    page: dict[str, Any] = {"api_name": False}
    public = actions.public
    with gr.Accordion("Batch generation (admins)", open=False, elem_id="dataset-batch"):
        with gr.Row(equal_height=False):
            b_file = gr.File(label="Problem file (JSONL, JSON, CSV, Parquet)", type="filepath",
                             file_types=PROBLEM_FILES, elem_id="dataset-b-file")
            with gr.Column():
                b_as = gr.Textbox("", label="Import as source (empty: the file's name)")
                b_skip = gr.Checkbox(False, label="Skip invalid rows (else: nothing imported)")
                b_import = gr.Button("Import problems", elem_id="dataset-b-import")
        b_imported = gr.Markdown("", elem_id="dataset-b-imported")
        with gr.Row():
            b_run = gr.Textbox("", label="Run name", elem_id="dataset-b-run")
            b_source = gr.Dropdown([("every stored problem", "any")], value="any",
                                   label="Problems", elem_id="dataset-b-source")
            b_kind = gr.Radio(["any", "math", "code"], value="any", label="Kind")
            b_limit = gr.Number(0, precision=0, minimum=0, label="At most N problems (0: all)")
        with gr.Row():
            b_samples = gr.Slider(1, 16, value=1, step=1, label="Hinted samples per problem")
            b_greedy = gr.Checkbox(True, label="Greedy baseline (D_seed needs it)")
            b_score = gr.Checkbox(True, label="Score each as it finishes")
            b_concurrency = gr.Slider(1, 16, value=2, step=1, label="Trajectories in flight")
        with gr.Row():
            b_preset = gr.Radio([("paper: T 0.6, top-p 0.95, 6 tool calls", "paper"),
                                 ("custom temperature", "custom")], value="paper",
                                label="Sampling")
            b_temperature = gr.Slider(0, 1.5, value=0.6, step=0.05, label="Temperature")
            b_rounds = gr.Slider(0, 4, value=1, step=1, label="End-of-reasoning hint rounds")
            b_max_tokens = gr.Slider(64, 8192, value=2048, step=64, label="Max tokens")
        with gr.Row():
            if public:  # the deployment's choices, nothing else
                labels = actions.services.deployment.labels
                b_backend = gr.Dropdown(labels, value=labels[0] if labels else None,
                                        label="Model", elem_id="dataset-b-backend")
            else:
                b_backend = gr.Dropdown(BACKENDS, value=defaults.backend, label="Backend",
                                        allow_custom_value=True, elem_id="dataset-b-backend")
            b_model = gr.Textbox("" if public else defaults.model or "", visible=not public,
                                 label="Model (empty: the backend's default)")
            b_url = gr.Textbox("" if public else defaults.base_url or "", visible=not public,
                               label="Server URL (openai / vllm)")
        with gr.Row():
            b_start = gr.Button("▶ Start batch", variant="primary", elem_id="dataset-b-start")
            b_stop = gr.Button("⏹ Stop", variant="stop", elem_id="dataset-b-stop")
            b_resume = gr.Button("⏩ Resume", elem_id="dataset-b-resume")
        b_progress = gr.HTML(dataset_render.batch_html({}), elem_id="dataset-b-progress")
        b_timer = gr.Timer(1.0, active=False)
    with gr.Accordion("Users (admins)", open=False, elem_id="dataset-users"):
        u_table = gr.Markdown("", elem_id="dataset-u-table")
        with gr.Row(equal_height=True):
            u_name = gr.Textbox("", label="User", elem_id="dataset-u-name")
            u_password = gr.Textbox("", type="password", elem_id="dataset-u-password",
                                    label="Password (empty: a Hugging Face login)")
            u_role = gr.Radio(roles, value="reviewer", label="Role", elem_id="dataset-u-role")
        with gr.Row():
            u_add = gr.Button("Add user", elem_id="dataset-u-add")
            u_set = gr.Button("Change role", elem_id="dataset-u-set")
            u_remove = gr.Button("Remove user", variant="stop", elem_id="dataset-u-remove")

    # --- handlers ------------------------------------------------------------------------

    def batch_view() -> dict[Any, Any]:
        status = actions.job.status()
        return {b_progress: dataset_render.batch_html(status),
                b_timer: gr.Timer(active=status["running"])}

    def load(name: str) -> dict[Any, Any]:
        store = actions.store
        return {b_source: gr.update(choices=dataset_render.source_choices(
                    store.problem_sources())),
                u_table: dataset_render.users_markdown(store.list_users()), **batch_view()}

    def on_import(name: str, path: str | None, source: str, skip: bool) -> dict[Any, Any]:
        report = actions.import_problems(name, path, source=source, skip_invalid=skip)
        return {b_imported: f"✓ {report.summary()}",
                b_source: gr.update(choices=dataset_render.source_choices(
                    actions.store.problem_sources()), value=report.source),
                b_run: gr.update()}

    async def on_start(name: str, run: str, source: str, kind: str, limit: float | None,
                       samples: float, greedy: bool, score: bool, concurrency: float,
                       preset: str, temperature: float, rounds: float, max_tokens: float,
                       backend: str, model: str, url: str) -> dict[Any, Any]:
        await actions.start_batch(name, {
            "run": run, "source": source, "kind": kind, "limit": limit, "samples": samples,
            "greedy_baseline": greedy, "score": score, "concurrency": concurrency,
            "preset": preset, "temperature": temperature, "rounds": rounds,
            "max_tokens": max_tokens, "backend": backend, "model": model, "base_url": url})
        return batch_view()

    async def on_resume(name: str) -> dict[Any, Any]:
        await actions.start_batch(name, None)
        return batch_view()

    def on_stop(name: str) -> dict[Any, Any]:
        actions.stop_batch(name)
        return batch_view()

    def on_tick(request: gr.Request, profile: gr.OAuthProfile | None = None) -> Any:
        """The progress bar, every second while a batch runs (the message is left alone)."""
        try:
            actions.batch_status(who_of(actions, request, profile))
        except auth.USER_ERRORS:
            return {b_timer: gr.Timer(active=False)}
        return batch_view()

    def users_view(note: str) -> dict[Any, Any]:
        return {u_table: dataset_render.users_markdown(actions.store.list_users()),
                u_password: "", message: note}

    def on_add(name: str, user: str, password: str, role: str) -> dict[Any, Any]:
        u = actions.add_user(name, user, password, role)
        return users_view(f"added **{u.name}** ({u.role})")

    def on_set(name: str, user: str, role: str) -> dict[Any, Any]:
        u = actions.set_role(name, user, role)
        return users_view(f"**{u.name}** is now a {u.role}")

    def on_remove(name: str, user: str) -> dict[Any, Any]:
        actions.remove_user(name, user)
        return users_view(f"removed **{user}** (what they reviewed stays under their name)")

    batch_out = [message, b_progress, b_timer]
    b_import.click(acting(on_import), [b_file, b_as, b_skip],
                   [message, b_imported, b_source, b_run], **page)
    b_start.click(acting(on_start), [b_run, b_source, b_kind, b_limit, b_samples, b_greedy,
                                     b_score, b_concurrency, b_preset, b_temperature, b_rounds,
                                     b_max_tokens, b_backend, b_model, b_url], batch_out, **page)
    b_resume.click(acting(on_resume), None, batch_out, **page)
    b_stop.click(acting(on_stop), None, batch_out, **page)
    b_timer.tick(on_tick, None, [b_progress, b_timer], **page)
    users_out = [message, u_table, u_password]
    u_add.click(acting(on_add), [u_name, u_password, u_role], users_out, **page)
    u_set.click(acting(on_set), [u_name, u_role], users_out, **page)
    u_remove.click(acting(on_remove), [u_name], users_out, **page)
    return AdminPanels(outputs=[b_source, b_progress, b_timer, u_table], load=load)
