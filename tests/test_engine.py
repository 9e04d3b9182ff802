"""The Hint-infer loop, driven by the scripted backend against a real Jupyter kernel."""

from __future__ import annotations

import asyncio
import time

from startui.events import SegmentFinished, SegmentStarted, TextDelta, TrajectoryFinished
from startui.infer.hints import MATH_HINTS, ROUND_HINTS
from startui.trajectory import Trajectory


def kinds(traj: Trajectory) -> list[str]:
    return [s.kind for s in traj.segments]


async def test_code_runs_in_the_kernel_and_its_output_goes_back_in_the_papers_format(make_engine):
    engine = make_engine([
        "Let me compute it.\n```python\nx = 6 * 7\nprint(x)\n```\n```output\n41\n```\n",
        "The kernel says 42, so the answer is \\boxed{42}.",
    ])
    traj = await engine.run("What is 6*7?")
    assert traj.status == "finished"
    assert kinds(traj) == ["think", "code", "output", "answer"]
    code, output = traj.segments[1], traj.segments[2]
    assert code.text == "x = 6 * 7\nprint(x)"
    assert output.text == "42" and output.source == "kernel"
    assert "```python\nx = 6 * 7\nprint(x)\n```\n```output\n42\n```\n" in traj.completion()
    assert "41" not in traj.completion()  # the invented output after the block never got in
    second = engine.backend.requests[1]
    assert second.prompt == traj.prompt + "".join(s.render() for s in traj.segments[:3])
    assert traj.answer == "42"
    assert traj.segments[-1].meta["boxed"] == "42"


async def test_kernel_state_persists_across_cells_of_one_trajectory(make_engine):
    engine = make_engine([
        "```python\nsecret = 1234\n```\n",
        "Now use it.\n```python\nprint(secret + 1)\n```\n",
        "Done: \\boxed{1235}",
    ])
    traj = await engine.run("state?")
    outputs = [s.text for s in traj.segments if s.kind == "output"]
    assert outputs == ["(no output)", "1235"]


async def test_model_written_output_without_code_is_cut(make_engine):
    engine = make_engine(["Surely:\n```output\n99 bottles\n```\nSo 99."])
    traj = await engine.run("q")
    assert "99 bottles" not in traj.completion()
    assert traj.completion() == "Surely:\n"
    assert engine.backend.requests[0].stop[0] == "```output"
    # a backend that ignores stop strings is cut by the engine itself
    engine = make_engine(["Surely:\n```output\n99 bottles\n```\nSo 99."])
    engine.backend.stream_ignores_stop = True
    traj = await engine.run("q")
    assert traj.completion() == "Surely:\n"
    assert engine.backend.cancelled == 1


async def test_tool_call_cap_stops_running_code_and_tells_the_model(make_engine):
    engine = make_engine([
        "```python\nprint('first')\n```",
        "Again:\n```python\nprint('SHOULD_NOT_RUN')\n```",
        "OK, \\boxed{1}",
    ], max_tool_calls=1)
    traj = await engine.run("q")
    outputs = [s for s in traj.segments if s.kind == "output"]
    assert outputs[0].text == "first"
    assert "SHOULD_NOT_RUN" not in outputs[1].text
    assert outputs[1].meta["error"] == "ToolCallLimit"
    assert "limit" in outputs[1].text.lower()
    assert traj.status == "finished"


async def test_end_of_reasoning_rounds_insert_escalating_hints_that_open_code(make_engine):
    engine = make_engine([
        "I believe it is 5.",
        "print(2 + 3)\n```",
        "Confirmed, \\boxed{5}.",
        "```python\nprint(5)\n```\n",
        "Final: \\boxed{5}",
    ], rounds=2)
    traj = await engine.run("2+3?")
    hints = [s for s in traj.segments if s.kind == "hint"]
    assert [h.meta["round"] for h in hints] == [1, 2]
    assert all(h.source == "auto" for h in hints)
    assert hints[0].text == "\n\nWait, " + ROUND_HINTS[0].text + "\n"
    assert ROUND_HINTS[1].text in hints[1].text
    # the model resumed inside the python block the hint opened
    assert engine.backend.requests[1].prompt.endswith(ROUND_HINTS[0].text + "\n```python\n")
    assert [s.text for s in traj.segments if s.kind == "output"] == ["5", "5"]
    assert traj.answer == "5"
    assert len(engine.backend.requests) == 5  # and no third round


async def test_conjunction_hints_follow_wait_with_a_fixed_seed(make_engine):
    script = ["First idea: 3.\n\nWait, that ignores the carry.", "print(1 + 2)\n```", "\\boxed{3}"]
    engine = make_engine(list(script), conjunction_p=1.0, seed=7)
    traj = await engine.run("q")
    think, hint = traj.segments[0], traj.segments[1]
    assert think.text == "First idea: 3.\n\nWait,"
    assert hint.kind == "hint" and hint.meta["trigger"] == "conjunction"
    assert hint.meta["category"] in {h.category for h in MATH_HINTS}
    assert hint.text.startswith(" ")
    assert traj.segments[3].text == "3"
    # the same seed makes the same choices
    again = await make_engine(list(script), conjunction_p=1.0, seed=7).run("q")
    assert again.segments[1].text == hint.text
    # p = 0 never inserts
    none = await make_engine(list(script), conjunction_p=0.0).run("q")
    assert not any(s.kind == "hint" for s in none.segments)


async def test_human_hint_lands_exactly_where_the_stream_was_cut(make_engine):
    long = " ".join(f"step{i}" for i in range(400))
    engine = make_engine([long, "Following the hint: \\boxed{1}"], delay=0.005)
    session = engine.start("q")
    seen, sent = "", False
    async for event in session.events():
        if isinstance(event, TextDelta) and event.index == 0:
            seen += event.text
            if len(seen) > 60 and not sent:
                session.insert_hint("Try small cases first.")
                sent = True
    traj = session.trajectory
    assert traj.segments[0].text == seen  # nothing streamed after the cut was kept
    hint = traj.segments[1]
    assert hint.kind == "hint" and hint.source == "human"
    assert hint.text.strip() == "Try small cases first."
    assert engine.backend.cancelled == 1
    assert engine.backend.requests[1].prompt == traj.prompt + seen + hint.text
    assert traj.status == "finished" and traj.answer == "1"


async def test_human_hint_with_a_code_fence_opens_a_cell(make_engine):
    engine = make_engine(["Thinking " * 200, "print(7 * 6)\n```", "\\boxed{42}"], delay=0.002)
    session = engine.start("q")
    sent = False
    async for event in session.events():
        if isinstance(event, TextDelta) and not sent:
            session.insert_hint("Let me check with Python.\n```python")
            sent = True
    traj = session.trajectory
    assert kinds(traj)[1:4] == ["hint", "code", "output"]
    assert traj.segments[3].text == "42"


async def test_stop_during_generation_aborts_the_backend(make_engine):
    engine = make_engine([" ".join(["word"] * 2000)], delay=0.01)
    session = engine.start("q")
    started = time.perf_counter()
    async for event in session.events():
        if isinstance(event, TextDelta) and len(session.trajectory.segments[0].text) > 40:
            session.stop()
    assert time.perf_counter() - started < 3
    traj = session.trajectory
    assert traj.status == "cancelled"
    assert engine.backend.cancelled == 1
    assert traj.segments[0].text.startswith("word word")


async def test_stop_during_a_running_cell_interrupts_it(make_engine, pool):
    engine = make_engine(["```python\nimport time\ntime.sleep(60)\n```"])
    session = engine.start("q")
    stopped_at = None
    async for event in session.events():
        if isinstance(event, SegmentFinished) and event.segment.kind == "code":
            asyncio.get_running_loop().call_later(0.5, session.stop)
            stopped_at = time.perf_counter()
        if isinstance(event, TrajectoryFinished):
            break
    assert time.perf_counter() - stopped_at < 5
    assert session.trajectory.status == "cancelled"
    # the kernel went back to the pool usable: a new run executes code at once
    traj = await make_engine(["```python\nprint('alive')\n```", "\\boxed{0}"]).run("q")
    assert [s.text for s in traj.segments if s.kind == "output"] == ["alive"]


async def test_a_stopped_trajectory_continues_from_its_exact_text(make_engine):
    engine = make_engine(["```python\nbase = 40\n```\nNow wait", "\\boxed{x}"], delay=0.01)
    session = engine.start("q")
    async for event in session.events():
        if isinstance(event, SegmentStarted) and event.segment.kind == "output":
            session.stop()
    traj = session.trajectory
    assert traj.status == "cancelled"
    prefix = traj.text()
    resumed = make_engine(["I continue.\n```python\nprint(base + 2)\n```", "\\boxed{42}"])
    traj = await resumed.start(traj).run()
    assert resumed.backend.requests[0].prompt == prefix
    assert traj.status == "finished"
    # the earlier cell was replayed into the new kernel: `base` is still defined
    assert [s.text for s in traj.segments if s.kind == "output"][-1] == "42"


async def test_backend_dropping_mid_stream_is_an_error_that_keeps_the_text(make_engine):
    engine = make_engine(["one two three four five six"])
    engine.backend.fail_after = 3
    session = engine.start("q")
    notices = [e async for e in session.events() if e.type == "notice"]
    traj = session.trajectory
    assert traj.status == "error"
    assert "dropped" in traj.error
    assert traj.segments[0].text == "one two three"
    assert any(n.level == "error" for n in notices)


async def test_think_end_marker_starts_the_answer(make_engine):
    engine = make_engine([
        "<think>Hmm, 2 and 2.</think>",
        "print(2 + 2)\n```",
        "So four.</think>The answer is \\boxed{4}.",
    ], rounds=1, think_end="</think>")
    traj = await engine.run("2+2")
    assert kinds(traj) == ["think", "hint", "code", "output", "think", "answer"]
    assert "</think>" not in traj.segments[0].text  # the stop was dropped for the hint
    assert traj.segments[4].text.endswith("</think>")
    assert traj.segments[5].text == "The answer is \\boxed{4}."
    assert traj.answer == "4"


async def test_events_rebuild_the_same_trajectory(make_engine):
    """What a subscriber (a web page, the store) sees is the trajectory itself."""
    engine = make_engine(["Compute.\n```python\nprint(sum(range(10)))\n```", "\\boxed{45}"],
                         rounds=0)
    session = engine.start("q")
    final: dict[int, dict] = {}
    async for event in session.events():
        if isinstance(event, SegmentFinished):
            final[event.index] = event.segment.to_dict()
    traj = session.trajectory
    assert [final[i] for i in sorted(final)] == [s.to_dict() for s in traj.segments]
    assert Trajectory.from_dict(traj.to_dict()).text() == traj.text()


async def test_stop_before_the_start_or_while_winding_down_never_hangs(make_engine):
    session = make_engine(["never streamed"]).start("q")
    session.stop()
    traj = await asyncio.wait_for(session.run(), 5)
    assert traj.status == "cancelled" and traj.segments == []

    session = make_engine(["All done: \\boxed{1}"]).start("q")

    async def slow_save(event):
        if isinstance(event, TrajectoryFinished):
            session.stop()  # a Stop click that arrives while the run is being saved
            await asyncio.sleep(0.2)

    session.subscribe(slow_save)
    traj = await asyncio.wait_for(session.run(), 5)
    assert traj.status == "finished"


async def test_a_cell_cut_off_mid_code_is_reopened_on_continue(make_engine):
    engine = make_engine(["Compute.\n```python\nx = (6" + " +0" * 300], delay=0.005)
    session = engine.start("q")
    async for event in session.events():
        if isinstance(event, TextDelta) and event.index == 1 and "+0" in event.text:
            session.stop()
    traj = session.trajectory
    assert traj.segments[-1].meta.get("unfinished_code") and traj.tool_calls == 0
    prefix = traj.text()
    resumed = make_engine([") * 7\nprint(x)\n```", "\\boxed{42}"])
    traj = await resumed.start(traj).run()
    assert resumed.backend.requests[0].prompt == prefix  # the same text, now inside a cell
    code = next(s for s in traj.segments if s.kind == "code")
    assert code.text.startswith("x = (6 +0") and code.text.endswith(") * 7\nprint(x)")
    assert traj.status == "finished" and traj.segments[2].text == "42"
