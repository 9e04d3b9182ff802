"""The third tab: from reviewed trajectories to a training set — dashboards, the export as a zip,
review campaigns with their agreement and adjudication, and (for admins) problem import, batch
Hint-infer runs and users.

Callbacks only wire :class:`~startui.ui.dataset_actions.DatasetActions` (the same calls the API
endpoints of :mod:`startui.ui.dataset_api` make) to components and turn refusals into messages;
the figures are :func:`startui.rft.dashboard.figures`, the ones ``python -m startui report``
writes; text and tables come from the pure :mod:`startui.ui.dataset_render`. The admin panels are
in :mod:`startui.ui.dataset_admin`.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import gradio as gr

from startui.rft import dashboard
from startui.rft.export import FORMATS
from startui.rft.filters import RULES, FilterConfig
from startui.store.models import ROLES
from startui.ui import auth, dataset_api, dataset_render
from startui.ui import review_render as rr
from startui.ui.dataset_actions import DatasetActions
from startui.ui.dataset_admin import build_admin
from startui.ui.dataset_ops import may_look
from startui.ui.dataset_render import NO_CAMPAIGN
from startui.ui.live import LATEX
from startui.ui.settings import RunSettings
from startui.ui.studio import Services

PLOTS = ("funnel", "scaling", "categories", "sources", "lengths", "modes", "throughput",
         "agreement")
DATASETS = [("D_START (correct, at most k per problem)", "start"),
            ("D_seed (greedy wrong, hinted right)", "seed"),
            ("Steps (accepted, step-labelled: a reward model)", "steps")]


def build_dataset_tab(demo: gr.Blocks, services: Services, tab: gr.Tab, *,
                      defaults: RunSettings) -> DatasetActions:
    actions = DatasetActions(services)
    page: dict[str, Any] = {"api_name": False}

    # --- layout ----------------------------------------------------------------------------
    who_md = gr.Markdown("", elem_id="dataset-who")
    message = gr.Markdown("", elem_id="dataset-message")
    acting = dataset_api.acting(actions, message)
    refreshing = dataset_api.acting(actions, message, clear=False)  # in the background
    with gr.Accordion("Dashboards", open=True, elem_id="dataset-dashboards"):
        with gr.Row(equal_height=True):
            d_runs = gr.Dropdown([], multiselect=True, label="Runs (none: all)", scale=3,
                                 elem_id="dataset-d-runs")
            d_campaign = gr.Dropdown([NO_CAMPAIGN], value=NO_CAMPAIGN, scale=2,
                                     label="Campaign (only its items)",
                                     elem_id="dataset-d-campaign")
            d_refresh = gr.Button("↻ Refresh dashboards", scale=1, elem_id="dataset-d-refresh")
        d_summary = gr.Markdown("", elem_id="dataset-d-summary")
        plots: dict[str, gr.Plot] = {}
        for i in range(0, len(PLOTS), 2):
            with gr.Row():
                for name in PLOTS[i:i + 2]:
                    plots[name] = gr.Plot(label=name, elem_id=f"dataset-plot-{name}")
    with gr.Accordion("Export", open=True, elem_id="dataset-export"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=2):
                x_runs = gr.Dropdown([], multiselect=True, label="Runs", elem_id="dataset-x-runs")
                x_dataset = gr.Radio(DATASETS, value="start", label="Dataset",
                                     elem_id="dataset-x-dataset")
                with gr.Row():
                    x_per_problem = gr.Number(0, precision=0, minimum=0,
                                              label="At most k per problem (0: the default)")
                    x_keep_incorrect = gr.Checkbox(False, label="Keep wrong answers")
                x_modes = gr.CheckboxGroup(["hinted", "plain", "greedy"], value=[],
                                           label="Modes (none: the dataset's default)")
                x_formats = gr.CheckboxGroup(list(FORMATS), value=["jsonl", "parquet"],
                                             label="Formats", elem_id="dataset-x-formats")
            with gr.Column(scale=2):
                x_disable = gr.CheckboxGroup(list(RULES), value=[], label="Filter rules off")
                f = FilterConfig()
                with gr.Row():
                    x_max_chars = gr.Number(f.max_chars, precision=0, minimum=0,
                                            label="Longest completion, characters (0: any)")
                    x_max_tools = gr.Number(f.max_tool_calls, precision=0, minimum=0,
                                            label="Most tool calls")
                x_mask = gr.Radio(["none", "human", "all"], value="none",
                                  label="Hints left out of the loss")
                with gr.Row():
                    x_strip = gr.Checkbox(False, label="Strip people's hints")
                    x_normalize = gr.Checkbox(False, label="Normalize kernel outputs")
        with gr.Row():
            x_preview = gr.Button("Count (preview)", elem_id="dataset-x-preview")
            x_export = gr.Button("⬇ Export a zip", variant="primary", elem_id="dataset-x-export")
            x_download = gr.DownloadButton("Download", visible=False,
                                           elem_id="dataset-x-download")
        x_report = gr.Markdown("", elem_id="dataset-x-report")
    with gr.Accordion("Campaigns, agreement and adjudication", open=True,
                      elem_id="dataset-campaigns"):
        with gr.Row(equal_height=True):
            c_pick = gr.Dropdown([NO_CAMPAIGN], value=NO_CAMPAIGN, label="Campaign", scale=3,
                                 elem_id="dataset-c-pick")
            c_refresh = gr.Button("↻ Refresh", scale=1, elem_id="dataset-c-refresh")
            c_close = gr.Button("Close", scale=1, elem_id="dataset-c-close")
            c_reopen = gr.Button("Reopen", scale=1, elem_id="dataset-c-reopen")
        c_info = gr.Markdown("", elem_id="dataset-c-info")
        c_agreement = gr.Markdown("", elem_id="dataset-c-agreement")
        with gr.Accordion("New campaign (admins)", open=False, elem_id="dataset-c-new"):
            with gr.Row():
                c_name = gr.Textbox("", label="Name", elem_id="dataset-c-name")
                c_run = gr.Dropdown([rr.ANY], value=rr.ANY, label="Run", elem_id="dataset-c-run")
                c_status = gr.Dropdown([(rr.STATUS_NAMES[s], s) for s in rr.REVIEW_STATUSES]
                                       + [(rr.ANY, rr.ANY)], value="pending",
                                       label="Review status")
                c_verdict = gr.Dropdown([rr.ANY, "correct", "wrong", "unscored"], value=rr.ANY,
                                        label="Rule verdict", elem_id="dataset-c-verdict")
            with gr.Row():
                c_per_problem = gr.Number(0, precision=0, minimum=0,
                                          label="At most k per problem (0: no cap)")
                c_overlap = gr.Number(2, precision=0, minimum=1,
                                      label="Overlap (reviewers per item)",
                                      elem_id="dataset-c-overlap")
                c_lease = gr.Number(15, minimum=1, label="Lease (minutes)")
            with gr.Row():
                c_reviewers = gr.Dropdown([], multiselect=True, label="Reviewers",
                                          elem_id="dataset-c-reviewers")
                c_adjudicator = gr.Dropdown(["(none)"], value="(none)", label="Adjudicator")
            c_create = gr.Button("Create campaign", variant="primary",
                                 elem_id="dataset-c-create")
        with gr.Accordion("Adjudication", open=True, elem_id="dataset-adjudication"):
            with gr.Row(equal_height=True):
                a_pick = gr.Dropdown([], label="Needs adjudication", scale=3,
                                     elem_id="dataset-a-pick")
                a_settled = gr.Checkbox(False, label="Show settled ones too", scale=1)
            a_view = gr.HTML("", elem_id="dataset-a-view")
            a_chat = gr.Chatbot(label="The trajectory", height=360, layout="panel",
                                latex_delimiters=LATEX, feedback_options=None,
                                elem_id="dataset-a-chat")
            with gr.Row(equal_height=True):
                a_comment = gr.Textbox("", label="Why (kept with the decision)", scale=3,
                                       elem_id="dataset-a-comment")
                a_accept = gr.Button("✓ Settle: accept", variant="primary", scale=1,
                                     elem_id="dataset-a-accept")
                a_reject = gr.Button("✗ Settle: reject", variant="stop", scale=1,
                                     elem_id="dataset-a-reject")
    admin = build_admin(actions, acting=acting, message=message, defaults=defaults,
                        roles=list(ROLES))

    # --- what is on screen -----------------------------------------------------------------

    def choices(name: str) -> dict[Any, Any]:
        """Every picker's choices, from the store."""
        store = actions.store
        runs = dataset_render.run_choices(store)
        camps = [NO_CAMPAIGN] + dataset_render.campaign_choices(store)
        people = [(f"{u.name} ({u.role})", u.name) for u in store.list_users()
                  if u.role in ("admin", "reviewer")]
        return {who_md: auth.who_line(store, name, bool(store.list_users())).replace(
                    "reviewing as", "working as"),
                d_runs: gr.update(choices=runs), x_runs: gr.update(choices=runs),
                c_run: gr.update(choices=[(rr.ANY, rr.ANY)] + runs),
                d_campaign: gr.update(choices=camps), c_pick: gr.update(choices=camps),
                c_reviewers: gr.update(choices=people),
                c_adjudicator: gr.update(choices=["(none)"] + people),
                **admin.load(name)}

    def on_load(request: gr.Request, profile: gr.OAuthProfile | None = None,
                ) -> dict[Any, Any]:
        """The pickers at page load: quietly nothing for whoever may not see the tab (a public
        deployment's visitor who did not log in: the tab is hidden from them)."""
        try:
            name = dataset_api.who_of(actions, request, profile)
            may_look(name)
            return choices(name)
        except auth.USER_ERRORS:
            return {}

    def on_dashboards(name: str, runs: list[str], campaign: str, max_age: float = 0.0,
                      ) -> dict[Any, Any]:
        d = actions.dashboards(name, runs, campaign, max_age=max_age)
        figs = dashboard.figures(d)
        fun = d.funnel
        summary = (f"{len(d.runs)} run(s) · {fun['generated']} generated · {fun['scored']} "
                   f"scored · {fun['reviewed']} reviewed · {fun['accepted']} accepted · "
                   f"{fun['exported']} selected for export (D_START)"
                   + (f" · campaign **{d.campaign}**" if d.campaign else ""))
        return {d_summary: summary, **{plots[k]: figs[k] for k in PLOTS}}

    def options(dataset: str, per_problem: float | None, keep_incorrect: bool,
                modes: list[str], formats: list[str], disable: list[str],
                max_chars: float | None, max_tools: float | None, mask: str, strip: bool,
                normalize: bool) -> dict[str, Any]:
        return {"dataset": dataset, "per_problem": per_problem, "keep_incorrect": keep_incorrect,
                "modes": modes, "formats": formats, "disable": disable,
                "max_chars": max_chars, "max_tool_calls": max_tools, "mask_hints": mask,
                "strip_human_hints": strip, "normalize_outputs": normalize}

    def on_preview(name: str, runs: list[str], *values: Any) -> dict[Any, Any]:
        sel = actions.preview(name, runs, options(*values))
        return {x_report: dataset_render.selection_markdown(sel.report),
                x_download: gr.update(visible=False)}

    def on_export(name: str, runs: list[str], *values: Any) -> dict[Any, Any]:
        z = actions.export(name, runs, options(*values))
        return {x_report: dataset_render.selection_markdown(z.result.selection.report,
                                                            z.manifest),
                x_download: gr.update(value=str(z.path), visible=True,
                                      label=f"⬇ Download {z.path.name}")}

    def campaign_view(name: str, campaign: str, settled: bool = False) -> dict[Any, Any]:
        if not campaign or campaign == NO_CAMPAIGN:
            return {c_info: "Pick a campaign to see its progress, agreement and disputes.",
                    c_agreement: "", a_pick: gr.update(choices=[], value=None), a_view: "",
                    a_chat: []}
        c, p = actions.campaign(name, campaign)
        out: dict[Any, Any] = {c_info: dataset_render.campaign_markdown(c, p),
                               c_agreement: dataset_render.agreement_markdown(
                                   actions.agreement(name, campaign)),
                               a_view: "", a_chat: []}
        try:
            disputes = actions.disputes(name, campaign, include_adjudicated=settled)
            out[a_pick] = gr.update(choices=dataset_render.dispute_choices(disputes),
                                    value=None)
        except auth.USER_ERRORS as e:  # not theirs to settle: the rest is still shown
            out[a_pick] = gr.update(choices=[], value=None)
            out[a_view] = f"<p>{html.escape(str(e))}</p>"
        return out

    def on_campaign(name: str, campaign: str, settled: bool) -> dict[Any, Any]:
        return campaign_view(name, campaign, settled)

    def on_refresh(name: str, campaign: str, settled: bool) -> dict[Any, Any]:
        return {**choices(name), **campaign_view(name, campaign, settled)}

    def on_close(reopen: bool) -> Callable[..., dict[Any, Any]]:
        def handler(name: str, campaign: str, settled: bool) -> dict[Any, Any]:
            c = actions.close_campaign(name, campaign, reopen=reopen)
            return {**campaign_view(name, campaign, settled),
                    message: f"campaign {c.name} is {c.status}"}

        handler.__name__ = "on_reopen" if reopen else "on_close"
        return handler

    def on_create(name: str, title: str, run: str, status: str, verdict: str,
                  per_problem: float | None, overlap: float | None, lease: float | None,
                  reviewers: list[str], adjudicator: str) -> dict[Any, Any]:
        c = actions.create_campaign(name, title, {
            "run": run, "review_status": status, "verdict": verdict,
            "per_problem": per_problem, "overlap": overlap, "lease_minutes": lease,
            "reviewers": reviewers, "adjudicator": adjudicator})
        out = choices(name)
        out.update(campaign_view(name, c.name))
        out.update({c_pick: gr.update(choices=[NO_CAMPAIGN] + dataset_render.campaign_choices(
                        actions.store), value=c.name),
                    message: f"campaign **{c.name}** created: {c.items} items, overlap "
                             f"{c.overlap}, reviewers {', '.join(c.reviewers)}"})
        return out

    def on_dispute(name: str, campaign: str, tid: str | None) -> dict[Any, Any]:
        if not tid:
            return {a_view: "", a_chat: []}
        view, item = actions.adjudication(name, campaign, tid)
        return {a_view: dataset_render.adjudication_html(view), a_chat: rr.item_messages(item)}

    def on_settle(decision: str) -> Callable[..., dict[Any, Any]]:
        """Record the final decision; the next disagreement is on screen at once."""
        def handler(name: str, campaign: str, tid: str | None, comment: str,
                    settled: bool) -> dict[Any, Any]:
            review = actions.adjudicate(name, campaign, tid or "", decision, comment=comment)
            out = campaign_view(name, campaign, settled)
            listed = actions.disputes(name, campaign, include_adjudicated=settled)
            left = [d for d in listed if d.adjudication is None]
            shown = left[0].trajectory_id if left else review.trajectory_id
            out.update(on_dispute(name, campaign, shown))
            out.update({a_pick: gr.update(choices=dataset_render.dispute_choices(listed),
                                          value=shown if left or settled else None),
                        a_comment: "",
                        message: f"settled: `{review.trajectory_id[:12]}` {review.decision} "
                                 f"by {review.reviewer}" + (
                                     f" · next: `{shown[:12]}`" if left else
                                     " · nothing else needs adjudication")})
            return out

        handler.__name__ = f"on_settle_{decision}"
        return handler

    # --- wiring ----------------------------------------------------------------------------
    plot_list = [plots[k] for k in PLOTS]
    base = [message, who_md, d_runs, x_runs, c_run, d_campaign, c_pick, c_reviewers,
            c_adjudicator, *admin.outputs]
    camp_view = [c_info, c_agreement, a_pick, a_view, a_chat]
    def on_open_tab(name: str, runs: list[str], campaign: str) -> dict[Any, Any]:
        return on_dashboards(name, runs, campaign, max_age=60.0)

    def on_deep_link(request: gr.Request, profile: gr.OAuthProfile | None, runs: list[str],
                     campaign: str) -> dict[Any, Any]:
        """A page opened at ``?tab=dataset`` (see :mod:`startui.ui.links`) shows the tab's
        dashboards as a click on the tab would."""
        if request is None or request.query_params.get("tab") != "dataset":
            return {}
        return refreshing(on_open_tab)(request, profile, runs, campaign)

    demo.load(on_load, None, base, **page).then(
        on_deep_link, [d_runs, d_campaign], [message, d_summary, *plot_list], **page)

    tab.select(on_load, None, base, **page).then(
        refreshing(on_open_tab), [d_runs, d_campaign], [message, d_summary, *plot_list],
        **page)
    d_refresh.click(acting(on_dashboards), [d_runs, d_campaign], [message, d_summary, *plot_list],
                    **page)
    export_inputs = [x_runs, x_dataset, x_per_problem, x_keep_incorrect, x_modes, x_formats,
                     x_disable, x_max_chars, x_max_tools, x_mask, x_strip, x_normalize]
    x_preview.click(acting(on_preview), export_inputs, [message, x_report, x_download], **page)
    x_export.click(acting(on_export), export_inputs, [message, x_report, x_download], **page)
    c_pick.change(refreshing(on_campaign), [c_pick, a_settled], [message, *camp_view], **page)
    a_settled.change(acting(on_campaign), [c_pick, a_settled], [message, *camp_view], **page)
    c_refresh.click(acting(on_refresh), [c_pick, a_settled], list(dict.fromkeys(
        [*base, *camp_view])), **page)
    c_close.click(acting(on_close(False)), [c_pick, a_settled], [message, *camp_view], **page)
    c_reopen.click(acting(on_close(True)), [c_pick, a_settled], [message, *camp_view], **page)
    c_create.click(acting(on_create), [c_name, c_run, c_status, c_verdict, c_per_problem,
                                       c_overlap, c_lease, c_reviewers, c_adjudicator],
                   list(dict.fromkeys([*base, *camp_view])), **page)
    a_pick.input(acting(on_dispute), [c_pick, a_pick], [message, a_view, a_chat], **page)
    settle_out = [message, *camp_view, a_comment]
    a_accept.click(acting(on_settle("accepted")), [c_pick, a_pick, a_comment, a_settled],
                   settle_out, **page)
    a_reject.click(acting(on_settle("rejected")), [c_pick, a_pick, a_comment, a_settled],
                   settle_out, **page)
    dataset_api.build(actions)
    return actions
