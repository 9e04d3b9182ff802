"""Trajectory → Chatbot messages: small pure functions, tested without a browser.

Streaming stays append-only: every segment is its own message and a live segment's text only
grows, so Gradio sends the new characters, not the whole trajectory, on every update.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
import re
import tempfile
from pathlib import Path
from typing import Any

from startui.trajectory import Segment, Trajectory
from startui.ui.studio import Timing

IMAGE_DIR = Path(tempfile.gettempdir()) / "startui-images"
Message = dict[str, Any]


def _duration(timing: Timing | None, now: float | None) -> float | None:
    """Whole seconds while the block is open (so a streamed update does not resend a timer that
    changed by 0.05 s), tenths once it is done."""
    if timing is None:
        return None
    if timing.finished is not None:
        return round(max(0.0, timing.finished - timing.started), 1)
    return None if now is None else float(int(max(0.0, now - timing.started)))


# Code (fenced or inline) and math pass through as they are: Markdown shows them literally, and
# KaTeX needs its `<`. A fence still open at the end counts as code (it renders as code while it
# streams), so a streamed message stays append-only.
_VERBATIM = re.compile(r"(```.*?(?:```|\Z)|`[^`\n]*`|\$\$.*?\$\$|\$[^$\n]+\$|\\\(.*?\\\)|"
                       r"\\\[.*?\\\])", re.DOTALL)


def as_text(text: str) -> str:
    """Model (and visitor) text for the Markdown renderer: shown, never run or fetched. HTML is
    escaped (``<script>``, ``<img onerror=…>`` appear as written) and link and image syntax is
    broken with an entity for the ``(`` (``[x](javascript:…)``, ``![](https://tracker/…)``: no
    link, no request; a backslash would open LaTeX's ``\\(``), while
    Markdown emphasis, code and LaTeX still render."""
    parts = _VERBATIM.split(text)
    for i in range(0, len(parts), 2):  # the even parts lie outside code and math
        parts[i] = html.escape(parts[i], quote=False).replace("](", "]&#40;")
    return "".join(parts)


def think_message(seg: Segment, timing: Timing | None = None, now: float | None = None) -> Message:
    """A collapsible thinking block with a running timer while it streams."""
    done = seg.closed
    meta: dict[str, Any] = {"title": "💭 Thinking" if not done else "💭 Thought",
                            "status": "done" if done else "pending"}
    if (d := _duration(timing, now)) is not None:
        meta["duration"] = d
    if seg.meta.get("unfinished_code"):
        meta["title"] = "✂️ Unfinished code (not run)"
    return {"role": "assistant", "content": as_text(seg.text), "metadata": meta}


def hint_message(seg: Segment) -> Message:
    if seg.source == "human":
        label = "🧑 Hint · from a person"
    else:
        trigger = "end of reasoning" if seg.meta.get("round") else "after a conjunction"
        if seg.meta.get("round"):
            trigger += f", round {seg.meta['round']}"
        label = f"💡 Hint · automatic · {seg.meta.get('category', 'hint')} ({trigger})"
    quoted = "\n".join("> " + line for line in as_text(seg.text.strip()).splitlines())
    return {"role": "assistant", "content": f"**{label}**\n\n{quoted}"}


def code_message(seg: Segment) -> Message:
    fence = "```python\n" + seg.text + ("\n```" if seg.closed else "")
    return {"role": "assistant", "content": fence}


def output_messages(seg: Segment) -> list[Message]:
    """The cell's result: text (errors marked), then each image and plotly figure inline."""
    error = seg.meta.get("error")
    head = f"**⚠️ {error}**\n\n" if error else "**▶ Output**\n\n"
    if seg.meta.get("edited"):
        head = "**✏️ Output (edited by a person)**\n\n"
    out = [{"role": "assistant", "content": head + "```text\n" + seg.text + "\n```"}]
    for png in seg.meta.get("images") or []:
        out.append({"role": "assistant", "content": {"path": str(save_png(png)),
                                                      "mime_type": "image/png"}})
    for fig in seg.meta.get("plotly") or []:
        out.append({"role": "assistant", "content": plot_component(fig)})
    return out


def answer_message(seg: Segment) -> Message:
    text = as_text(seg.text)
    boxed = seg.meta.get("boxed")
    if seg.closed and boxed:
        text += f"\n\n---\n### ✅ Final answer: ${boxed}$"
    return {"role": "assistant", "content": text}


def messages(traj: Trajectory | None, timings: dict[int, Timing] | None = None,
             now: float | None = None, *, marks: dict[int, str] | None = None,
             ) -> list[Message]:
    """The chat of a trajectory. ``marks`` (segment index → a short tag such as ``#3 ✅``) go in
    front of that segment's first message: the review tab's step numbers and labels, on the same
    rendering the live tab streams (one renderer, not two)."""
    if traj is None:
        return []
    timings = timings or {}
    out: list[Message] = [{"role": "user", "content": as_text(traj.problem.question)}]
    for i, seg in enumerate(traj.segments):
        start = len(out)
        if seg.kind == "think":
            if seg.closed and not seg.text.strip() and not (marks and i in marks):
                continue  # a blank line between two cells is no thought worth a block
            out.append(think_message(seg, timings.get(i), now))
        elif seg.kind == "hint":
            out.append(hint_message(seg))
        elif seg.kind == "code":
            out.append(code_message(seg))
        elif seg.kind == "output":
            out.extend(output_messages(seg))
        elif seg.kind == "answer":
            out.append(answer_message(seg))
        if marks and i in marks and len(out) > start:
            out[start] = marked(out[start], marks[i])
    return out


def marked(message: Message, mark: str) -> Message:
    """``message`` with ``mark`` in front: in the title of a collapsible block, else as an inline
    code tag on the first line (a fenced block starts on the next one)."""
    meta = message.get("metadata")
    if meta and meta.get("title"):
        return {**message, "metadata": {**meta, "title": f"{mark} · {meta['title']}"}}
    content = message["content"]
    if not isinstance(content, str):
        return message  # an image or a figure: its text message carries the mark
    sep = "\n\n" if content.startswith("```") else " "
    return {**message, "content": f"`{mark}`{sep}{content}"}


def status_line(traj: Trajectory | None, running: bool) -> str:
    if traj is None:
        return "Type a problem (or pick an example) and press **Run**."
    state = "⏳ running" if running else {
        "finished": "✅ finished", "cancelled": "⏹ stopped", "error": "❌ error",
        "interrupted": "⚠️ interrupted", "running": "⏳ running"}.get(traj.status, traj.status)
    # the token count only once the run is over: live, it would resend the line every update
    parts = [f"**{state}**"] + ([] if running else [f"{traj.tokens} tokens"]) + [
        f"{traj.tool_calls} tool calls", f"{traj.hints} hints", f"id `{traj.id[:12]}`"]
    if parent := traj.settings.get("parent_id"):
        point = traj.settings.get("branch_point")
        parts.append(f"branch of `{str(parent)[:12]}` at segment {point}")
    line = " · ".join(parts)
    if traj.status == "error" and traj.error:
        line += f"\n\n❌ {traj.error}"
    return line


def segment_choices(traj: Trajectory | None) -> list[tuple[str, int]]:
    """(label, index) pairs for the rewind picker."""
    if traj is None:
        return []
    out = []
    for i, seg in enumerate(traj.segments):
        preview = " ".join(seg.text.split())[:48]
        out.append((f"{i} · {seg.kind} · {preview}", i))
    return out


def run_label(summary: Any, branch: bool = False) -> str:
    """One saved trajectory in a list: status, question, answer, short id (⑂ marks a branch)."""
    q = " ".join(summary.question.split())[:60]
    answer = f" → {summary.answer}" if summary.answer else ""
    mark = "⑂ " if branch and summary.parent_id else ""
    return f"{mark}{summary.status} · {q}{answer} · {summary.id[:8]}"


@functools.lru_cache(maxsize=512)
def save_png(b64: str) -> Path:
    """Kernel images go to files once (content-addressed), so re-renders send the same URL and
    a streamed update neither hashes nor touches the file again."""
    IMAGE_DIR.mkdir(parents=True, exist_ok=True)
    path = IMAGE_DIR / (hashlib.sha1(b64.encode()).hexdigest()[:20] + ".png")
    if not path.exists():
        path.write_bytes(base64.b64decode(b64))
    return path


def plot_component(fig: dict[str, Any]) -> Any:
    import gradio as gr
    import plotly.io as pio

    return gr.Plot(value=pio.from_json(json.dumps(fig)))
