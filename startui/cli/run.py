"""``python -m startui run`` (one question, streamed to a terminal) and ``serve`` (the web app)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from typing import Any, TextIO

from startui.cli.common import add_generation_args, backend_options, engine_config, policy
from startui.events import (
    Event,
    Notice,
    SegmentFinished,
    SegmentStarted,
    TextDelta,
    TrajectoryFinished,
)
from startui.infer.backends import BackendError, make_backend
from startui.infer.engine import Engine
from startui.trajectory import Problem, Trajectory

COLORS = {"think": "", "hint": "\033[1;33m", "code": "\033[36m", "output": "\033[32m",
          "error": "\033[31m", "answer": "\033[1;35m", "notice": "\033[2m", "reset": "\033[0m"}


class TerminalPrinter:
    """Streams a trajectory to a terminal, each segment kind in its own colour."""

    def __init__(self, out: TextIO = sys.stdout, color: bool | None = None) -> None:
        self.out = out
        self.color = out.isatty() if color is None else color
        self._streaming = ""  # the colour of the segment whose text is streaming

    def _write(self, text: str, color: str = "") -> None:
        code = COLORS[color] if self.color and color else ""
        self.out.write(f"{code}{text}{COLORS['reset']}" if code else text)
        self.out.flush()

    def __call__(self, event: Event) -> None:
        if isinstance(event, SegmentStarted):
            seg = event.segment
            self._streaming = seg.kind
            if seg.kind == "hint":
                who = "human" if seg.source == "human" else f"auto · {seg.meta.get('category')}"
                self._write(f"\n[hint: {who}] ", "hint")
                self._write(seg.text.strip() + "\n", "hint")
            elif seg.kind == "code":
                self._write("\n```python\n", "code")
            elif seg.kind == "output":
                color = "error" if seg.meta.get("error") else "output"
                self._write("```output\n" + seg.text + "\n```\n", color)
            elif seg.kind == "answer" and seg.text:
                self._write(seg.text, "answer")
        elif isinstance(event, TextDelta):
            self._write(event.text, self._streaming)
        elif isinstance(event, SegmentFinished) and event.segment.kind == "code":
            self._write("\n```\n", "code")
        elif isinstance(event, Notice):
            self._write(f"\n[{event.level}] {event.message}\n",
                        "error" if event.level == "error" else "notice")
        elif isinstance(event, TrajectoryFinished):
            traj = event.trajectory
            self._write(f"\n\n── {traj.status} · {traj.tool_calls} tool calls · {traj.hints} "
                        f"hints · {traj.tokens} tokens · id {traj.id}\n", "notice")
            if traj.answer is not None:
                self._write(f"Answer: {traj.answer}\n", "answer")


async def run_one(args: argparse.Namespace, question: str, subscribers: list[Any]) -> Trajectory:
    from startui.infer.kernels import KernelPool

    backend = make_backend(args.backend, args.model, **backend_options(args))
    try:
        async with KernelPool(size=1, timeout=args.timeout) as pool:
            engine = Engine(backend, pool, policy(args), engine_config(args))
            traj = await asyncio.to_thread(engine.new_trajectory, Problem(question=question))
            session = engine.start(traj)
            for s in subscribers:
                session.subscribe(s)
            loop = asyncio.get_running_loop()
            try:
                loop.add_signal_handler(signal.SIGINT, session.stop)
            except (NotImplementedError, RuntimeError):
                pass
            try:
                return await session.run()
            finally:
                loop.remove_signal_handler(signal.SIGINT)
    finally:
        await backend.close()


def cmd_run(args: argparse.Namespace) -> int:
    subscribers: list[Any] = []
    if args.json:
        subscribers.append(lambda e: print(json.dumps(e.to_dict()), flush=True))
    else:
        subscribers.append(TerminalPrinter(color=None if not args.no_color else False))
    store = None
    if not args.no_save:
        try:
            from startui.store import Recorder, Store

            store = Store(args.db)
            subscribers.append(Recorder(store))
        except Exception as e:  # noqa: BLE001 - saving is a convenience; say so and go on
            print(f"warning: not saving this run ({e})", file=sys.stderr)
    try:
        traj = asyncio.run(run_one(args, args.question, subscribers))
    except BackendError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if store is not None:
            store.close()  # waits for queued writes
    if args.json:
        print(json.dumps(traj.to_dict()), flush=True)
    return 0 if traj.status in ("finished", "cancelled") else 1


def cmd_serve(args: argparse.Namespace) -> int:
    from startui.ui.app import build_app, default_settings, launch

    defaults = default_settings()
    defaults.backend = args.backend or defaults.backend
    defaults.model = args.model or defaults.model
    defaults.base_url = args.base_url or defaults.base_url
    demo = build_app(db_url=args.db, concurrency=args.concurrency, defaults=defaults)
    launch(demo, warm=True, server_name=args.host, server_port=args.port, share=args.share)
    return 0


def register(sub: Any) -> None:
    run = sub.add_parser("run", help="solve one question, streaming the reasoning")
    run.add_argument("question")
    add_generation_args(run)
    run.add_argument("--json", action="store_true",
                     help="one JSON event per line; the last line is the whole trajectory")
    run.add_argument("--no-color", action="store_true")
    run.add_argument("--no-save", action="store_true", help="do not save to the store")
    run.add_argument("--db", default=None, help="database URL (env STARTUI_DB_URL)")
    run.set_defaults(func=cmd_run)
    serve = sub.add_parser("serve", help="the web app (same as python app.py)")
    serve.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT",
                                                                      "7860")))
    serve.add_argument("--db", default=None, help="database URL (env STARTUI_DB_URL)")
    serve.add_argument("--backend", default=None,
                       help="the settings panel's default backend (env STARTUI_BACKEND)")
    serve.add_argument("--model", default=None, help="its default model (env STARTUI_MODEL)")
    serve.add_argument("--base-url", default=None,
                       help="its default server URL (env STARTUI_BASE_URL)")
    serve.add_argument("--concurrency", type=int, default=None,
                       help="runs generating at once (default: 1 for a CPU backend, 8 for a "
                            "server; env STARTUI_CONCURRENCY)")
    serve.add_argument("--share", action="store_true", help="a public Gradio link")
    serve.set_defaults(func=cmd_serve)
