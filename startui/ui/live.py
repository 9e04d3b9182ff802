"""The first tab: ask, watch the model think, steer it with hints, see its code run, keep it.

Every callback here only wires :class:`~startui.ui.studio.Studio` calls to components and turns
library errors into messages a person reads (never a traceback).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from startui.infer.sandbox import describe_isolation
from startui.trajectory import Problem, Trajectory
from startui.ui import auth, render
from startui.ui.deployment import NotAllowed, visitor_key
from startui.ui.studio import RunSettings, Services, Studio

BACKENDS = ["llamacpp", "openai", "vllm", "transformers", "scripted"]
CUSTOM_HINT = "(type your own)"
# Models write LaTeX in all of these; KaTeX renders it in the page as it streams.
LATEX = [{"left": "$$", "right": "$$", "display": True},
         {"left": "\\[", "right": "\\]", "display": True},
         {"left": "$", "right": "$", "display": False},
         {"left": "\\(", "right": "\\)", "display": False}]


def _settings(*values: Any) -> RunSettings:
    (backend, model, base_url, temperature, max_tokens, rounds, conj_p, categories,
     max_tool_calls, timeout, seed) = values
    return RunSettings(backend=backend, model=model or None, base_url=base_url or None,
                       temperature=float(temperature), max_tokens=int(max_tokens),
                       rounds=int(rounds), conjunction_p=float(conj_p),
                       categories=list(categories) or None, max_tool_calls=int(max_tool_calls),
                       kernel_timeout=float(timeout),
                       seed=None if seed in (None, "", -1) else int(seed))


def _view(studio: Studio, traj: Trajectory | None, *, picks: bool = True) -> tuple[Any, ...]:
    """chatbot, status, current trajectory id, rewind picker (``picks``: rebuilt, else kept)."""
    running = studio.running and traj is studio.trajectory
    notes = [n.message for n in studio.notices if traj is studio.trajectory
             and n.level in ("warning", "error")]
    status = render.status_line(traj, running)
    if notes:
        status += "\n\n" + "\n".join(f"⚠️ {m}" for m in dict.fromkeys(notes))
    return (render.messages(traj, studio.timings if traj is studio.trajectory else None,
                            time.monotonic()),
            status, traj.id if traj else None,
            gr.update(choices=render.segment_choices(traj), value=None) if picks else gr.skip())


@dataclass
class LiveTab:
    """What other tabs and the deep links wire into: the live view's outputs, the trajectory on
    screen, the rewind box, and the handlers that open a trajectory or branch from it."""

    view: list[Any]  # studio state, chatbot, status, current id, rewind picker
    current: gr.State
    seg_text: gr.Textbox
    branches: gr.Dropdown
    settings: list[Any]
    send_btn: gr.Button
    open: Callable[[Studio | None, str | None], tuple[Any, ...]]
    branch: Callable[..., AsyncIterator[Any]]  # (studio, (id, index, text), *settings)
    generate: dict[str, Any]  # the generation queue's concurrency settings


def build_live_tab(demo: gr.Blocks, services: Services, studio_state: gr.State, *,
                   examples: list[Problem], concurrency: int, defaults: RunSettings) -> LiveTab:
    library = services.library
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            problem = gr.Textbox(label="Problem", lines=3, elem_id="problem",
                                 placeholder="Ask something that needs computing, e.g. "
                                             "“What is the sum of all primes below 1000?”")
            if examples:
                gr.Examples([[p.question] for p in examples[:8]], inputs=[problem],
                            label="Examples (one click)")
            with gr.Row():
                run_btn = gr.Button("▶ Run", variant="primary", elem_id="run")
                stop_btn = gr.Button("⏹ Stop", variant="stop", elem_id="stop")
                continue_btn = gr.Button("⏩ Continue", elem_id="continue")
            status = gr.Markdown(render.status_line(None, False), elem_id="status")
            with gr.Row(equal_height=True):
                accept_btn = gr.Button("✓ Accept", size="sm", elem_id="live-accept")
                reject_btn = gr.Button("✗ Reject", size="sm", elem_id="live-reject")
                send_btn = gr.Button("Review it ↗", size="sm", elem_id="live-send")
                decided = gr.Markdown("", elem_id="live-decided")
            chatbot = gr.Chatbot(label="Reasoning", height=640, elem_id="trajectory",
                                 layout="panel", latex_delimiters=LATEX,
                                 buttons=["copy_all"], feedback_options=None)
            with gr.Row(equal_height=True):
                hint_text = gr.Textbox(label="Your hint (goes in at the next token)", scale=4,
                                       elem_id="hint-text",
                                       placeholder="e.g. Check small cases with Python first.")
                hint_pick = gr.Dropdown([CUSTOM_HINT] + [f"{h.category}: {h.text}"
                                                         for h in library.math],
                                        value=CUSTOM_HINT, label="…or one from the hint library",
                                        scale=3)
                insert_btn = gr.Button("💡 Insert hint", scale=1, elem_id="insert")
        with gr.Column(scale=1, min_width=280):
            with gr.Accordion("Settings", open=False):
                public = services.deployment.public
                if public:  # visitors pick among the deployment's choices, nothing else
                    labels = services.deployment.labels
                    backend = gr.Dropdown(labels, value=labels[0], label="Model",
                                          elem_id="backend")
                else:
                    backend = gr.Dropdown(BACKENDS, value=defaults.backend, label="Backend",
                                          allow_custom_value=True, elem_id="backend")
                model = gr.Textbox(
                    "" if public else defaults.model or "", visible=not public,
                    label="Model (empty: embedded Qwen2.5-Coder-1.5B-Instruct)")
                base_url = gr.Textbox("" if public else defaults.base_url or "",
                                      visible=not public, label="Server URL (openai / vllm)")
                temperature = gr.Slider(0, 1.5, value=0.6, step=0.05, label="Temperature")
                max_tokens = gr.Slider(64, 8192, value=1536, step=64, label="Max tokens")
                rounds = gr.Slider(0, 4, value=1, step=1, label="End-of-reasoning hint rounds")
                conj_p = gr.Slider(0, 1, value=0.0, step=0.05,
                                   label="Hint after Wait/Alternatively (probability)")
                categories = gr.CheckboxGroup(library.categories, value=library.categories,
                                              label="Hint categories")
                max_tool_calls = gr.Slider(0, 12, value=6, step=1, label="Max tool calls")
                timeout = gr.Slider(1, 120, value=30, step=1, label="Kernel timeout (s)")
                seed = gr.Number(value=-1, label="Seed (-1: random)", precision=0)
                isolation = gr.Markdown(elem_id="isolation")
            with gr.Accordion("Recent runs", open=True):
                runs = gr.Dropdown([], label="Saved trajectories", elem_id="runs",
                                   interactive=True)
                with gr.Row():
                    refresh_btn = gr.Button("↻ Refresh", size="sm")
                    open_btn = gr.Button("Open", size="sm", elem_id="open")
                open_id = gr.Textbox(visible=False)  # the API's /open: any id, as a string
            with gr.Accordion("Rewind & branch", open=False, elem_id="rewind-box"):
                seg_pick = gr.Dropdown([], label="Segment", elem_id="seg-pick")
                seg_text = gr.Textbox(label="Its text (edit it, or empty it to cut there)",
                                      lines=6, elem_id="seg-text")
                branch_btn = gr.Button("⑂ Regenerate from here (new branch)",
                                       elem_id="branch")
                branches = gr.Dropdown([], label="Branches of this problem", elem_id="branches")
    current = gr.State(None)  # id of the trajectory on screen

    settings = [backend, model, base_url, temperature, max_tokens, rounds, conj_p, categories,
                max_tool_calls, timeout, seed]
    view = [studio_state, chatbot, status, current, seg_pick]

    async def stream(studio: Studio, source: AsyncIterator[Trajectory], *, page: bool = False,
                     ) -> AsyncIterator[Any]:
        """Updates of a live run. Only what changed travels: the rewind picker once, when the
        run ended; for the page (``page``), a last update of skips, because Gradio's closing
        message would otherwise resend every output whole (API callers need that value)."""
        picked = False
        try:
            async with contextlib.aclosing(source) as updates:
                async for traj in updates:
                    done = traj.status != "running"  # the picker is for a run that ended
                    yield (studio, *_view(studio, traj, picks=done and not picked))
                    picked = picked or done
        except (ValueError, RuntimeError, PermissionError) as e:  # said to the person
            raise gr.Error(str(e)) from None
        if page:
            yield (studio, gr.skip(), gr.skip(), gr.skip(), gr.skip())

    def streaming(start: Callable[..., AsyncIterator[Trajectory]], page: bool) -> Any:
        """A generation handler: ``start(studio, *inputs)`` gives the run's live updates. Who
        asks comes from the request (never from an input): whose run it is, and whose rate
        limit it counts against."""
        async def handler(studio: Studio | None, request: gr.Request,
                          *inputs: Any) -> AsyncIterator[Any]:
            studio = studio or Studio(services)
            studio.visitor = studio.visitor or visitor_of(request)
            studio.client = visitor_key(request)
            async for v in stream(studio, start(studio, *inputs), page=page):
                yield v

        return handler

    def admitted(studio: Studio, values: tuple[Any, ...]) -> RunSettings:
        try:
            return services.admit(_settings(*values), studio.client or studio.visitor or "")
        except NotAllowed as e:
            raise gr.Error(str(e)) from None

    def start_run(studio: Studio, question: str, *values: Any) -> AsyncIterator[Trajectory]:
        return studio.run(question, admitted(studio, values))

    def start_continue(studio: Studio, traj_id: str | None, *values: Any,
                       ) -> AsyncIterator[Trajectory]:
        return studio.resume(_open(studio, traj_id), admitted(studio, values))

    def start_branch(studio: Studio, traj_id: str | None, index: int | None, text: str,
                     *values: Any) -> AsyncIterator[Trajectory]:
        if index is None:
            raise gr.Error("pick a segment to rewind to first")
        return studio.rewind(_open(studio, traj_id), int(index), text,
                             admitted(studio, values))

    def start_from(studio: Studio, point: tuple[str, int, str] | None,
                   *values: Any) -> AsyncIterator[Trajectory]:
        """The review tab's "continue from here": a branch at a segment, with its edited text."""
        if not point:
            raise gr.Error("nothing to continue from")
        traj_id, index, text = point
        return start_branch(studio, traj_id, index, text, *values)

    def on_stop(studio: Studio | None) -> None:
        if studio is None or not studio.stop():
            gr.Info("nothing is running")

    def on_insert(studio: Studio | None, text: str, pick: str) -> str:
        if studio is None:
            raise gr.Error("nothing is running: a hint goes into a live run")
        if not (text or "").strip() and pick and pick != CUSTOM_HINT:
            category = pick.split(":", 1)[0]
            text = library.by_category(category).written
        try:
            studio.insert_hint(text or "")
        except ValueError as e:
            raise gr.Error(str(e)) from None
        return ""

    def on_refresh(request: gr.Request, profile: gr.OAuthProfile | None = None) -> Any:
        """Recent runs: everyone's on a private deployment; in public mode a visitor's own,
        and everyone's for a logged-in reviewer or admin."""
        mine = None
        if services.deployment.public:
            who = auth.logged_in(request, profile)
            if who is None or auth.role(services.store, who) not in ("admin", "reviewer"):
                mine = visitor_of(request)
        return gr.update(choices=[(render.run_label(s), s.id)
                                  for s in services.recent(visitor=mine)])

    def on_open(studio: Studio | None, traj_id: str | None) -> tuple[Any, ...]:
        studio = studio or Studio(services)
        if not traj_id:
            raise gr.Error("pick a saved trajectory first")
        return (studio, *_view(studio, _open(studio, traj_id)))

    def on_pick_segment(studio: Studio | None, traj_id: str | None, index: int | None) -> str:
        studio = studio or Studio(services)
        if index is None or not traj_id:
            return ""
        traj = _open(studio, traj_id)
        return traj.segments[int(index)].text if int(index) < len(traj.segments) else ""

    def decide(decision: str) -> Callable[..., str]:
        """Accept or reject the trajectory on screen, as the logged-in person."""
        def handler(studio: Studio | None, traj_id: str | None, request: gr.Request,
                    profile: gr.OAuthProfile | None = None) -> str:
            from startui.review import decisions

            studio = studio or Studio(services)
            if not traj_id:
                raise gr.Error("run or open a trajectory first")
            if studio.running and studio.trajectory and studio.trajectory.id == traj_id:
                raise gr.Error("this run is still going: stop it (or let it finish) first")
            if services.store is None:
                raise gr.Error("this app runs without a store")
            who = auth.reviewer(services.store, request, profile,
                                public=services.deployment.public)
            try:
                review = decisions.decide(services.store, traj_id, reviewer=who,
                                          decision=decision)
            except auth.USER_ERRORS as e:
                raise gr.Error(str(e)) from None
            gr.Info(f"{decision} by {who}")
            return (f"{'✓' if decision == 'accepted' else '✗'} **{decision}** by {who} "
                    f"(version {review.trajectory_version})")

        return handler

    def on_branches(traj_id: str | None) -> Any:
        return gr.update(choices=[(render.run_label(s, branch=True), s.id)
                                  for s in services.branches(traj_id)])

    gen = {"concurrency_limit": concurrency, "concurrency_id": "generate"}
    run_inputs = [studio_state, problem, *settings]
    continue_inputs = [studio_state, current, *settings]
    branch_inputs = [studio_state, current, seg_pick, seg_text, *settings]
    page = {"api_name": False, **gen}
    run_btn.click(streaming(start_run, True), run_inputs, view, **page).then(
        on_refresh, None, runs, api_name=False).then(on_branches, current, branches,
                                                     api_name=False)
    problem.submit(streaming(start_run, True), run_inputs, view, **page)
    continue_btn.click(streaming(start_continue, True), continue_inputs, view, **page)
    branch_btn.click(streaming(start_branch, True), branch_inputs, view, **page).then(
        on_branches, current, branches, api_name=False).then(on_refresh, None, runs,
                                                             api_name=False)
    # The same three for API callers, whose result is the final value (no closing skips).
    api = gr.Button(visible=False)
    api.click(streaming(start_run, False), run_inputs, view, api_name="run", **gen)
    api.click(streaming(start_continue, False), continue_inputs, view, api_name="continue", **gen)
    api.click(streaming(start_branch, False), branch_inputs, view, api_name="branch", **gen)
    stop_btn.click(on_stop, studio_state, None, api_name="stop", concurrency_limit=None)
    insert_btn.click(on_insert, [studio_state, hint_text, hint_pick], hint_text,
                     api_name="insert_hint", concurrency_limit=None)
    hint_text.submit(on_insert, [studio_state, hint_text, hint_pick], hint_text,
                     api_name=False, concurrency_limit=None)
    refresh_btn.click(on_refresh, None, runs, api_name="recent")
    demo.load(on_refresh, None, runs, api_name=False)
    demo.load(lambda: describe_isolation(services.isolation), None, isolation, api_name=False)
    open_btn.click(on_open, [studio_state, runs], view, api_name=False).then(
        on_branches, current, branches, api_name=False)
    # The API's /open takes any id as a plain string (the dropdown only knows /recent's ids).
    api.click(on_open, [studio_state, open_id], view, api_name="open").then(
        on_branches, current, branches, api_name=False)
    accept_btn.click(decide("accepted"), [studio_state, current], decided, api_name=False)
    reject_btn.click(decide("rejected"), [studio_state, current], decided, api_name=False)
    current.change(lambda _: "", current, decided, api_name=False)
    runs.select(on_open, [studio_state, runs], view, api_name=False).then(
        on_branches, current, branches, api_name=False)
    branches.select(on_open, [studio_state, branches], view, api_name=False)
    seg_pick.change(on_pick_segment, [studio_state, current, seg_pick], seg_text,
                    api_name=False)
    return LiveTab(view=view, current=current, seg_text=seg_text, branches=branches,
                   settings=settings, send_btn=send_btn,
                   open=lambda st, tid: on_open(st, tid),
                   branch=streaming(start_from, True), generate=gen)


def visitor_of(request: gr.Request | None) -> str:
    """Whose runs are whose: the logged-in user, else this browser session."""
    name = getattr(request, "username", None) if request is not None else None
    if name:
        return f"user:{name}"
    return f"session:{getattr(request, 'session_hash', None) or 'api'}"


def _open(studio: Studio, traj_id: str | None) -> Trajectory:
    try:
        return studio.open(traj_id)
    except ValueError as e:
        raise gr.Error(str(e)) from None
