"""The app as its own process, with a slow scripted model: what the crash test kills and restarts.

``python -m startui serve --backend scripted --model SCRIPT.json`` replays a script at full speed
(the CLI has no per-piece delay), so a run would end before it could be killed mid-stream. This
builds the same app (``startui.ui.app``) around a :class:`ScriptedBackend` with a delay:

    python -m tests.faults.slow_app --port 7999 --db sqlite:///x.sqlite --delay 0.02

A new question streams :data:`LONG` (``--words`` words, one piece each); a continued trajectory
(any prompt that does not end at the assistant's turn) gets a short final answer.
"""

from __future__ import annotations

import argparse

from startui.infer.backends.scripted import ScriptedBackend

FINISH = " So the answer is \\boxed{42}."


def long_text(words: int) -> str:
    return " ".join(f"w{i}" for i in range(words))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--delay", type=float, default=0.02)
    p.add_argument("--words", type=int, default=3000)
    args = p.parse_args(argv)

    from startui.ui.app import build_app, launch, open_store
    from startui.ui.studio import RunSettings, Services

    text = long_text(args.words)

    def respond(prompt: str) -> str:
        return text if prompt.endswith("<|im_start|>assistant\n") else FINISH

    backend = ScriptedBackend(respond=respond, delay=args.delay, model="slow")
    services = Services(open_store(args.db), pool_size=1, backend_factory=lambda s: backend)
    demo = build_app(services, defaults=RunSettings(backend="scripted", model="slow"))
    launch(demo, server_name="127.0.0.1", server_port=args.port, quiet=True)


if __name__ == "__main__":
    main()
