"""What the fault tests share: a scripted "model" that writes whatever cells a test puts in its
question, an app launched in this process with a fake secret in its environment, and the checks
every fault ends with (the app still answers, nothing stored was lost, no secret got out).

The app under test is this very process: a kernel that kills its parent kills pytest.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from startui.infer.backends.base import Chunk, GenerationRequest, chatml
from startui.infer.backends.scripted import ScriptedBackend

ROOT = Path(__file__).resolve().parents[2]
SECRET_VAR = "STARTUI_TEST_SECRET"
SECRET = "fault-suite-secret-6b1f0c9e2d"  # only in the app's environment, never in the store
ANSWER = "All done: \\boxed{1}."
DROP_AFTER = 25  # pieces a dropping stream sends before the backend "dies"
DROP_TEXT = " ".join(f"word{i}" for i in range(400))
CELL = re.compile(r"<cell>\n(.*?)\n</cell>", re.S)


SAY = re.compile(r"<say>([0-9a-f]*)</say>")
WORDS = re.compile(r"<words>(\d+)</words>")


def question(*cells: str, tag: str = "", say: str = "", words: int = 0) -> str:
    """A problem whose scripted answer writes ``cells`` one after the other, then answers; with
    ``say``, the model also writes that text in its thinking and in its answer (it travels hex
    encoded, so the question itself shows no markup); ``words`` streams that many words of
    thinking before the answer."""
    return (f"Fault test {tag}".strip() + "\n"
            + "".join(f"<cell>\n{c}\n</cell>\n" for c in cells)
            + (f"<say>{say.encode().hex()}</say>\n" if say else "")
            + (f"<words>{words}</words>\n" if words else ""))


def _question_of(prompt: str) -> str:
    return prompt.split("<|im_start|>user\n", 1)[-1].split("<|im_end|>", 1)[0]


def respond(prompt: str) -> str:
    """Stateless: the next cell of the question (counted by the outputs so far), then the answer.
    A hint that opened a cell gets a harmless one."""
    if prompt.endswith("```python\n"):
        return "print('hinted')\n```\n"
    q = _question_of(prompt)
    cells = CELL.findall(q)
    done = prompt.count("```output\n")
    said = bytes.fromhex(m.group(1)).decode() if (m := SAY.search(q)) else ""
    say = f"Thinking about {said} here. " if said else ""
    if done < len(cells):
        return f"{say}Step {done + 1}: let me run this.\n\n```python\n{cells[done]}\n```\n"
    if said:
        return f"{say}\n\nThe answer, with {said} in it: \\boxed{{1}}."
    if m := WORDS.search(q):
        return " ".join(f"w{i}" for i in range(int(m.group(1)))) + "\n\n" + ANSWER
    return ANSWER


class FaultModel:
    """A backend for the fault apps: the question says what the "model" does. ``<drop>`` in it
    makes a :class:`ScriptedBackend` with ``fail_after`` raise BackendError mid-stream; anything
    else replays :func:`respond` (with ``delay`` seconds per piece)."""

    name = "scripted"

    def __init__(self, delay: float = 0.002, model: str = "faults") -> None:
        self.model = model
        self.delay = delay

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        return chatml(messages)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        if "<drop>" in _question_of(request.prompt):
            inner = ScriptedBackend(respond=lambda p: DROP_TEXT, delay=self.delay,
                                    fail_after=DROP_AFTER)
        else:
            inner = ScriptedBackend(respond=respond, delay=self.delay)
        async for chunk in inner.stream(request):
            yield chunk

    async def close(self) -> None:
        return None


@dataclass
class LaunchedApp:
    url: str
    port: int
    db: Path
    services: Any
    demo: Any
    visitor: Any  # the gradio_client that runs the faults
    other: Any  # a second visitor, who must go on being served
    baseline: str | None = None  # a stored run the module's faults must leave intact

    @property
    def store(self) -> Any:
        return self.services.store

    def close(self) -> None:
        self.demo.close()
        os.environ.pop(SECRET_VAR, None)


def launch_app(db: Path, *, delay: float = 0.002, concurrency: int | None = None,
               pool_size: int = 1) -> LaunchedApp:
    """The app in this process, on a loopback port, with the fault model and a fake secret in
    its environment (set before the kernels' pool exists)."""
    from gradio_client import Client

    from startui.ui.app import build_app, launch, open_store
    from startui.ui.studio import RunSettings, Services

    os.environ[SECRET_VAR] = SECRET
    backend = FaultModel(delay)
    services = Services(open_store(f"sqlite:///{db}"), pool_size=pool_size,
                        backend_factory=lambda settings: backend)
    demo = build_app(services, concurrency=concurrency,
                     defaults=RunSettings(backend="scripted", model="faults"))
    _, url, _ = launch(demo, prevent_thread_lock=True, quiet=True, server_name="127.0.0.1")
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    return LaunchedApp(url=url, port=port, db=db, services=services, demo=demo,
                       visitor=Client(url, verbose=False), other=Client(url, verbose=False))


# -- the API's settings, positionally: backend, model, base URL, temperature, max tokens, hint
# rounds, conjunction p, categories, max tool calls, kernel timeout (s), seed
def settings(timeout: float = 10, max_tokens: int = 4096) -> tuple[Any, ...]:
    return ("scripted", "faults", "", 0.6, max_tokens, 0, 0.0, [], 6, timeout, -1)


def texts(chat: list[dict]) -> list[str]:
    out = []
    for m in chat:
        content = m["content"]
        parts = content if isinstance(content, list) else [content]
        out.append(" ".join(p.get("text", "") if isinstance(p, dict) else str(p)
                            for p in parts))
    return out


def short_id(status: str) -> str:
    m = re.search(r"id `?([0-9a-f]{12})", status)
    assert m, f"no trajectory id in the status line: {status!r}"
    return m.group(1)


def stored_id(store: Any, status: str, timeout: float = 10.0) -> str:
    """The full id of the trajectory a status line names, once it is in the store."""
    prefix = short_id(status)
    deadline = time.monotonic() + timeout
    while True:
        ids = [s.id for s in store.list_trajectories(limit=500) if s.id.startswith(prefix)]
        if ids or time.monotonic() > deadline:
            assert len(ids) == 1, f"trajectory {prefix} is not stored (found {ids})"
            return ids[0]
        time.sleep(0.1)


def snapshot(store: Any) -> dict[str, tuple[str, list[tuple[str, str, str]]]]:
    """Every stored trajectory: its status and (kind, source, text) of each segment."""
    out = {}
    for summary in store.list_trajectories(limit=10_000):
        traj = store.load_trajectory(summary.id)
        out[traj.id] = (traj.status, [(s.kind, s.source, s.text) for s in traj.segments])
    return out


def lost_items(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Ids of trajectories stored before that are gone or changed now."""
    return [tid for tid, value in before.items() if after.get(tid) != value]


def secret_leaks(store: Any, db: Path) -> list[str]:
    """Where the fake secret shows up: in a stored segment, or anywhere in the database files."""
    leaks = [f"{tid} segment {i}" for tid, (_, segs) in snapshot(store).items()
             for i, (_, _, text) in enumerate(segs) if SECRET in text]
    for path in (db, Path(f"{db}-wal")):
        if path.exists() and SECRET.encode() in path.read_bytes():
            leaks.append(str(path))
    return leaks


def still_serving(app: LaunchedApp, tid: str | None = None, *, cell: bool = False) -> None:
    """The other visitor is served: the recent-runs list answers (and lists ``tid``) and a short
    run finishes — with a cell that prints its result when ``cell`` (it needs a kernel)."""
    recent = app.other.predict(api_name="/recent")
    if tid is not None:
        ids = [c[1] if isinstance(c, list | tuple) else c for c in recent.get("choices", [])]
        assert tid in ids, f"/recent does not list {tid}"
    q = question("print(6 * 7)", tag="canary") if cell else "Fault test canary, no code."
    chat, status, _ = app.other.predict(q, *settings(), api_name="/run")
    assert "finished" in status, status
    if cell:
        assert any("\n42\n" in t for t in texts(chat)), texts(chat)


def outputs(traj: Any) -> list[Any]:
    return [s for s in traj.segments if s.kind == "output"]

