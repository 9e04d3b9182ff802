"""Trajectory → Chatbot messages, without a browser."""

from __future__ import annotations

import base64
import io

import gradio as gr
from PIL import Image

from startui.trajectory import Problem, Segment, Trajectory
from startui.ui import render
from startui.ui.studio import Timing


def png_b64() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (255, 0, 0)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def traj(*segments: Segment) -> Trajectory:
    return Trajectory(problem=Problem("What is 6*7?"), prompt="P", segments=list(segments))


def test_thinking_is_a_collapsible_block_with_a_running_timer():
    live = Segment("think", "Let me see", closed=False)
    msgs = render.messages(traj(live), {0: Timing(started=10.0)}, now=12.7)
    assert msgs[0] == {"role": "user", "content": "What is 6*7?"}
    meta = msgs[1]["metadata"]
    assert meta["status"] == "pending" and meta["duration"] == 2.0  # whole seconds while live
    assert "Thinking" in meta["title"]
    done = Segment("think", "Let me see.")
    meta = render.messages(traj(done), {0: Timing(10.0, 14.0)}, now=99)[1]["metadata"]
    assert meta["status"] == "done" and meta["duration"] == 4.0


def test_a_blank_thought_between_cells_is_not_shown():
    msgs = render.messages(traj(Segment("code", "x = 1"), Segment("think", "\n\n"),
                                Segment("code", "print(x)")))
    assert [m["content"] for m in msgs[1:]] == ["```python\nx = 1\n```", "```python\nprint(x)\n```"]


def test_hints_say_who_inserted_them_and_why():
    auto = Segment("hint", "\n\nWait, I can use Python.\n", "auto",
                   {"category": "self-reflection", "round": 1})
    conj = Segment("hint", " maybe using python here is a good idea.\n", "auto",
                   {"category": "general", "trigger": "conjunction"})
    human = Segment("hint", "\n\nTry n = 3.\n\n", "human", {"category": "human"})
    a, c, h = (m["content"] for m in render.messages(traj(auto, conj, human))[1:])
    assert "automatic · self-reflection" in a and "round 1" in a and "> Wait, I can use" in a
    assert "automatic · general" in c and "conjunction" in c
    assert "from a person" in h and "> Try n = 3." in h
    assert "metadata" not in render.messages(traj(human))[1]  # a hint is never folded away


def test_code_streams_append_only_and_output_errors_stand_out():
    code = Segment("code", "print(1/0", closed=False)
    before = render.messages(traj(code))
    code.text += ")"
    code.closed = True
    after = render.messages(traj(code))
    assert after[1]["content"].startswith(before[1]["content"])  # only grew
    assert after[1]["content"] == "```python\nprint(1/0)\n```"
    out = Segment("output", "ZeroDivisionError: division by zero", "kernel",
                  {"error": "ZeroDivisionError"})
    msg = render.messages(traj(code, out))[2]["content"]
    assert msg.startswith("**⚠️ ZeroDivisionError**") and "division by zero" in msg


def test_images_and_plotly_figures_go_inline():
    fig = {"data": [{"type": "bar", "x": [1, 2], "y": [3, 4]}], "layout": {}}
    out = Segment("output", "[image: 1 figure shown to the user]", "kernel",
                  {"images": [png_b64()], "plotly": [fig]})
    msgs = render.messages(traj(out))
    text, image, plot = msgs[1:]
    assert "figure" in text["content"]
    path = image["content"]["path"]
    assert path.endswith(".png") and open(path, "rb").read(4) == b"\x89PNG"
    assert render.messages(traj(out))[2]["content"]["path"] == path  # stable across renders
    assert isinstance(plot["content"], gr.Plot)


def test_the_final_answer_stands_out_once_complete():
    ans = Segment("answer", "So it is \\boxed{42}.", meta={"boxed": "42"}, closed=False)
    assert "Final answer" not in render.messages(traj(ans))[1]["content"]
    ans.closed = True
    assert render.messages(traj(ans))[1]["content"].endswith("### ✅ Final answer: $42$")


def test_a_growing_trajectory_only_appends():
    """Every update of a live run keeps the earlier messages as they were."""
    segs = [Segment("think", "Compute.", closed=True), Segment("code", "x = 1", closed=True),
            Segment("output", "(no output)", "kernel"), Segment("think", "So", closed=False)]
    first = render.messages(traj(*segs))
    segs[-1].text += " x is 1."
    second = render.messages(traj(*segs))
    assert second[:-1] == first[:-1]
    assert second[-1]["content"].startswith(first[-1]["content"])


def test_status_and_rewind_choices():
    t = traj(Segment("think", "A " * 40), Segment("code", "print(2)"))
    t.status, t.tokens = "cancelled", 12
    line = render.status_line(t, running=False)
    assert "stopped" in line and "12 tokens" in line and "1 tool calls" in line
    t.status, t.error = "error", "llama.cpp: server down"
    assert "server down" in render.status_line(t, running=False)
    choices = render.segment_choices(t)
    assert [i for _, i in choices] == [0, 1] and choices[1][0].startswith("1 · code")
