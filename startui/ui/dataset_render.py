"""The Dataset tab's text, tables and HTML, as pure functions (no Gradio): a selection report
with what each filter dropped, the batch's progress bar, a campaign's progress and agreement, an
adjudication's reviews side by side, the users. Everything from the store is escaped here."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from startui.review.agreement import AgreementReport, Measure
from startui.rft.generate import clock
from startui.rft.select import DATASET_NAMES, SelectionReport
from startui.ui import review_render as rr

NO_CAMPAIGN = "(no campaign)"
DECISION_MARKS = {"accepted": "✓ accepted", "rejected": "✗ rejected", "skipped": "↷ skipped",
                  "needs_review": "? needs review"}


def _md(text: Any) -> str:
    """Store text in a markdown table cell: escaped, one line."""
    s = html.escape(str(text)).replace("|", "&#124;").replace("\n", " ")
    return s.replace("*", "&#42;").replace("_", "&#95;").replace("`", "&#96;")


# --- choices ---------------------------------------------------------------------------------

def run_choices(store: Any) -> list[tuple[str, str]]:
    """(label, run id) of every run, newest first: the name and how many trajectories."""
    out = []
    for r in store.list_runs():
        name = r.get("name") or r["id"]
        out.append((f"{name} ({r.get('trajectories', 0)})", r["id"]))
    return out


def campaign_choices(store: Any, reviewer: str | None = None, *, open_only: bool = False,
                     ) -> list[tuple[str, str]]:
    """(label, name) of the campaigns (``reviewer``: only those naming them as a reviewer)."""
    out = []
    for c in store.list_campaigns():
        if reviewer is not None and reviewer not in c.reviewers:
            continue
        if open_only and c.status != "open":
            continue
        closed = "" if c.status == "open" else f", {c.status}"
        out.append((f"{c.name} ({c.items} items, overlap {c.overlap}{closed})", c.name))
    return out


def source_choices(sources: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    out = [("every stored problem", "any")]
    for s in sources:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(s["by_kind"].items()))
        out.append((f"{s['source']} ({s['problems']}: {kinds})", s["source"]))
    return out


# --- export ----------------------------------------------------------------------------------

def selection_markdown(report: SelectionReport, manifest: Mapping[str, Any] | None = None,
                       ) -> str:
    """Counts, and where every trajectory that is not in the dataset went (one reason each)."""
    name = DATASET_NAMES.get(report.dataset, report.dataset)
    lines = [f"### {name}: {report.selected} of {report.considered} trajectories selected",
             f"{report.problems_selected} of {report.problems} problems · "
             f"{report.trajectories} trajectories in the runs"
             + (" · by mode: " + ", ".join(f"{_md(k)} {v}" for k, v in
                                           sorted(report.by_mode.items()))
                if report.by_mode else "")]
    if report.dropped:
        lines += ["", "| dropped because | trajectories |", "|---|---:|"]
        lines += [f"| {_md(reason)} | {n} |" for reason, n in
                  sorted(report.dropped.items(), key=lambda kv: (-kv[1], kv[0]))]
    else:
        lines.append("\nnothing dropped")
    extra = report.notes(_md)
    if extra:
        lines += [""] + [f"- {e}" for e in extra]
    if manifest is not None:
        files = ", ".join(f"`{f}`" for f in manifest.get("files", {})) or "no data file"
        lines += ["", f"**Exported {manifest['counts']['rows']} rows**: {files} and "
                      f"`manifest.json` · sha256 `{manifest['checksum']['value'][:16]}…`"]
    return "\n".join(lines)


# --- batch -----------------------------------------------------------------------------------

def batch_html(status: Mapping[str, Any]) -> str:
    """A progress bar with the counts, rate and ETA (what ``generate`` prints on a terminal)."""
    if not status.get("run"):
        return "<div id='batch-idle'>No batch started in this app yet.</div>"
    r = status.get("report") or {}
    done, todo = int(status.get("done") or 0), int(status.get("todo") or 0)
    frac = done / todo if todo else (1.0 if not status.get("running") else 0.0)
    rate = float(r.get("rate") or 0.0)
    eta = (todo - done) / rate if rate > 0 else None
    state = ("running" if status.get("running") else "failed" if status.get("error")
             else "stopped" if r.get("interrupted") else "finished")
    run = html.escape(str(status["run"]))
    counts = (f"finished {r.get('finished', 0)} · cancelled {r.get('cancelled', 0)} · "
              f"errors {r.get('errors', 0)} · already done {r.get('skipped', 0)}")
    scored = int(r.get("correct", 0)) + int(r.get("wrong", 0))
    if scored:
        counts += f" · correct {r.get('correct', 0)}/{scored}"
    bar = (f"<div style='background:var(--block-background-fill,#eee);border:1px solid "
           f"var(--border-color-primary,#ccc);border-radius:6px;height:18px;overflow:hidden'>"
           f"<div id='batch-bar' style='width:{100 * frac:.1f}%;height:100%;"
           f"background:var(--color-accent,#6366f1)'></div></div>")
    note = ""
    if status.get("error"):
        note = f"<div>⚠️ {html.escape(str(status['error']))}</div>"
    elif state == "stopped":
        note = "<div>Stopped: <b>Resume</b> finishes it (finished work is skipped).</div>"
    msgs = r.get("error_messages") or []
    if msgs:
        note += "".join(f"<div>⚠️ {html.escape(str(m))}</div>" for m in msgs[:3])
    return (f"<div id='batch-progress' data-state='{state}'><b>{run}</b>: {state} · "
            f"{done}/{todo} ({100 * frac:.0f}%) · {rate:.2f}/s · ETA {clock(eta)}"
            f"{bar}<small>{counts}</small>{note}</div>")


# --- campaigns -------------------------------------------------------------------------------

def campaign_markdown(campaign: Any, progress: Any) -> str:
    """A campaign's settings and progress, per reviewer too."""
    p = progress
    head = (f"### {_md(campaign.name)} ({campaign.status})\n"
            f"overlap **{campaign.overlap}** · reviewers {_md(', '.join(campaign.reviewers))}"
            + (f" · adjudicator {_md(campaign.adjudicator)}" if campaign.adjudicator else "")
            + f" · by {_md(campaign.created_by)}\n\n"
            f"**{p.done} / {p.items}** done · {p.started} started · {p.untouched} untouched · "
            f"{p.leased} leased now · consensus {p.consensus} · **needs adjudication "
            f"{p.disputed}** · adjudicated {p.adjudicated}")
    if not p.reviewers:
        return head
    rows = ["", "| reviewer | decided | skipped | held | left |", "|---|---:|---:|---:|---:|"]
    for who, n in sorted(p.reviewers.items()):
        rows.append(f"| {_md(who)} | {n.get('decided', 0)} | {n.get('skipped', 0)} | "
                    f"{n.get('leased', 0)} | {n.get('remaining', 0)} |")
    return head + "\n".join(rows)


def _m(m: Measure) -> str:
    return f"{m.value:.3f}" if m.value is not None else "n/a"


def agreement_markdown(report: AgreementReport) -> str:
    """Overall and per pair: raw agreement, kappa and alpha on decisions, alpha on scores and
    step labels (n/a with the reason when a coefficient is undefined)."""
    head = (f"### Agreement: {report.items} items decided by two or more\n\n"
            "| | items | agreement | kappa | alpha (decisions) | alpha (scores, ordinal) | "
            f"alpha (step labels, {report.steps_level}) |\n|---|---:|---:|---:|---:|---:|---:|\n"
            f"| **overall** | {report.items} | {_m(report.agreement)} | {_m(report.kappa)} | "
            f"{_m(report.alpha)} | {_m(report.score_alpha)} | {_m(report.steps_alpha)} |")
    rows = [f"| {_md(p.a)} / {_md(p.b)} | {p.items} | {_m(p.agreement)} | {_m(p.kappa)} | "
            f"{_m(p.alpha)} | {_m(p.score_alpha)} | {_m(p.steps_alpha)} |"
            for p in report.pairs]
    why = [f"- {label}: {_md(m.reason)}" for label, m in
           (("kappa", report.kappa), ("alpha", report.alpha),
            ("score alpha", report.score_alpha), ("step-label alpha", report.steps_alpha))
           if m.value is None and m.reason]
    out = head + ("\n" + "\n".join(rows) if rows else "")
    return out + ("\n\n" + "\n".join(why) if why else "") + \
        "\n\nkappa overall is Light's (the mean of the pairs' Cohen's kappas)."


def dispute_choices(disputes: Sequence[Any]) -> list[tuple[str, str]]:
    out = []
    for d in disputes:
        votes = ", ".join(f"{who} {v}" for who, v in sorted(d.votes.items()))
        settled = f" → {d.adjudication}" if d.adjudication else ""
        out.append((f"{d.trajectory_id[:12]} · {votes}{settled}", d.trajectory_id))
    return out


def _labels_html(labels: Mapping[int, int]) -> str:
    if not labels:
        return "<em>none</em>"
    return " ".join(f"#{int(pos)} {rr.LABEL_MARKS.get(int(v), html.escape(str(v)))}"
                    for pos, v in sorted(labels.items()))


def adjudication_html(view: Any) -> str:
    """Every reviewer's word on one item, side by side: decision, score, labels, comment, step
    labels and their edits as diffs; the rule verdict and any adjudication above them."""
    verdict = rr.VERDICTS.get(view.correct, "➖ unscored")
    head = (f"<div id='adjudication'><p><b>{html.escape(view.trajectory_id)}</b> · version "
            f"{int(view.version)} · rule verdict {verdict} · <b>{html.escape(view.state)}</b>")
    if view.adjudication is not None:
        a = view.adjudication
        head += (f" · settled: <b>{html.escape(str(a.decision))}</b> by "
                 f"{html.escape(str(a.reviewer))}"
                 + (f" ({html.escape(a.notes)})" if a.notes else ""))
    cols = []
    for side in view.sides:
        edits = "".join(rr.diff_html(e.diffs, f"v{e.version}: {e.note or 'edit'}")
                        for e in side.edits) or "<p><em>no edits</em></p>"
        score = "—" if side.score is None else f"{side.score:g}"
        cols.append(
            "<div class='adjudication-side' style='flex:1;min-width:240px;border:1px solid "
            "var(--border-color-primary,#ccc);border-radius:6px;padding:6px 10px'>"
            f"<h4>{html.escape(side.reviewer)}</h4>"
            f"<p><b>{html.escape(DECISION_MARKS.get(side.decision or '', str(side.decision)))}"
            f"</b> · score {score} · on version {side.version}</p>"
            f"<p>labels: {html.escape(', '.join(side.labels)) or '<em>none</em>'}</p>"
            f"<p>comment: {html.escape(side.comment) or '<em>none</em>'}</p>"
            f"<p>step labels: {_labels_html(side.step_labels)}</p>{edits}</div>")
    body = "".join(cols) or "<p><em>no reviews yet</em></p>"
    return f"{head}</p><div style='display:flex;gap:10px;flex-wrap:wrap'>{body}</div></div>"


# --- users -----------------------------------------------------------------------------------

def users_markdown(people: Sequence[Any]) -> str:
    if not people:
        return ("No users yet: everyone reviews as their OS user. The first admin is added from "
                "a terminal: `python -m startui users add NAME --role admin`.")
    rows = ["| user | role | login |", "|---|---|---|"]
    rows += [f"| {_md(u.name)} | {u.role} | {'password' if u.has_password else 'Hugging Face'} |"
             for u in people]
    return "\n".join(rows)
