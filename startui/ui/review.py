"""The second tab: review trajectories — the queue, the trajectory with its verdict, step labels,
a score and labels, edits checked by re-running their code, and the decision, one key each.

Callbacks only wire :mod:`startui.review` calls (the queue session, decisions, labels, edits,
users) to components and turn the library's refusals into messages; what is shown comes from the
pure :mod:`startui.ui.review_render`. The same actions are API endpoints (``/review_next``,
``/review_open``, ``/review_decide``, ``/review_label``, ``/review_edit``, ``/review_undo``) that
take trajectory ids as plain strings and go through the same permission checks
(:mod:`startui.ui.review_api`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from startui.review import edits, guide, users
from startui.review import labels as step_labels
from startui.review.session import ReviewSession
from startui.store import ConflictError
from startui.trajectory import Segment
from startui.ui import auth, review_api
from startui.ui import review_render as rr
from startui.ui.campaign_session import CampaignSession, campaign_note
from startui.ui.dataset_render import NO_CAMPAIGN, campaign_choices
from startui.ui.live import LATEX, LiveTab
from startui.ui.studio import Services

ANY = rr.ANY
SORTS = ["oldest", "shortest", "shuffled"]

CSS = """
#review-top { position: sticky; top: 0; z-index: 20; background: var(--body-background-fill);
              border-bottom: 1px solid var(--border-color-primary); padding: 4px 0; }
#review-message:empty, #review-keys-only { display: none !important; }
.review-diff pre { white-space: pre-wrap; margin: 2px 0 8px; }
.review-diff del { background: #fdd; text-decoration: line-through; }
.review-diff ins { background: #dfd; text-decoration: none; }
"""

# Keys of the Review tab (shown on its buttons). They never fire while a text field has the
# focus (Esc leaves it), nor on another tab. A key clicks its button: a key and a click are one
# path.
KEYS_JS = r"""
() => {
  if (window.__startuiReviewKeys) return;
  window.__startuiReviewKeys = true;
  const typing = (el) => el && (el.isContentEditable ||
      ['INPUT', 'TEXTAREA', 'SELECT'].includes(el.tagName));
  const shown = (el) => el && el.offsetParent !== null;
  const byId = (id) => document.getElementById(id);
  const press = (id) => {
    const b = byId(id);
    if (b && !b.disabled) { b.click(); return true; }
    return false;
  };
  const KEYS = {a: 'review-accept', r: 'review-reject', s: 'review-skip', z: 'review-undo',
                j: 'review-seg-next', k: 'review-seg-prev', '=': 'review-label-plus',
                '+': 'review-label-plus', '0': 'review-label-zero', '-': 'review-label-minus',
                c: 'review-label-clear', e: 'review-first-error'};
  const jump = (step) => {  // [ / ]: the previous / next code cell, hint, label or stale flag
    const box = byId('review-trajectory');
    if (!box) return false;
    const hit = (e) => {
      const m = e.closest('.message-content') || e.closest('.thought') || e;
      return /✅|➖|❌|🕓/.test(e.innerText) || /Hint ·/.test(m.innerText) ||
             m.querySelector('code.language-python');
    };
    const marks = [...box.querySelectorAll('code, .title')]
      .filter((e) => /^#\d+/.test(e.innerText.trim()) && hit(e));
    if (!marks.length) return false;
    const y = box.getBoundingClientRect().top + 48;
    const rel = marks.map((m) => m.getBoundingClientRect().top - y);
    let i = step > 0 ? rel.findIndex((v) => v > 4) : rel.map((v) => v < -4).lastIndexOf(true);
    if (i < 0) i = step > 0 ? marks.length - 1 : 0;
    marks[i].scrollIntoView({block: 'start', behavior: 'smooth'});
    return true;
  };
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && typing(document.activeElement) &&
        shown(byId('review-accept'))) {  // Esc leaves a text field: the keys work again
      setTimeout(() => document.activeElement && document.activeElement.blur(), 0);
      return;
    }
    if (ev.ctrlKey || ev.metaKey || ev.altKey || typing(ev.target) ||
        typing(document.activeElement)) return;
    if (!shown(byId('review-accept'))) return;  // only on the Review tab
    let done = false;
    const digit = /^Digit([1-9])$/.exec(ev.code);
    if (digit && ev.shiftKey) {  // Shift+1..5: the score
      const r = document.querySelectorAll('#review-score input[type=radio]')[+digit[1] - 1];
      if (r) { r.click(); done = true; }
    } else if (digit && ev.key !== '+') {  // 1..9: toggle a label of the label set
      const c = document.querySelectorAll('#review-labels input[type=checkbox]')[+digit[1] - 1];
      if (c) { c.click(); done = true; }
    } else if (ev.key === ']' || ev.key === '[') {
      done = jump(ev.key === ']' ? 1 : -1);
    } else if (KEYS[ev.key] || KEYS[ev.key.toLowerCase()]) {
      done = press(KEYS[ev.key] || KEYS[ev.key.toLowerCase()]);
    }
    if (done) ev.preventDefault();
  });
}
"""

# The page's address follows what is on screen, so a reload (or a link sent to a colleague)
# opens the same trajectory in the same tab.
LINK_JS = """(q) => { const u = location.pathname + (q || '');
  if (location.pathname + location.search !== u) history.replaceState(null, '', u); }"""


@dataclass
class Desk:
    """One page's review: who is reviewing, and their session on the queue."""

    who: str
    session: ReviewSession
    logged_in: bool = False
    # two keys pressed fast must not decide twice on one item (or once on an unseen one)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


@dataclass
class ReviewTab:
    desk: gr.State
    view: list[Any]
    load: Callable[..., dict[Any, Any]]  # (desk, request, profile, trajectory id) → updates


def _item(desk: Desk) -> Any:
    return desk.session.current


def build_review_tab(demo: gr.Blocks, services: Services, studio_state: gr.State, *,
                     tabs: gr.Tabs, live: LiveTab, link: gr.Textbox) -> ReviewTab:
    store = services.store

    def new_desk(desk: Desk | None, request: gr.Request | None,
                 profile: gr.OAuthProfile | None) -> Desk:
        if store is None:
            raise gr.Error("this app runs without a store: there is nothing to review")
        who = auth.reviewer(store, request, profile, public=services.deployment.public)
        if desk is None or desk.who != who:
            logged_in = bool(getattr(request, "username", None) or profile)
            desk = Desk(who, ReviewSession(store, who), logged_in=logged_in)
        return desk

    # --- layout ----------------------------------------------------------------------------
    desk_state = gr.State(None)
    with gr.Column(elem_id="review-top"):
        if auth.on_spaces():
            gr.LoginButton()
        progress = gr.Markdown("", elem_id="review-progress")
        message = gr.Markdown("", elem_id="review-message")
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=250):
            with gr.Accordion("Queue", open=True):
                with gr.Row(equal_height=True):  # a review campaign hands out its own items
                    f_campaign = gr.Dropdown([NO_CAMPAIGN], value=NO_CAMPAIGN, scale=3,
                                             label="Campaign", elem_id="review-f-campaign")
                    campaign_btn = gr.Button("Next in campaign", size="sm", scale=1,
                                             elem_id="review-campaign-next")
                f_status = gr.Dropdown([(rr.STATUS_NAMES[s], s) for s in rr.REVIEW_STATUSES]
                                       + [(ANY, ANY)], value="pending", label="Review status",
                                       elem_id="review-f-status")
                f_verdict = gr.Dropdown([ANY, "correct", "wrong", "unscored"], value=ANY,
                                        label="Rule verdict", elem_id="review-f-verdict")
                f_run = gr.Dropdown([ANY], value=ANY, label="Run", allow_custom_value=True,
                                    elem_id="review-f-run")
                f_source = gr.Textbox("", label="Problem source", placeholder="any")
                f_kind = gr.Dropdown([ANY, "math", "code"], value=ANY, label="Kind")
                f_tools = gr.Radio([ANY, "yes", "no"], value=ANY, label="Has tool calls")
                f_human = gr.Radio([ANY, "yes", "no"], value=ANY, label="Has a human hint")
                f_error = gr.Radio([ANY, "yes", "no"], value=ANY, label="Ends in an error")
                f_search = gr.Textbox("", label="Search (problem and text)",
                                      elem_id="review-f-search")
                f_sort = gr.Radio(SORTS, value="oldest", label="Order")
                f_seed = gr.Number(0, label="Seed (shuffled)", precision=0)
                apply_btn = gr.Button("Apply filter", variant="primary", size="sm",
                                      elem_id="review-apply")
            with gr.Accordion("Open by id", open=False):
                open_box = gr.Textbox("", label="Trajectory id", elem_id="review-open-id")
                open_btn = gr.Button("Open", size="sm", elem_id="review-open")
            with gr.Accordion("Guidelines", open=False, elem_id="review-guidelines"):
                guide_md = gr.Markdown("")
                with gr.Accordion("Edit (admins)", open=False, visible=False) as guide_acc:
                    guide_box = gr.Textbox("", lines=10, label="Guidelines (markdown)")
                    guide_btn = gr.Button("Save guidelines", size="sm")
        with gr.Column(scale=3):
            status = gr.Markdown("", elem_id="review-status")
            chat = gr.Chatbot(label="Trajectory", height=640, elem_id="review-trajectory",
                              layout="panel", latex_delimiters=LATEX, buttons=["copy_all"],
                              feedback_options=None)
        with gr.Column(scale=2, min_width=320):
            verdict = gr.Markdown("", elem_id="review-verdict")
            with gr.Row():
                accept_btn = gr.Button("✓ Accept (a)", variant="primary", elem_id="review-accept")
                reject_btn = gr.Button("✗ Reject (r)", variant="stop", elem_id="review-reject")
            with gr.Row():
                skip_btn = gr.Button("↷ Skip (s)", elem_id="review-skip")
                undo_btn = gr.Button("↶ Undo (z)", elem_id="review-undo")
            score = gr.Radio(["1", "2", "3", "4", "5"], label="Score (Shift+1…5)",
                             elem_id="review-score")
            label_box = gr.CheckboxGroup([], label="Labels (keys 1–9)", elem_id="review-labels")
            comment = gr.Textbox("", label="Comment", lines=2, elem_id="review-comment")
            override = gr.Textbox("", label="Accept despite stale outputs, because…",
                                  elem_id="review-override")
            seg_pick = gr.Dropdown([], label="Segment (j / k: next / previous; [ / ]: jump "
                                             "to the next code, hint or label)",
                                   elem_id="review-seg")
            with gr.Row(elem_id="review-keys-only"):  # clicked by the j / k keys
                seg_next = gr.Button("next", elem_id="review-seg-next")
                seg_prev = gr.Button("previous", elem_id="review-seg-prev")
            with gr.Accordion("Step labels", open=True):
                with gr.Row():
                    plus_btn = gr.Button("✅ +1 (=)", size="sm", elem_id="review-label-plus",
                                         min_width=60)
                    zero_btn = gr.Button("➖ 0 (0)", size="sm", elem_id="review-label-zero",
                                         min_width=60)
                    minus_btn = gr.Button("❌ −1 (-)", size="sm", elem_id="review-label-minus",
                                          min_width=60)
                    clear_btn = gr.Button("clear (c)", size="sm", elem_id="review-label-clear",
                                          min_width=60)
                first_btn = gr.Button("First error here (e): ✅ before, ❌ here", size="sm",
                                      elem_id="review-first-error")
            with gr.Accordion("Edit", open=True):
                editor = gr.Textbox("", label="Segment text", lines=6, elem_id="review-editor")
                with gr.Row():
                    save_btn = gr.Button("💾 Save edit", size="sm", variant="primary",
                                         elem_id="review-save")
                    delete_btn = gr.Button("🗑 Delete segment", size="sm",
                                           elem_id="review-delete")
                    reload_btn = gr.Button("↻ Reload", size="sm", elem_id="review-reload")
                with gr.Row(equal_height=True):
                    hint_box = gr.Textbox("", label="Hint to add after the segment", scale=3,
                                          elem_id="review-hint")
                    hint_btn = gr.Button("💡 Add hint", size="sm", scale=1,
                                         elem_id="review-add-hint")
                continue_btn = gr.Button("⑂ Continue from here (live tab, new branch)",
                                         size="sm", elem_id="review-continue")
                stale_md = gr.Markdown("", elem_id="review-stale")
                with gr.Row(equal_height=True):
                    stale_pick = gr.Dropdown([], label="Stale output", scale=2,
                                             elem_id="review-stale-pick")
                    take_btn = gr.Button("Take new output", size="sm", scale=1,
                                         elem_id="review-take")
                    take_all_btn = gr.Button("Take all", size="sm", scale=1,
                                             elem_id="review-take-all")
                diff = gr.HTML("", elem_id="review-diff")
                revisions = gr.Markdown("", elem_id="review-revisions")
    point_state = gr.State(None)  # (id, segment, text) for "continue from here"
    none = gr.State(None)  # "every stale output", for "Take all"

    view = [desk_state, progress, message, status, chat, verdict, seg_pick, editor, score,
            label_box, comment, override, stale_md, stale_pick, diff, revisions, link,
            guide_md, guide_box, guide_acc, f_run, f_campaign]

    # --- what is on screen -----------------------------------------------------------------

    def show(desk: Desk, *, note: str = "", new_item: bool = True, seg: int | None = None,
             ) -> dict[Any, Any]:
        item = _item(desk)
        traj = item.trajectory if item is not None else None
        editable = auth.role(store, desk.who) != "viewer"
        who = auth.who_line(store, desk.who, desk.logged_in) + campaign_note(desk.session)
        out: dict[Any, Any] = {
            desk_state: desk,
            progress: rr.progress_line(who, counts := desk.session.counts(),
                                       desk.session.progress(counts)),
            message: note,
            status: rr.item_status(item, editable),
            chat: rr.item_messages(item),
            verdict: rr.verdict_panel(item),
            seg_pick: gr.update(choices=rr.segment_choices(traj, item and item.my_labels),
                                value=seg),
            stale_md: rr.stale_panel(item.stale) if item else "",
            stale_pick: gr.update(choices=rr.stale_choices(item.stale) if item else [],
                                  value=item.stale[0].position if item and item.stale
                                  else None),
            diff: diffs(item),
            revisions: "",
            link: rr.deep_link(traj.id, "review") if traj else "",
        }
        if item is not None and item.revisions:
            out[revisions] = rr.revisions_panel(store.list_revisions(traj.id))
        if new_item:
            out.update({score: None, label_box: [], comment: "", override: ""})
        return out

    def diffs(item: Any) -> str:
        if item is None or not item.revisions:
            return ""
        revs = store.list_revisions(item.trajectory.id)
        if len(revs) < 2:
            return ""
        current = revs[-1].segments
        html = rr.diff_html(edits.diff(revs[0].segments, current),
                            "Changes against the model's original")
        if len(revs) > 2:
            html += rr.diff_html(edits.diff(revs[-2].segments, current),
                                 f"Changes against the previous revision (v{revs[-2].version})")
        return html

    def refused(desk: Desk | None, e: Exception, prefix: str = "") -> dict[Any, Any]:
        gr.Warning(str(e))
        out: dict[Any, Any] = {message: f"⚠️ {prefix}{e}"}
        if desk is not None:
            out[desk_state] = desk
        return out

    def first_load(desk: Desk | None, request: gr.Request | None,
                   profile: gr.OAuthProfile | None, trajectory_id: str | None = None,
                   ) -> dict[Any, Any]:
        """The tab as a page load (or a deep link) opens it: the label set, the guidelines, the
        runs, and the trajectory asked for, else the first of the queue."""
        if store is None:
            return {message: "this app runs without a store: there is nothing to review"}
        desk = new_desk(desk, request, profile)
        note = ""
        try:
            if trajectory_id:
                desk.session.open(trajectory_id)
            else:
                desk.session.set_filter(rr.queue_filter())
        except auth.USER_ERRORS as e:
            note = f"⚠️ {e}"
            if desk.session.current is None:
                desk.session.set_filter(rr.queue_filter())
        out = show(desk, note=note)
        admin = auth.role(store, desk.who) == "admin"
        text = guide.guidelines(store)
        names = guide.label_set(store)
        runs = [(ANY, ANY)] + [(r.get("name") or r["id"], r["id"]) for r in store.list_runs()]
        out.update({guide_md: text, guide_box: text, guide_acc: gr.update(visible=admin),
                    label_box: gr.update(choices=[(f"{i} · {n}", n)
                                                  for i, n in enumerate(names, 1)], value=[]),
                    f_run: gr.update(choices=runs),
                    f_campaign: gr.update(choices=[NO_CAMPAIGN] + campaign_choices(
                        store, desk.who, open_only=True))})
        return out

    # --- the queue -------------------------------------------------------------------------

    def on_filter(desk: Desk | None, status_v: str, verdict_v: str, run_v: str,
                  source_v: str, kind_v: str, tools_v: str, human_v: str, error_v: str,
                  search_v: str, sort_v: str, seed_v: float | None, request: gr.Request,
                  profile: gr.OAuthProfile | None = None) -> dict[Any, Any]:
        desk = new_desk(desk, request, profile)
        if isinstance(desk.session, CampaignSession):  # a filter is the queue: out of it
            desk.session = ReviewSession(store, desk.who)
        try:
            desk.session.set_filter(rr.queue_filter(
                status_v, verdict_v, run_v, source_v, kind_v, tools_v, human_v, error_v,
                search_v, sort_v, seed_v))
        except auth.USER_ERRORS as e:
            return refused(desk, e)
        return show(desk)

    def on_campaign(desk: Desk | None, name: str | None, request: gr.Request,
                    profile: gr.OAuthProfile | None = None) -> dict[Any, Any]:
        """Next in campaign: its hand-out gives the item, decisions are votes in it."""
        desk = new_desk(desk, request, profile)
        try:
            if not name or name == NO_CAMPAIGN:
                desk.session = ReviewSession(store, desk.who)
                desk.session.set_filter(rr.queue_filter())
                return show(desk, note="back to the queue")
            if not (isinstance(desk.session, CampaignSession) and desk.session.campaign == name):
                desk.session = CampaignSession(store, desk.who, name)
            item = desk.session.pull()
        except auth.USER_ERRORS as e:
            return refused(desk, e)
        return show(desk, note=f"campaign {name}: " + (
            f"`{item.trajectory.id[:12]}` is yours for now" if item else
            "nothing left for you now (all done, or held by others)"))

    def on_open(desk: Desk | None, trajectory_id: str, request: gr.Request,
                profile: gr.OAuthProfile | None = None) -> dict[Any, Any]:
        desk = new_desk(desk, request, profile)
        if not (trajectory_id or "").strip():
            return refused(desk, ValueError("type a trajectory id first"))
        try:
            desk.session.open(trajectory_id.strip())
        except auth.USER_ERRORS as e:
            return refused(desk, e)
        return show(desk)

    def on_reload(desk: Desk | None, pos: int | None, request: gr.Request,
                  profile: gr.OAuthProfile | None = None) -> dict[Any, Any]:
        """The item again from the store; the editor keeps what was typed in it."""
        desk = new_desk(desk, request, profile)
        item = _item(desk)
        if item is None:
            return show(desk)
        desk.session.reload()
        out = show(desk, new_item=False, seg=pos, note="reloaded: the editor kept your text")
        return out

    # --- decisions -------------------------------------------------------------------------

    def on_decide(decision: str) -> Callable[..., dict[Any, Any]]:
        def handler(desk: Desk | None, score_v: Any, labels_v: Any, comment_v: str,
                    override_v: str, request: gr.Request,
                    profile: gr.OAuthProfile | None = None) -> dict[Any, Any]:
            desk = new_desk(desk, request, profile)
            item = _item(desk)
            if item is None:
                return refused(desk, ValueError("nothing on screen to decide on"))
            try:
                with desk.lock:
                    if _item(desk) is not item:
                        raise ValueError("the item changed on screen: look again, then decide")
                    desk.session.decide(
                        decision, score=review_api.score_value(score_v),
                        labels=review_api.label_names(labels_v), comment=comment_v or "",
                        expected_version=item.version,
                        override_reason=(override_v or "").strip() or None)
            except auth.USER_ERRORS as e:
                return refused(desk, e)
            return show(desk, note=f"{decision}: `{item.trajectory.id[:12]}` — the next one is "
                                   "on screen (z: undo)")

        return handler

    def on_undo(desk: Desk | None, request: gr.Request,
                profile: gr.OAuthProfile | None = None) -> dict[Any, Any]:
        desk = new_desk(desk, request, profile)
        try:
            with desk.lock:
                item = desk.session.undo()
        except auth.USER_ERRORS as e:
            return refused(desk, e)
        if item is None:
            return refused(desk, ValueError("nothing to undo"))
        return show(desk, note=f"undone: `{item.trajectory.id[:12]}` is back")

    # --- step labels -----------------------------------------------------------------------

    def on_label(value: int | None, first_error: bool = False) -> Callable[..., dict[Any, Any]]:
        def handler(desk: Desk | None, pos: int | None, request: gr.Request,
                    profile: gr.OAuthProfile | None = None) -> dict[Any, Any]:
            desk = new_desk(desk, request, profile)
            item = _item(desk)
            if item is None or pos is None:
                return refused(desk, ValueError("pick a segment first (j / k)"))
            tid, pos = item.trajectory.id, int(pos)
            try:
                if first_error:
                    step_labels.label_first_error(store, tid, desk.who, pos,
                                                  expected_version=item.version)
                else:
                    step_labels.label_steps(store, tid, desk.who, {pos: value},
                                            expected_version=item.version)
                desk.session.reload()
            except auth.USER_ERRORS as e:
                return refused(desk, e)
            n = len(item.trajectory.segments)
            said = ("first error" if first_error else rr.label_choice(value))
            return show(desk, new_item=False, seg=pos if first_error else min(pos + 1, n - 1),
                        note=f"#{pos}: {said}")

        return handler

    def on_step(delta: int) -> Callable[..., Any]:
        """j / k: the segment picker moves to the next / previous segment."""
        def handler(desk: Desk | None, pos: int | None) -> Any:
            item = desk and _item(desk)
            if item is None or not item.trajectory.segments:
                return gr.skip()
            n = len(item.trajectory.segments)
            if pos is None:
                return 0 if delta > 0 else n - 1
            return max(0, min(n - 1, int(pos) + delta))

        return handler

    def on_pick(desk: Desk | None, pos: int | None) -> Any:
        item = desk and _item(desk)
        if item is None or pos is None or int(pos) >= len(item.trajectory.segments):
            return ""
        return item.trajectory.segments[int(pos)].text

    # --- edits -----------------------------------------------------------------------------

    async def save(desk: Desk, make: Callable[[list[Segment]], list[Segment]], note: str,
                   seg: int | None) -> dict[Any, Any]:
        item = _item(desk)
        if item is None:
            return refused(desk, ValueError("nothing on screen to edit"))
        tid = item.trajectory.id
        try:
            segments = make(item.trajectory.segments)
            result = await edits.save_edit(store, await services.pool(), tid, segments,
                                           expected_version=item.version, editor=desk.who,
                                           note=note)
        except ConflictError as e:  # nothing typed is lost: the editor is left as it is
            return refused(desk, e, "**Not saved.** ")
        except auth.USER_ERRORS as e:
            return refused(desk, e)
        desk.session.reload()
        stale = len(result.stale)
        said = f"{note}: saved version {result.version}" + (
            "; 1 output no longer matches its code" if stale == 1 else
            f"; {stale} outputs no longer match their code" if stale else
            "; the outputs match their code" if result.reran else "")
        return show(desk, new_item=False, seg=seg, note=said)

    def editing(fn: Callable[..., Any]) -> Callable[..., Any]:
        """An edit button: ``fn(desk, segment, text)`` says how to change the segments."""
        async def handler(desk: Desk | None, pos: int | None, text: str, request: gr.Request,
                          profile: gr.OAuthProfile | None = None) -> dict[Any, Any]:
            desk = new_desk(desk, request, profile)
            if pos is None and fn is not take_fn:
                return refused(desk, ValueError("pick a segment first (j / k)"))
            try:
                make, note, seg = fn(desk, None if pos is None else int(pos), text or "")
            except auth.USER_ERRORS as e:
                return refused(desk, e)
            return await save(desk, make, note, seg)

        return handler

    def set_fn(desk: Desk, pos: int, text: str) -> tuple[Any, str, int]:
        return (lambda segs: edits.set_text(segs, pos, text)), f"edited #{pos}", pos

    def delete_fn(desk: Desk, pos: int, text: str) -> tuple[Any, str, int | None]:
        return (lambda segs: edits.delete_segment(segs, pos)), f"deleted #{pos}", None

    def hint_fn(desk: Desk, pos: int, text: str) -> tuple[Any, str, int]:
        if not text.strip():
            raise ValueError("type the hint first")
        return (lambda segs: edits.add_hint(segs, pos, text)), f"hint after #{pos}", pos + 1

    def take_fn(desk: Desk, pos: int | None, text: str) -> tuple[Any, str, None]:
        item = _item(desk)
        stale = [s for s in (item.stale if item else []) if pos is None or s.position == pos]
        if not stale:
            raise ValueError("no stale output to take" if pos is None else
                             f"#{pos} is not a stale output")

        def make(segs: list[Segment]) -> list[Segment]:
            for s in stale:
                segs = edits.take_fresh_output(segs, s)
            return segs

        where = ", ".join(f"#{s.position}" for s in stale)
        return make, f"took the new output of {where}", None

    # --- continue from here (the live tab) -------------------------------------------------

    def on_continue(desk: Desk | None, pos: int | None, text: str) -> dict[Any, Any]:
        item = desk and _item(desk)
        if item is None or pos is None:
            raise gr.Error("pick the segment to continue from first (j / k)")
        return {point_state: (item.trajectory.id, int(pos), text or ""),
                tabs: gr.Tabs(selected="live")}

    def on_send(desk: Desk | None, trajectory_id: str | None, request: gr.Request,
                profile: gr.OAuthProfile | None = None) -> dict[Any, Any]:
        """The live tab's "Review it": the trajectory on screen, opened here."""
        if not trajectory_id:
            raise gr.Error("run or open a trajectory first")
        out = first_load(desk, request, profile, trajectory_id)
        out[tabs] = gr.Tabs(selected="review")
        return out

    def on_guidelines(desk: Desk | None, text: str, request: gr.Request,
                      profile: gr.OAuthProfile | None = None) -> dict[Any, Any]:
        desk = new_desk(desk, request, profile)
        try:
            users.require(store, desk.who, "guidelines")
            guide.set_guidelines(store, text or "", by=desk.who)
        except auth.USER_ERRORS as e:
            return refused(desk, e)
        return {desk_state: desk, guide_md: guide.guidelines(store),
                message: "guidelines saved"}

    # --- wiring ----------------------------------------------------------------------------
    page: dict[str, Any] = {"api_name": False}
    filters = [f_status, f_verdict, f_run, f_source, f_kind, f_tools, f_human, f_error,
               f_search, f_sort, f_seed]
    apply_btn.click(on_filter, [desk_state, *filters], view, **page)
    f_search.submit(on_filter, [desk_state, *filters], view, **page)
    open_btn.click(on_open, [desk_state, open_box], view, **page)
    campaign_btn.click(on_campaign, [desk_state, f_campaign], view, **page)
    open_box.submit(on_open, [desk_state, open_box], view, **page)
    reload_btn.click(on_reload, [desk_state, seg_pick], view, **page)
    decide_inputs = [desk_state, score, label_box, comment, override]
    for btn, decision in ((accept_btn, "accepted"), (reject_btn, "rejected"),
                          (skip_btn, "skipped")):
        btn.click(on_decide(decision), decide_inputs, view, **page)
    undo_btn.click(on_undo, desk_state, view, **page)
    for btn, value in ((plus_btn, 1), (zero_btn, 0), (minus_btn, -1), (clear_btn, None)):
        btn.click(on_label(value), [desk_state, seg_pick], view, **page)
    first_btn.click(on_label(-1, first_error=True), [desk_state, seg_pick], view, **page)
    seg_next.click(on_step(1), [desk_state, seg_pick], seg_pick, **page)
    seg_prev.click(on_step(-1), [desk_state, seg_pick], seg_pick, **page)
    seg_pick.change(on_pick, [desk_state, seg_pick], editor, **page)
    edit_inputs = [desk_state, seg_pick, editor]
    save_btn.click(editing(set_fn), edit_inputs, view, **page)
    delete_btn.click(editing(delete_fn), edit_inputs, view, **page)
    hint_btn.click(editing(hint_fn), [desk_state, seg_pick, hint_box], view, **page)
    take_btn.click(editing(take_fn), [desk_state, stale_pick, editor], view, **page)
    take_all_btn.click(editing(take_fn), [desk_state, none, editor], view, **page)
    continue_btn.click(on_continue, [desk_state, seg_pick, editor], [point_state, tabs],
                       **page).success(live.branch, [studio_state, point_state, *live.settings],
                                       live.view, api_name=False, **live.generate)
    live.send_btn.click(on_send, [desk_state, live.current], [*view, tabs], **page)
    guide_btn.click(on_guidelines, [desk_state, guide_box], view, **page)
    link.change(None, link, None, js=LINK_JS, **page)

    review_api.build(services)
    return ReviewTab(desk=desk_state, view=view, load=first_load)
