"""The Dataset tab's actions for ``gradio_client``: plain strings and JSON in, JSON (and the
export's zip) out. The person acting is the logged-in user, as on the page; the library's permission
checks apply, and a refusal comes back as an error with the library's message.

    /dataset_preview(runs, options)        the selection report: counts, what each filter dropped
    /dataset_export(runs, options)         (manifest + selection report, the zip)
    /campaign_create(name, options)        /campaign_close(name, reopen)
    /campaign_progress(name)               /campaign_agreement(name)
    /campaign_next(name)                   /campaign_decide(name, id, decision, score, labels,
                                                            comment, override_reason)
    /campaign_disputes(name, settled_too)  /campaign_adjudication(name, id)
    /campaign_adjudicate(name, id, decision, comment)
    /problems_import(file, source, skip_invalid)
    /batch_start(options)  /batch_resume()  /batch_stop()  /batch_status()
    /users_list()  /users_add(name, password, role)  /users_role(name, role)  /users_remove(name)

``runs`` is comma-separated names or ids; export ``options`` are ``python -m startui export``'s
flags as JSON keys (``dataset``, ``per_problem``, ``formats``, …: ``dataset_ops.EXPORT_OPTIONS``);
campaign ``options``: ``run``, ``review_status``, ``verdict``, ``per_problem``, ``overlap``,
``reviewers``, ``adjudicator``, ``lease_minutes``; batch ``options``: ``run``, ``source``,
``kind``, ``limit``, ``samples``, ``greedy_baseline``, ``preset``, ``temperature``, ``rounds``,
``max_tokens``, ``concurrency``, ``score``, ``backend`` (in public mode: a deployment's label).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from collections.abc import Callable
from typing import Any

import gradio as gr

from startui.ui import auth
from startui.ui import review_render as rr
from startui.ui.dataset_actions import DatasetActions
from startui.ui.review_api import decision_name, label_names, score_value


def who_of(actions: DatasetActions, request: gr.Request | None,
           profile: gr.OAuthProfile | None) -> str:
    """The person acting: from the request (a login), never from an input."""
    if actions.services.store is None:
        raise gr.Error("this app runs without a store")
    return auth.reviewer(actions.services.store, request, profile, public=actions.public)


def as_options(value: Any) -> dict[str, Any]:
    """Options as a JSON object (or its text)."""
    if value in (None, ""):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as e:
            raise ValueError(f"options must be a JSON object: {e}") from None
    if not isinstance(value, dict):
        raise ValueError("options must be a JSON object")
    return value


def plain(value: Any) -> Any:
    """A library object as JSON-ready data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def acting(actions: DatasetActions, message: Any, *, clear: bool = True,
           ) -> Callable[[Callable[..., dict[Any, Any]]], Callable[..., Any]]:
    """Page handlers: ``fn(name, *inputs)`` returns a dict of updates; a refusal becomes the
    tab's ``message`` (and a warning). ``clear``: success empties the message (what a person's
    click does; a refresh in the background leaves it, or it would wipe what a click just
    said). Gradio fills in the request and the profile, positional parameters, before the
    inputs."""
    done: dict[Any, Any] = {message: ""} if clear else {}
    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        def refused(e: Exception) -> dict[Any, Any]:
            gr.Warning(str(e))
            return {message: f"⚠️ {e}"}

        if inspect.iscoroutinefunction(fn):
            async def handler(request: gr.Request, profile: gr.OAuthProfile | None,
                              *inputs: Any) -> dict[Any, Any]:
                try:
                    return {**done, **await fn(who_of(actions, request, profile), *inputs)}
                except auth.USER_ERRORS as e:
                    return refused(e)
        else:
            def handler(request: gr.Request, profile: gr.OAuthProfile | None,  # type: ignore[misc]
                        *inputs: Any) -> dict[Any, Any]:
                try:
                    return {**done, **fn(who_of(actions, request, profile), *inputs)}
                except auth.USER_ERRORS as e:
                    return refused(e)

        handler.__name__ = fn.__name__
        return handler

    return wrap


def build(actions: DatasetActions) -> None:
    """The endpoints, on hidden components (call inside the Blocks)."""
    a = actions

    def who(request: gr.Request | None, profile: gr.OAuthProfile | None) -> str:
        return who_of(a, request, profile)

    @auth.said
    def dataset_preview(runs: str, options: Any, request: gr.Request,
                        profile: gr.OAuthProfile | None = None) -> dict[str, Any]:
        """What the export would keep and what each filter dropped; nothing written."""
        sel = a.preview(who(request, profile), runs, as_options(options))
        return {"ids": sel.ids, "report": sel.report.to_dict()}

    @auth.said
    def dataset_export(runs: str, options: Any, request: gr.Request,
                       profile: gr.OAuthProfile | None = None) -> tuple[dict[str, Any], str]:
        """The export as a zip (data files + manifest.json), and its manifest."""
        z = a.export(who(request, profile), runs, as_options(options))
        return {"manifest": z.manifest, "file": z.path.name}, str(z.path)

    @auth.said
    def campaign_create(name: str, options: Any, request: gr.Request,
                        profile: gr.OAuthProfile | None = None) -> dict[str, Any]:
        return a.create_campaign(who(request, profile), name, as_options(options)).to_dict()

    @auth.said
    def campaign_close(name: str, reopen: bool, request: gr.Request,
                       profile: gr.OAuthProfile | None = None) -> dict[str, Any]:
        return a.close_campaign(who(request, profile), name, reopen=bool(reopen)).to_dict()

    @auth.said
    def campaign_progress(name: str, request: gr.Request,
                          profile: gr.OAuthProfile | None = None) -> dict[str, Any]:
        c, p = a.campaign(who(request, profile), name)
        return {"campaign": c.to_dict(), "progress": p.to_dict()}

    @auth.said
    def campaign_agreement(name: str, request: gr.Request,
                           profile: gr.OAuthProfile | None = None) -> dict[str, Any]:
        return a.agreement(who(request, profile), name).to_dict()

    @auth.said
    def campaign_next(name: str, request: gr.Request,
                      profile: gr.OAuthProfile | None = None) -> dict[str, Any] | None:
        """The next item of the campaign for me (the one I hold first); null: none left."""
        return rr.item_dict(a.next_item(who(request, profile), name))

    @auth.said
    def campaign_decide(name: str, trajectory_id: str, decision: str, score: float | None,
                        labels: Any, comment: str, override_reason: str, request: gr.Request,
                        profile: gr.OAuthProfile | None = None) -> dict[str, Any]:
        """My vote on an item of the campaign."""
        review = a.decide(who(request, profile), name, trajectory_id, decision_name(decision),
                          score=score_value(score), labels=label_names(labels),
                          comment=comment or "",
                          override_reason=(override_reason or "").strip() or None)
        return review.to_dict()

    @auth.said
    def campaign_disputes(name: str, settled_too: bool, request: gr.Request,
                          profile: gr.OAuthProfile | None = None) -> list[dict[str, Any]]:
        return [d.to_dict() for d in a.disputes(who(request, profile), name,
                                                include_adjudicated=bool(settled_too))]

    @auth.said
    def campaign_adjudication(name: str, trajectory_id: str, request: gr.Request,
                              profile: gr.OAuthProfile | None = None) -> dict[str, Any]:
        view, _ = a.adjudication(who(request, profile), name, trajectory_id)
        return view.to_dict()

    @auth.said
    def campaign_adjudicate(name: str, trajectory_id: str, decision: str, comment: str,
                            request: gr.Request, profile: gr.OAuthProfile | None = None,
                            ) -> dict[str, Any]:
        return a.adjudicate(who(request, profile), name, trajectory_id, decision,
                            comment=comment or "").to_dict()

    @auth.said
    def problems_import(file: str | None, source: str, skip_invalid: bool, request: gr.Request,
                        profile: gr.OAuthProfile | None = None) -> dict[str, Any]:
        report = a.import_problems(who(request, profile), file, source=source,
                                   skip_invalid=bool(skip_invalid))
        out = plain(report)
        out["file"] = out.pop("path")  # a "path" key would read as a file to gradio_client
        return {**out, "summary": report.summary()}

    @auth.said
    async def batch_start(options: Any, request: gr.Request,
                          profile: gr.OAuthProfile | None = None) -> dict[str, Any]:
        return await a.start_batch(who(request, profile), as_options(options))

    @auth.said
    async def batch_resume(request: gr.Request,
                           profile: gr.OAuthProfile | None = None) -> dict[str, Any]:
        return await a.start_batch(who(request, profile), None)

    @auth.said
    def batch_stop(request: gr.Request, profile: gr.OAuthProfile | None = None,
                   ) -> dict[str, Any]:
        return a.stop_batch(who(request, profile))

    @auth.said
    def batch_status(request: gr.Request, profile: gr.OAuthProfile | None = None,
                     ) -> dict[str, Any]:
        return a.batch_status(who(request, profile))

    @auth.said
    def users_list(request: gr.Request, profile: gr.OAuthProfile | None = None,
                   ) -> list[dict[str, Any]]:
        return plain(a.users(who(request, profile)))

    @auth.said
    def users_add(name: str, password: str, role: str, request: gr.Request,
                  profile: gr.OAuthProfile | None = None) -> dict[str, Any]:
        return plain(a.add_user(who(request, profile), name, password, role or "reviewer"))

    @auth.said
    def users_role(name: str, role: str, request: gr.Request,
                   profile: gr.OAuthProfile | None = None) -> dict[str, Any]:
        return plain(a.set_role(who(request, profile), name, role))

    @auth.said
    def users_remove(name: str, request: gr.Request,
                     profile: gr.OAuthProfile | None = None) -> dict[str, Any]:
        a.remove_user(who(request, profile), name)
        return {"removed": name}

    text = [gr.Textbox(visible=False) for _ in range(5)]
    flag = gr.Checkbox(visible=False)
    number = gr.Number(None, visible=False)
    anything = [gr.JSON(visible=False) for _ in range(2)]
    upload = gr.File(visible=False, type="filepath")
    out = gr.JSON(visible=False)
    out_file = gr.File(visible=False)
    btn = gr.Button(visible=False)
    t0, t1, t2, t3, t4 = text
    for fn, inputs, outputs in (
            (dataset_preview, [t0, anything[0]], out),
            (dataset_export, [t0, anything[0]], [out, out_file]),
            (campaign_create, [t0, anything[0]], out),
            (campaign_close, [t0, flag], out),
            (campaign_progress, [t0], out),
            (campaign_agreement, [t0], out),
            (campaign_next, [t0], out),
            (campaign_decide, [t0, t1, t2, number, anything[1], t3, t4], out),
            (campaign_disputes, [t0, flag], out),
            (campaign_adjudication, [t0, t1], out),
            (campaign_adjudicate, [t0, t1, t2, t3], out),
            (problems_import, [upload, t0, flag], out),
            (batch_start, [anything[0]], out),
            (batch_resume, None, out),
            (batch_stop, None, out),
            (batch_status, None, out),
            (users_list, None, out),
            (users_add, [t0, t1, t2], out),
            (users_role, [t0, t1], out),
            (users_remove, [t0], out)):
        btn.click(fn, inputs, outputs, api_name=fn.__name__)
