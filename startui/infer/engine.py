"""Hint-infer: stream → detect terminators → run code → insert hints → resume.

The loop of the START paper. The model generates from the exact text prefix; generation is cut
at *terminators* — a closed python block (execute it, append its output), a model-written
output block (cut: the model must not invent outputs), the end of its reasoning (a hint round or
the end), a conjunction the policy picked (a hint), a person's hint (cut at the next token) — and
resumes from the new prefix. It emits events and knows nothing about terminals, web pages or
databases.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from startui.answers import extract_boxed
from startui.events import (
    Event,
    Notice,
    SegmentFinished,
    SegmentStarted,
    TextDelta,
    TrajectoryFinished,
    TrajectoryStarted,
)
from startui.infer.backends.base import Backend, BackendError, GenerationRequest
from startui.infer.hints import Hint, HintPolicy
from startui.trajectory import CODE_OPEN, FENCE, TOOL_LIMIT_ERROR, Problem, Segment, Trajectory

DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful assistant that solves problems by reasoning step by step. You can write "
    "Python code in ```python blocks; it is executed and its output is shown to you in an "
    "```output block. Put your final answer within \\boxed{}."
)

OUTPUT_OPEN_MARK = "```output"
_CODE_OPEN = re.compile(r"```(?:python3?|py)[ \t]*\n")
_CODE_CLOSE = re.compile(r"(?:^|\n)[ \t]*```")
_DUP_OPEN = re.compile(r"```(?:python3?|py)[ \t]*\n")
_HOLD_MARKERS = ("```python\n", "```python3\n", "```py\n", OUTPUT_OPEN_MARK)
_MARKER_SPAN = 48  # longer than any marker, the think-end tag and the leading blanks included

if TYPE_CHECKING:
    from startui.infer.kernels import ExecutionResult, Kernel, KernelPool

Subscriber = Callable[[Event], Any]


@dataclass
class EngineConfig:
    """Everything a run is made with, besides the backend and the hint policy."""

    max_tool_calls: int = 6
    max_tokens: int = 2048  # generated tokens across the whole trajectory
    temperature: float = 0.6
    top_p: float = 0.95
    seed: int | None = None
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    think_end: str | None = None  # "</think>" for thinking templates; None: end of reasoning = EOS
    kernel_timeout: float = 30.0
    replay_code: bool = True  # on resume, re-run earlier cells so the kernel state matches

    def settings(self) -> dict[str, Any]:
        return asdict(self)


class Engine:
    """Makes :class:`Session` s: one per trajectory, sharing a backend and a kernel pool."""

    def __init__(self, backend: Backend, kernels: KernelPool | None = None,
                 policy: HintPolicy | None = None, config: EngineConfig | None = None) -> None:
        self.backend = backend
        self.kernels = kernels
        self.policy = policy or HintPolicy()
        self.config = config or EngineConfig()

    def new_trajectory(self, problem: Problem | str, **settings: Any) -> Trajectory:
        if isinstance(problem, str):
            problem = Problem(question=problem)
        messages = []
        if self.config.system_prompt:
            messages.append({"role": "system", "content": self.config.system_prompt})
        messages.append({"role": "user", "content": problem.question})
        return Trajectory(problem=problem, prompt=self.backend.chat_prompt(messages),
                          settings=self.settings() | settings)

    def settings(self) -> dict[str, Any]:
        return {"backend": self.backend.name, "model": self.backend.model,
                "engine": self.config.settings(), "hints": self.policy.settings()}

    def start(self, trajectory: Trajectory | Problem | str) -> Session:
        if not isinstance(trajectory, Trajectory):
            trajectory = self.new_trajectory(trajectory)
        return Session(self, trajectory)

    async def run(self, problem: Trajectory | Problem | str,
                  subscribers: Sequence[Subscriber] = ()) -> Trajectory:
        session = self.start(problem)
        for s in subscribers:
            session.subscribe(s)
        return await session.run()


@dataclass
class _Stream:
    """The segment being generated: its full text and how much of it was already emitted."""

    index: int
    buf: str = ""
    emitted: int = 0
    scan_from: int = 0  # conjunctions before this offset were already decided
    started: bool = True  # SegmentStarted was emitted (think segments start on their first text)
    checked: int = 0  # terminators were searched up to here


@dataclass
class Session:
    """One trajectory being generated. ``events()`` drives it; ``insert_hint`` and ``stop`` steer
    it from the outside (from the same event loop)."""

    engine: Engine
    trajectory: Trajectory
    _subscribers: list[Subscriber] = field(default_factory=list)
    _queue: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)
    _human_hints: list[Hint] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    _kernel: Kernel | None = None
    _expecting = False  # counted in the pool's kernels-to-come (see _expect)
    _stopping: bool = False
    _finishing: bool = False
    _live: _Stream | None = None

    # -- steering -------------------------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> None:
        self._subscribers.append(callback)

    def insert_hint(self, text: str) -> Hint:
        """A person's hint: the stream is cut at the next token and the model resumes after it.
        During a running cell it goes in right after the cell's output."""
        if not text.strip():
            raise ValueError("a hint needs some text")
        hint = Hint.parse(text, category="human")
        self._human_hints.append(hint)
        return hint

    def stop(self) -> None:
        """Stop for real: the backend request is aborted and a running cell interrupted.
        Before the run starts it ends it at once; once the run is winding down it does nothing
        (the trajectory is being saved as it ended)."""
        if self._finishing:
            return
        self._stopping = True
        if self._task and not self._task.done():
            self._task.cancel()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # -- driving --------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[Event]:
        if self._task is None:
            self._task = asyncio.create_task(self._main())
        while (event := await self._queue.get()) is not None:
            yield event

    async def run(self) -> Trajectory:
        async for _ in self.events():
            pass
        return self.trajectory

    async def _emit(self, event: Event) -> None:
        for callback in self._subscribers:
            try:
                result = callback(event)
                if inspect.isawaitable(result):
                    await result
            except Exception as e:  # noqa: BLE001 - a failing subscriber must not kill the run
                self._queue.put_nowait(Notice(self.trajectory.id,
                                              f"{callback!r} failed: {type(e).__name__}: {e}",
                                              "error"))
        self._queue.put_nowait(event)

    # -- the loop -------------------------------------------------------------------------

    async def _main(self) -> None:
        traj = self.trajectory
        traj.status = "running"
        traj.error = None
        self._expect(+1)  # the pool boots a kernel for us before our first cell asks
        try:
            await self._emit(TrajectoryStarted(traj))
            if self._stopping:  # stopped before it started
                raise asyncio.CancelledError
            await self._resume_state()
            await self._loop()
            traj.status = "finished"
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
            traj.status = "cancelled"
            await self._close_open_segment()
        except BackendError as e:
            traj.status, traj.error = "error", str(e)
            await self._close_open_segment()
            await self._emit(Notice(traj.id, str(e), "error"))
        except Exception as e:  # noqa: BLE001 - a run must end with an event, whatever broke
            traj.status, traj.error = "error", f"{type(e).__name__}: {e}"
            await self._close_open_segment()
            await self._emit(Notice(traj.id, traj.error, "error"))
        finally:
            self._finishing = True  # from here on, stop() has nothing left to stop
            self._expect(-1)
            try:
                if self._kernel is not None and self.engine.kernels is not None:
                    kernel, self._kernel = self._kernel, None
                    with contextlib.suppress(Exception):
                        await asyncio.shield(self.engine.kernels.release(kernel))
                await self._emit(TrajectoryFinished(traj))
            finally:
                self._queue.put_nowait(None)  # the end of events(), whatever happened

    async def _resume_state(self) -> None:
        """Continue a stored trajectory: rebuild the kernel state, run a cell left unexecuted,
        reopen a cell that was cut off while the model wrote it (its text renders the same)."""
        segs = self.trajectory.segments
        if segs and segs[-1].meta.get("unfinished_code") and segs[-1].text.startswith(CODE_OPEN):
            last = segs[-1]
            last.kind, last.text, last.closed = "code", last.text[len(CODE_OPEN):], False
            del last.meta["unfinished_code"]
        if self.engine.config.replay_code and any(s.kind == "output" for s in segs):
            kernel = await self._get_kernel()
            for s in segs:
                if s.kind == "code" and s.closed:
                    await kernel.execute(s.text, timeout=self.engine.config.kernel_timeout)
        if segs and segs[-1].kind == "code" and segs[-1].closed:
            await self._execute(len(segs) - 1)

    async def _loop(self) -> None:
        cfg, policy, traj = self.engine.config, self.engine.policy, self.trajectory
        while True:
            if self._human_hints:
                await self._insert_hint(self._human_hints.pop(0), source="human")
                continue
            if traj.tokens >= cfg.max_tokens:
                await self._emit(Notice(traj.id, f"token budget of {cfg.max_tokens} reached",
                                        "warning"))
                return
            reason = await self._generate()
            if reason == "code":
                await self._execute(len(traj.segments) - 1)
            elif reason in ("eos", "think_end", "invented_output"):
                if reason == "invented_output":
                    await self._emit(Notice(traj.id, "the model wrote an output block itself; "
                                            "it was cut (outputs come from the kernel)"))
                if self._round_available():
                    rounds_done = self._rounds_done()
                    hint = policy.round_hint(rounds_done, traj.problem)
                    await self._insert_hint(hint, source="auto", lead="Wait, ",
                                            meta={"round": rounds_done + 1})
                else:
                    await self._split_answer()
                    return
            elif reason == "conjunction":
                hint = policy.conjunction_hint()
                await self._insert_hint(hint, source="auto", meta={"trigger": "conjunction"},
                                        lead=None)
            elif reason == "length":
                await self._emit(Notice(traj.id, f"token budget of {cfg.max_tokens} reached",
                                        "warning"))
                await self._split_answer()
                return
            elif reason == "answer_done":
                return
            # "human": loop around, the pending hint goes in first

    # -- generation -----------------------------------------------------------------------

    def _open(self) -> tuple[int, Segment]:
        """The segment generation continues: an open code or answer segment, or a new think one."""
        segs = self.trajectory.segments
        if segs and not segs[-1].closed:
            return len(segs) - 1, segs[-1]
        segs.append(Segment("think", "", "model", closed=False))  # started on its first text
        return len(segs) - 1, segs[-1]

    async def _generate(self) -> str:
        """One backend request, streamed into the open segment until a terminator or the end."""
        cfg, traj = self.engine.config, self.trajectory
        index, seg = self._open()
        st = _Stream(index, buf=seg.text, emitted=len(seg.text), scan_from=len(seg.text),
                     started=bool(seg.text) or seg.kind != "think")
        self._live = st
        # The end-of-thinking marker is found in the text, not passed as a stop string: servers
        # drop a matched stop string, and the marker must stay when the answer follows it.
        stops = [OUTPUT_OPEN_MARK]
        request = GenerationRequest(
            prompt=traj.text(), stop=stops, max_tokens=max(1, cfg.max_tokens - traj.tokens),
            temperature=cfg.temperature, top_p=cfg.top_p, seed=cfg.seed, key=traj.id)
        finish: str | None = None
        reason: str | None = None
        async with contextlib.aclosing(self.engine.backend.stream(request)) as stream:
            async for chunk in stream:
                traj.tokens += chunk.tokens
                st.buf += chunk.text
                reason = await self._scan(st)
                if reason:
                    break
                if self._human_hints and self._segment().kind != "code":
                    reason = "human"
                    break
                if finish := chunk.finish_reason:
                    break
        seg = self._segment()
        if reason is None:  # the stream ended without a terminator in the text
            if seg.kind == "code" and finish == "stop":
                reason = "code"  # a server-side stop string swallowed the closing fence
            elif seg.kind == "answer":
                reason = "answer_done"
            else:
                reason = "length" if finish == "length" else "eos"
        await self._flush(st, final=True)
        self._live = None
        if seg.kind == "code" and reason != "code":
            _unfinished_code(seg)  # cut off mid-code: kept as text, never run
        if seg.kind == "answer":
            seg.meta["boxed"] = extract_boxed(seg.text)
        if seg.kind == "think" and not seg.text:
            self.trajectory.segments.pop()  # nothing was written: no segment
        else:
            await self._finish_segment(st.index)
        return reason

    def _segment(self) -> Segment:
        return self.trajectory.segments[-1]

    async def _scan(self, st: _Stream) -> str | None:
        """Look for a terminator in the streamed text; switch think → code at an opening fence.
        Returns the reason to cut, or None to keep streaming."""
        seg = self._segment()
        if seg.kind == "code":
            since = max(0, st.checked - _MARKER_SPAN)
            st.checked = len(st.buf)
            m = _CODE_CLOSE.search(st.buf, since)
            if m and m.start() == 0 and m.group().startswith(FENCE):
                dup = _DUP_OPEN.match(st.buf)
                if dup:  # the model repeated the opening fence the hint already wrote
                    st.buf = st.buf[dup.end():]
                    return await self._scan(st)
                if any(o.startswith(st.buf) for o in ("```python\n", "```python3\n", "```py\n")):
                    return None  # could still become a repeated opening fence
            if m:
                st.buf = st.buf[: m.start()]
                return "code"
            await self._flush(st)
            return None
        # think or answer text
        cfg = self.engine.config
        found: list[tuple[int, int, str]] = []  # (start, end, reason)
        if seg.kind == "think":
            # markers are searched only where new text could complete one: O(1) per token
            since = max(0, st.checked - _MARKER_SPAN - len(cfg.think_end or ""))
            st.checked = len(st.buf)
            if m := _CODE_OPEN.search(st.buf, since):
                found.append((m.start(), m.end(), "open_code"))
            if (i := st.buf.find(OUTPUT_OPEN_MARK, since)) >= 0:
                found.append((i, len(st.buf), "invented_output"))
            if cfg.think_end and (i := st.buf.find(cfg.think_end, since)) >= 0:
                found.append((i, i + len(cfg.think_end), "think_end"))
            if (c := self._conjunction(st)) is not None:
                found.append((c, c, "conjunction"))
        if not found:
            await self._flush(st)
            return None
        start, end, reason = min(found)
        if reason == "open_code":
            return await self._switch(st, start, end, "code")
        if reason == "think_end":
            if not self._round_available():  # the marker stays; the answer follows in-stream
                return await self._switch(st, end, end, "answer")
            st.buf = st.buf[:start]  # the stop is dropped for a hint round
        else:
            st.buf = st.buf[:start] if reason == "invented_output" else st.buf[:end]
        return reason

    async def _switch(self, st: _Stream, cut: int, resume: int, kind: str) -> str | None:
        """Close the think segment at ``cut`` and go on streaming into a new ``kind`` segment
        with the text from ``resume`` on: a code block or the answer opened mid-stream."""
        seg, rest = self._segment(), st.buf[resume:]
        st.buf = st.buf[:cut]
        await self._flush(st, final=True)
        seg.closed = True
        if seg.text:
            await self._finish_segment(st.index)
        else:  # nothing before the switch: no think segment
            self.trajectory.segments.pop()
        new = Segment(kind, "", "model", closed=False)  # type: ignore[arg-type]
        self.trajectory.segments.append(new)
        st.index, st.buf, st.emitted, st.scan_from = len(self.trajectory.segments) - 1, rest, 0, 0
        st.checked = 0
        st.started = True
        await self._emit(SegmentStarted(self.trajectory.id, st.index, new))
        return await self._scan(st)

    def _rounds_done(self) -> int:
        return sum(1 for s in self.trajectory.segments if s.meta.get("round") is not None)

    def _round_available(self) -> bool:
        """Another end-of-reasoning hint round is due (and tool calls are left for it)."""
        return (self._rounds_done() < self.engine.policy.rounds
                and self.trajectory.tool_calls < self.engine.config.max_tool_calls)

    def _conjunction(self, st: _Stream) -> int | None:
        """Offset right after a paragraph-opening conjunction the policy picked, if any."""
        policy = self.engine.policy
        out_of_calls = self.trajectory.tool_calls >= self.engine.config.max_tool_calls
        if policy.conjunction_p <= 0 or out_of_calls:
            return None
        words = "|".join(re.escape(w) for w in policy.conjunctions)
        pattern = re.compile(rf"(?:^|\n)[ \t]*(?:{words})(,|(?=[^\w,]))")
        for m in pattern.finditer(st.buf, st.scan_from):
            st.scan_from = m.end()
            if m.start() == 0 and st.index > 0 and not self._at_line_start(st.index):
                continue
            if policy.insert_at_conjunction():
                return m.end()
        st.scan_from = max(st.scan_from, len(st.buf) - 32)
        return None

    def _at_line_start(self, index: int) -> bool:
        before = "".join(s.render() for s in self.trajectory.segments[:index])
        return before == "" or before.endswith("\n")

    async def _flush(self, st: _Stream, final: bool = False) -> None:
        """Emit the new text of the open segment, holding back a tail that may be the start of a
        fence (so code never flashes up as thinking in a live view)."""
        seg = self._segment()
        upto = len(st.buf) if final else len(st.buf) - _holdback(st.buf, seg.kind,
                                                                    self.engine.config.think_end)
        if upto > st.emitted:
            if not st.started:
                st.started = True
                await self._emit(SegmentStarted(self.trajectory.id, st.index, seg))
            delta = st.buf[st.emitted:upto]
            st.emitted = upto
            seg.text = st.buf[:upto]  # what a live view shows is what was emitted
            await self._emit(TextDelta(self.trajectory.id, st.index, delta))
        if final:  # cut back or complete: the SegmentFinished that follows carries the truth
            seg.text = st.buf

    async def _finish_segment(self, index: int) -> None:
        seg = self.trajectory.segments[index]
        seg.closed = True
        await self._emit(SegmentFinished(self.trajectory.id, index, seg))

    async def _close_open_segment(self) -> None:
        """After a stop or an error: keep what was streamed of the segment in flight."""
        segs = self.trajectory.segments
        if self._live is not None and segs and not segs[-1].closed:
            segs[-1].text = self._live.buf
        self._live = None
        if segs and not segs[-1].closed:
            seg = segs[-1]
            if not seg.text and seg.kind != "code":
                segs.pop()
                return
            if seg.kind == "code":
                _unfinished_code(seg)
            await self._finish_segment(len(segs) - 1)

    # -- hints and answers ----------------------------------------------------------------

    async def _insert_hint(self, hint: Hint, *, source: str, lead: str | None = "",
                           meta: dict[str, Any] | None = None) -> None:
        traj = self.trajectory
        before = traj.completion()
        if lead is None:  # right after a conjunction the model wrote ("Wait" or "Wait,")
            text = (" " if before.endswith(",") else ", ") + hint.text
        else:
            sep = "" if not before or before.endswith("\n\n") else (
                "\n" if before.endswith("\n") else "\n\n")
            text = sep + lead + hint.text
        opens_code = hint.opens_code and traj.tool_calls < self.engine.config.max_tool_calls
        text += "\n" if opens_code else "\n\n"
        seg = Segment("hint", text, source, {"category": hint.category, **(meta or {})})  # type: ignore[arg-type]
        traj.segments.append(seg)
        index = len(traj.segments) - 1
        await self._emit(SegmentStarted(traj.id, index, seg))
        await self._finish_segment(index)
        if opens_code:
            code = Segment("code", "", "model", closed=False)
            traj.segments.append(code)
            await self._emit(SegmentStarted(traj.id, index + 1, code))

    async def _split_answer(self) -> None:
        """No thinking template: the final answer is the last model paragraph(s), from the one that
        holds the last ``\\boxed{}``. Splitting never changes the rendered text."""
        traj = self.trajectory
        if not traj.segments or traj.segments[-1].kind != "think":
            return
        last = traj.segments[-1]
        text = last.text
        i = text.rfind("\\boxed")
        anchor = i if i >= 0 else len(text.rstrip())
        para = text.rfind("\n\n", 0, anchor)
        start = 0 if para < 0 else para + 2
        answer = Segment("answer", text[start:], "model", {"boxed": extract_boxed(text[start:])})
        index = len(traj.segments) - 1
        if start == 0:
            traj.segments[index] = answer
        else:
            last.text = text[:start]
            await self._emit(SegmentFinished(traj.id, index, last))
            traj.segments.append(answer)
            index += 1
            await self._emit(SegmentStarted(traj.id, index, answer))
        await self._finish_segment(index)

    # -- tools ----------------------------------------------------------------------------

    async def _get_kernel(self) -> Kernel:
        if self._kernel is None:
            if self.engine.kernels is None:
                raise RuntimeError("this engine has no kernel pool, so it cannot run code")
            self._kernel = await self.engine.kernels.acquire(on_wait=self._busy)
            self._expect(-1)
        return self._kernel

    def _expect(self, n: int) -> None:
        """Tell the pool about a trajectory in flight without a kernel (+1 when it starts;
        -1 once it has one, or at its end if it never took one)."""
        if n > 0:
            self._expecting = True
        elif not self._expecting:
            return
        else:
            self._expecting = False
        expect = getattr(self.engine.kernels, "expect", None)
        if expect is not None:
            expect(n)

    async def _busy(self, ahead: int) -> None:
        await self._emit(Notice(self.trajectory.id, f"busy — {ahead} ahead of you: the code "
                                "runs as soon as a kernel is free", "warning"))

    async def _execute(self, code_index: int) -> None:
        traj, cfg = self.trajectory, self.engine.config
        code = traj.segments[code_index]
        if traj.tool_calls > cfg.max_tool_calls:
            text = (f"Tool call limit reached ({cfg.max_tool_calls} of {cfg.max_tool_calls} "
                    "used): this code was not run. Finish without running more code.")
            out = Segment("output", text, "kernel", {"error": TOOL_LIMIT_ERROR})
            await self._emit(Notice(traj.id, "tool-call cap reached", "warning"))
        else:
            kernel = await self._get_kernel()
            started = time.perf_counter()
            result = await kernel.execute(code.text, timeout=cfg.kernel_timeout)
            out = output_segment(result, time.perf_counter() - started)
            if result.error in ("Timeout", "KernelDied"):
                # the kernel's own line (timeout, death) comes last, after any partial output
                await self._emit(Notice(traj.id, result.text.splitlines()[-1] if result.text
                                        else result.error, "warning"))
        traj.segments.append(out)
        index = len(traj.segments) - 1
        await self._emit(SegmentStarted(traj.id, index, out))
        await self._finish_segment(index)


def output_segment(result: ExecutionResult, duration: float | None = None) -> Segment:
    """The ```output segment a cell's result becomes: what the model reads, the same for the
    engine and for a reviewer's re-run of edited code."""
    meta = result.meta()
    if duration is not None:
        meta.setdefault("duration", duration)
    return Segment("output", result.text.rstrip("\n") or "(no output)", "kernel", meta)


def _unfinished_code(seg: Segment) -> None:
    """Code cut off before its closing fence stays as text (same rendering), never executed."""
    seg.kind, seg.text, seg.closed = "think", CODE_OPEN + seg.text, True
    seg.meta["unfinished_code"] = True


def _holdback(buf: str, kind: str, think_end: str | None) -> int:
    """Length of the tail of ``buf`` that could be the start of a marker still being streamed."""
    markers: tuple[str, ...] = ("\n```",) if kind == "code" else _HOLD_MARKERS + (
        (think_end,) if think_end else ())
    tail = buf[-_MARKER_SPAN:]
    best = 0
    for marker in markers:
        if marker[0] not in tail:
            continue
        for k in range(min(len(marker), len(buf)), best, -1):
            if buf.endswith(marker[:k]):
                best = k
                break
    return best
