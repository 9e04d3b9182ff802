"""The live demo in a real browser: bytes sent per streamed trajectory, and token-to-page delay.

    python bench/bench_ui.py [--tokens 3200] [--rate 200] [--model] [--model-tokens 512]

The app is launched in-process (as tests/test_ui_api.py does) with a scripted, stateless "model"
that writes a long trajectory over several segments — thinking, a code cell, its kernel output,
more thinking, a second cell, an end-of-reasoning hint that opens a third cell, and a final
answer — and Debian's Chromium opens it through Playwright (as tests/test_ui_browser.py does),
types a question and presses Run.

1. Bytes. Every byte the browser receives on Gradio's streaming channel (the SSE response of
   ``/gradio_api/queue/data``) from the click on Run until the run and its follow-up events are
   done, counted with CDP (``Network.dataReceived``; ``Network.streamResourceContent`` also hands
   over the payload so it can be split by message and by output component). Baseline: the UTF-8
   size of the final trajectory's text, ``trajectory.completion()``, loaded back from the store.
   Goal: <= 2x.

2. Delay from a token leaving the model to its text being in the page. The scripted text carries
   unique markers (k00001, k00002, ...); the backend is wrapped to record the wall time
   (``time.time()``) at which each chunk is handed to the engine; a MutationObserver on
   #trajectory records ``performance.timeOrigin + performance.now()`` the first time each marker
   is in the chat's DOM text. delay = page time - emission time (same machine clock; the
   page/Python clock offset is measured and reported). The delay is split at the network: the
   wall time the SSE chunk holding a marker reached the browser (CDP timestamps). Baselines from
   the same run: a plain same-page Gradio round trip (click Stop with nothing running -> the
   "nothing is running" toast in the DOM) and the app's refresh interval (Studio.refresh).

   With --model the embedded llama.cpp model writes the text, which has no markers: each chunk's
   text and emission time are recorded; the page records a snapshot of the chat's text (letters
   and digits only, so Markdown/HTML rendering does not matter) on every DOM change; a chunk is
   "in the page" at the first snapshot that holds the last 24 letters/digits of its request's text
   up to and including it. Chunks whose probe is too short, never found (rendered text such as
   LaTeX, or a thinking block that closed in the same update) or already in the page just before
   the chunk was emitted (a repeated phrase, the question) are counted and left out. The same
   probe method is also run on the scripted run, next to the exact marker figure, so its bias
   is visible.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import contextlib
import faulthandler
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from startui.infer.backends.base import Chunk, GenerationRequest  # noqa: E402
from startui.infer.backends.scripted import ScriptedBackend  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
MARKER = re.compile(r"k(\d{5})")
PROBE = 24  # letters/digits a chunk's probe holds (model mode)
ALNUM = re.compile(r"[^\w]|_")  # what the page's snapshots drop (JS: [^\p{L}\p{N}])

# -- the scripted "model" ------------------------------------------------------------------------

WORDS = ("the", "partial", "sum", "of", "primes", "below", "each", "bound", "is", "checked",
         "against", "a", "sieve", "and", "kept", "so", "far", "then", "compared", "again")
CODE1 = ("primes = [n for n in range(2, 1000) if all(n % d for d in range(2, int(n ** 0.5) + 1))]\n"
         "print(len(primes), sum(primes))\nprint(primes[:40])")
CODE2 = ("total = 0\nfor p in primes:\n    total += p\n    if p > 950:\n        print(p, total)\n"
         "print(total)")
CODE3 = "print(sum(primes) == 76127, sum(primes) % 1000)"


def prose(tokens: int, first: int, para: int = 60) -> tuple[str, int]:
    """``tokens`` word tokens, every fourth a unique marker; paragraphs of ``para`` tokens."""
    k, paras, words = first, [], []
    for i in range(tokens):
        if i % 4 == 3:
            words.append(f"k{k:05d}")
            k += 1
        else:
            words.append(WORDS[(i * 7 + k) % len(WORDS)])
        if len(words) == para:
            paras.append(" ".join(words).capitalize() + ".")
            words = []
    if words:
        paras.append(" ".join(words).capitalize() + ".")
    return "\n\n".join(paras), k


@dataclass
class Script:
    """A stateless responder (like tests/tour.py) over four parts of prose with markers."""

    tokens: int
    parts: list[str] = field(default_factory=list)
    markers: int = 0

    def __post_init__(self) -> None:
        k = 1
        for share in (0.3, 0.25, 0.25, 0.2):
            text, k = prose(int(self.tokens * share), k)
            self.parts.append(text)
        self.markers = k - 1

    def respond(self, prompt: str) -> str:
        outputs = prompt.count("```output\n")
        a, b, c, d = self.parts
        if prompt.endswith("```python\n"):  # the end-of-reasoning hint opened a cell
            return CODE3 + "\n```"
        if prompt.endswith("```\n") and outputs == 1:
            return f"{b}\n\n```python\n{CODE2}\n```\n"
        if prompt.endswith("```\n") and outputs == 2:
            return c  # then it stops: the hint round goes in
        if prompt.endswith("```\n"):
            return f"{d}\n\nBoth checks agree, so the answer is \\boxed{{76127}}."
        return f"{a}\n\n```python\n{CODE1}\n```\n"


class Timed:
    """Any backend, with the wall time each chunk is handed to the engine."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.name = backend.name
        self.model = backend.model
        self.chunks: list[tuple[float, str, int]] = []  # (time.time(), text, request number)
        self.requests = 0

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        return self.backend.chat_prompt(messages)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        self.requests += 1
        n = self.requests
        async with contextlib.aclosing(self.backend.stream(request)) as chunks:
            async for chunk in chunks:
                if chunk.text:
                    self.chunks.append((time.time(), chunk.text, n))
                yield chunk

    async def close(self) -> None:
        await self.backend.close()


# -- the page side -------------------------------------------------------------------------------

OBSERVE = """(snapshots) => {
  const root = document.querySelector('#trajectory');
  const seen = {}, snaps = [];
  let last = null;
  const scan = () => {
    const t = performance.timeOrigin + performance.now();
    const text = root.textContent;
    if (text === last) return;
    last = text;
    for (const m of text.matchAll(/k(\\d{5})/g)) if (!(m[1] in seen)) seen[m[1]] = t;
    if (snapshots) snaps.push([t, text.replace(/[^\\p{L}\\p{N}]/gu, '')]);
  };
  new MutationObserver(scan).observe(root, {subtree: true, childList: true, characterData: true});
  window.__bench = {seen, snaps};
}"""

ROUND_TRIP = """() => new Promise(resolve => {
  const has = n => (n.textContent || '').includes('nothing is running');
  const t0 = performance.now();
  const done = v => { mo.disconnect(); clearTimeout(timer); resolve(v); };
  const mo = new MutationObserver(records => {
    if (records.some(r => [...r.addedNodes].some(has))) done(performance.now() - t0);
  });
  const timer = setTimeout(() => done(null), 5000);
  mo.observe(document.body, {subtree: true, childList: true});
  document.querySelector('#stop').click();
})"""

CLOCK = "() => performance.timeOrigin + performance.now()"


class Wire:
    """CDP network events of the queue's SSE stream(s), by phase."""

    def __init__(self, page: Any) -> None:
        self.cdp = page.context.new_cdp_session(page)
        self.phase = "load"
        self.urls: dict[str, str] = {}
        self.wall: dict[str, tuple[float, float]] = {}  # requestId -> (wallTime, timestamp)
        self.chunks: list[tuple[str, str, float, int, int, bytes]] = []
        self.finished: dict[str, int] = {}
        self.unread: set[str] = set()
        self.cdp.on("Network.requestWillBeSent", self._request)
        self.cdp.on("Network.responseReceived", self._response)
        self.cdp.on("Network.dataReceived", self._data)
        self.cdp.on("Network.loadingFinished", self._finished)
        self.cdp.send("Network.enable")

    def _sse(self, rid: str) -> bool:
        return "/queue/data" in self.urls.get(rid, "")

    def _request(self, e: dict[str, Any]) -> None:
        self.urls[e["requestId"]] = e["request"]["url"]
        self.wall[e["requestId"]] = (e["wallTime"], e["timestamp"])

    def _response(self, e: dict[str, Any]) -> None:
        rid = e["requestId"]
        if not self._sse(rid):
            return
        try:  # from now on dataReceived carries the bytes; what came before is buffered here
            r = self.cdp.send("Network.streamResourceContent", {"requestId": rid})
            data = base64.b64decode(r.get("bufferedData") or "")
            if data:  # already counted by the dataReceived events that carried it
                self.chunks.append((self.phase, rid, e["timestamp"], 0, 0, data))
        except Exception:  # noqa: BLE001 - a short stream already over: only its counts are known
            self.unread.add(rid)

    def _data(self, e: dict[str, Any]) -> None:
        rid = e["requestId"]
        if self._sse(rid):
            data = base64.b64decode(e.get("data") or "")
            self.chunks.append((self.phase, rid, e["timestamp"], e["dataLength"],
                                e["encodedDataLength"], data))

    def _finished(self, e: dict[str, Any]) -> None:
        if self._sse(e["requestId"]):
            self.finished[e["requestId"]] = e["encodedDataLength"]

    def to_wall(self, rid: str, ts: float) -> float:
        wall, base = self.wall[rid]
        return wall + (ts - base)

    def of(self, phase: str) -> list[tuple[str, str, float, int, int, bytes]]:
        return [c for c in self.chunks if c[0] == phase]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.cdp.detach()


def sse_messages(payload: bytes) -> list[tuple[int, dict[str, Any]]]:
    """(size on the wire, message) for each SSE event in the payload."""
    out = []
    for block in payload.split(b"\n\n"):
        if not block.strip():
            continue
        size = len(block) + 2
        data = b"\n".join(line[5:].strip() for line in block.split(b"\n")
                          if line.startswith(b"data:"))
        try:
            msg = json.loads(data) if data else {}
        except ValueError:
            msg = {"msg": "?"}
        if not isinstance(msg, dict):
            msg = {"msg": "?"}
        out.append((size, msg))
    return out


def jsize(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


# -- measuring -----------------------------------------------------------------------------------

def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


@dataclass
class Run:
    label: str
    final_bytes: int = 0
    chat_json_bytes: int = 0
    tokens: int = 0
    segments: str = ""
    wire: dict[str, Any] = field(default_factory=dict)
    delays: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    rtt: list[float] = field(default_factory=list)
    clock_offset: float = 0.0
    clock_drift: float = 0.0
    seconds: float = 0.0
    decode_rate: float = 0.0  # 1 / median gap between chunks of one request
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average before and after


def clock_offset(page: Any) -> tuple[float, float]:
    """Page clock minus Python's time.time(), in s, and its uncertainty (half the round trip)."""
    best = None
    for _ in range(7):
        t0 = time.time()
        pt = page.evaluate(CLOCK) / 1000
        t1 = time.time()
        if best is None or (t1 - t0) / 2 < best[1]:
            best = (pt - (t0 + t1) / 2, (t1 - t0) / 2)
    return best  # type: ignore[return-value]


def probe_delays(chunks: list[tuple[float, str, int]], snaps: list[list[Any]], offset: float,
                 ) -> tuple[list[float], Counter[str]]:
    """Per-chunk delay by text probes (see the module docstring), and why chunks were left out."""
    norm = ALNUM
    why: Counter[str] = Counter()
    delays = []
    texts: dict[int, str] = defaultdict(str)
    times = [snap[0] / 1000 - offset for snap in snaps]
    for t, text, req in chunks:
        texts[req] += norm.sub("", text)
        probe = texts[req][-PROBE:]
        if not norm.sub("", text):
            why["no letters or digits"] += 1
            continue
        if len(probe) < 12:
            why["probe shorter than 12"] += 1
            continue
        first = bisect.bisect_left(times, t)  # the page's text from the emission on
        if first and probe in snaps[first - 1][1]:
            why["in the page before it was emitted (repeated text)"] += 1
            continue
        hit = next((i for i in range(first, len(snaps)) if probe in snaps[i][1]), None)
        if hit is None:
            why["not found in the page"] += 1
            continue
        page_t = times[hit]
        delays.append(page_t - t)
    return delays, why


def set_number(page: Any, label: str, value: int) -> None:
    box = page.get_by_label(f"number input for {label}")
    box.fill(str(value))
    box.press("Enter")
    box.blur()


def run_once(args: argparse.Namespace, label: str, backend: Timed, question: str,
             max_tokens: int, markers: int, timeout_s: float) -> Run:
    from playwright.sync_api import sync_playwright

    from startui.ui.app import build_app, launch, open_store
    from startui.ui.studio import Services

    out = Run(label)
    tmp = tempfile.TemporaryDirectory(prefix="bench-ui-")
    services = Services(open_store(f"sqlite:///{tmp.name}/ui.sqlite"), pool_size=1,
                        backend_factory=lambda settings: backend)
    refresh = 0.05
    demo = build_app(services)
    try:
        from startui.ui.studio import Studio

        refresh = Studio(services).refresh
        run_fn = next(fn for fn in demo.fns.values() if fn.api_name == "run")
        names = [c.elem_id or type(c).__name__ for c in run_fn.outputs]
        _, url, _ = launch(demo, prevent_thread_lock=True, quiet=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(30_000)
                wire = Wire(page)
                page.goto(url)
                page.wait_for_selector("#run")
                page.wait_for_timeout(500)  # demo.load events
                # baseline: a trivial event's round trip in the same page (first one warms up)
                wire.phase = "rtt"
                page.evaluate(ROUND_TRIP)
                for _ in range(15):
                    rtt = page.evaluate(ROUND_TRIP)
                    if rtt is not None:
                        out.rtt.append(rtt)
                    page.wait_for_timeout(50)
                page.wait_for_timeout(300)
                page.get_by_text("Settings").first.click()
                set_number(page, "Max tokens", max_tokens)
                page.locator("#problem textarea").fill(question)
                page.evaluate(OBSERVE, True)
                off0, unc = clock_offset(page)
                page.wait_for_timeout(300)
                wire.phase = "run"
                t0 = time.time()
                load0 = os.getloadavg()[0]
                page.locator("#run").click()
                page.locator("#status").get_by_text("finished").wait_for(timeout=timeout_s * 1000)
                out.seconds = time.time() - t0
                out.load = (load0, os.getloadavg()[0])
                page.wait_for_timeout(1500)  # the .then() events after the run, and late events
                wire.phase = "after"
                off1, unc1 = clock_offset(page)
                out.clock_offset = (off0 + off1) / 2
                out.clock_drift = off1 - off0
                out.notes.append(f"page clock - time.time(): {out.clock_offset * 1000:+.2f} ms "
                                 f"(±{max(unc, unc1) * 1000:.2f} ms; drift over the run "
                                 f"{out.clock_drift * 1000:+.2f} ms)")
                status = page.locator("#status").inner_text()
                shown = page.locator("#trajectory").inner_text()
                bench = page.evaluate("() => window.__bench")
                page.screenshot(path=str(Path(tmp.name) / "page.png"))
                wire.close()
            finally:
                browser.close()
        tid = re.search(r"id\s+`?([0-9a-f]{6,})", status)
        if not tid:
            raise RuntimeError(f"no trajectory id in the status line: {status!r}")
        summary = next(s for s in services.store.list_trajectories(limit=50)
                       if s.id.startswith(tid.group(1)))
        traj = services.store.load_trajectory(summary.id)
        from startui.ui import render

        out.final_bytes = len(traj.completion().encode())
        tail = ALNUM.sub("", traj.segments[-1].text)[-PROBE:] if traj.segments else ""
        out.notes.append("the end of the last segment is in the page when the run is over: "
                         + ("yes" if tail in ALNUM.sub("", shown) else "NO"))
        out.chat_json_bytes = jsize(render.messages(traj))
        out.tokens = traj.tokens
        out.segments = " ".join(s.kind for s in traj.segments)
        gaps = [b[0] - a[0] for a, b in zip(backend.chunks, backend.chunks[1:], strict=False)
                if a[2] == b[2]]
        out.decode_rate = 1 / statistics.median(gaps) if gaps else 0.0
        analyse_wire(out, wire, names)
        analyse_delays(out, wire, backend, bench, markers)
        out.delays["refresh"] = [refresh]
    finally:
        with contextlib.suppress(Exception):
            demo.close()
        with contextlib.suppress(Exception):
            asyncio.run(services.close())
        tmp.cleanup()
    return out


def analyse_wire(out: Run, wire: Wire, names: list[str]) -> None:
    run = wire.of("run")
    payload = b"".join(c[5] for c in run)
    out.wire["decoded"] = sum(c[3] for c in run)
    out.wire["encoded"] = sum(c[4] for c in run)
    out.wire["unread"] = sum(c[3] for c in run if c[1] in wire.unread)
    out.wire["payload"] = len(payload)
    out.wire["streams"] = len({c[1] for c in run})
    out.wire["rtt_bytes"] = sum(c[3] for c in wire.of("rtt"))
    msgs = sse_messages(payload)
    by_event: Counter[str] = Counter()
    for size, m in msgs:
        by_event[m.get("event_id") or m.get("msg") or "?"] += size
    main = max((e for e in by_event if len(e) > 20), key=lambda e: by_event[e], default=None)
    kinds: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    per_output: Counter[str] = Counter()
    ops: Counter[str] = Counter()
    others = envelope = empty = 0
    for size, m in msgs:
        if m.get("event_id") != main:
            others += size
            continue
        kind = m.get("msg", "?")
        kinds[kind] += size
        counts[kind] += 1
        data = (m.get("output") or {}).get("data")
        if kind == "process_generating" and isinstance(data, list):
            envelope += size - jsize(data)
            empty += all(v == [] for v in data)
        if isinstance(data, list):
            for i, value in enumerate(data):
                name = names[i] if i < len(names) else str(i)
                per_output[f"{kind}:{name}"] += jsize(value)
                if kind == "process_generating" and isinstance(value, list):
                    for op in value:
                        if isinstance(op, list) and len(op) == 3:
                            path = [p for p in op[1] if not isinstance(p, int)]
                            ops[f"{name} {op[0]} {'/'.join(map(str, path)) or '.'}"] += \
                                jsize(op)
    out.wire.update(main_event=by_event.get(main, 0), other_events=others, kinds=dict(kinds),
                    envelope=envelope, empty=empty,
                    counts=dict(counts), per_output=dict(per_output), ops=dict(ops))


def analyse_delays(out: Run, wire: Wire, backend: Timed, bench: dict[str, Any],
                   markers: int) -> None:
    off = out.clock_offset
    if markers:
        emitted = {}
        for t, text, _ in backend.chunks:
            for m in MARKER.finditer(text):
                emitted.setdefault(int(m.group(1)), t)
        # when the SSE chunk holding each marker reached the browser
        arrived: dict[int, float] = {}
        for _, rid, ts, _, _, data in wire.of("run"):
            for m in MARKER.finditer(data.decode("utf-8", "replace")):
                arrived.setdefault(int(m.group(1)), wire.to_wall(rid, ts))
        seen = {int(k): v / 1000 - off for k, v in bench["seen"].items()}
        total, net, dom = [], [], []
        for k, t in emitted.items():
            if k in seen:
                total.append(seen[k] - t)
                if k in arrived:
                    net.append(arrived[k] - t)
                    dom.append(seen[k] - arrived[k])
        out.delays.update(marker=total, network=net, dom=dom)
        missing = sorted(set(emitted) - set(seen))
        out.notes.append(f"markers: {len(emitted)} emitted, {len(seen)} seen in the page DOM, "
                         f"{len(missing)} never visible as text"
                         + (f" (e.g. k{missing[0]:05d})" if missing else ""))
    probe, why = probe_delays(backend.chunks, bench["snaps"], off)
    out.delays["probe"] = probe
    out.notes.append(f"probe method: {len(probe)} of {len(backend.chunks)} chunks matched; left "
                     "out: " + (", ".join(f"{v} {k}" for k, v in why.items()) or "none"))


# -- report --------------------------------------------------------------------------------------

def ms(x: float) -> str:
    return f"{x * 1000:.1f} ms"


def report(r: Run, rate: str) -> None:
    rtt = statistics.median(r.rtt) / 1000 if r.rtt else float("nan")
    refresh = r.delays.get("refresh", [0.05])[0]
    print(f"\n== {r.label} ({rate}) ==")
    print(f"trajectory: {r.tokens} tokens, segments: {r.segments}")
    print(f"run time (click to 'finished'): {r.seconds:.1f} s; model pace {r.decode_rate:.1f} "
          f"tok/s (median gap between chunks); load average {r.load[0]:.1f} -> {r.load[1]:.1f} "
          "on this machine")
    print(f"final text, completion() UTF-8          {r.final_bytes:>9,} B   (baseline)")
    print(f"final chat value as JSON                {r.chat_json_bytes:>9,} B   "
          f"{r.chat_json_bytes / r.final_bytes:.2f}x")
    w = r.wire
    print(f"SSE received for the run (decoded)      {w['decoded']:>9,} B   "
          f"{w['decoded'] / r.final_bytes:.2f}x   (goal <= 2x)")
    print(f"  in {w['streams']} SSE response(s); payload read for the split below "
          f"{w['payload']:,} B ({w['unread']:,} B in responses over before they could be read)")
    print(f"  the Run event's messages              {w['main_event']:>9,} B   "
          f"{w['main_event'] / r.final_bytes:.2f}x")
    for kind, size in sorted(w["kinds"].items(), key=lambda kv: -kv[1]):
        print(f"    {kind:<34}{size:>9,} B   x{w['counts'][kind]}")
    n = w["counts"].get("process_generating", 0)
    print(f"  Gradio's envelope of process_generating {w['envelope']:>7,} B   "
          f"{w['envelope'] / r.final_bytes:.2f}x   ({w['envelope'] / max(1, n):.0f} B per "
          f"message; {w['empty']} messages changed nothing)")
    print(f"  other events (.then, heartbeats)      {w['other_events']:>9,} B")
    extra = w["decoded"] - r.final_bytes
    per = extra / max(1, n)
    print(f"  everything but the text itself: {extra:,} B over {n} updates = {per:.0f} B per "
          f"update; <= 2x would allow {r.final_bytes / max(1.0, per):.0f} updates for this "
          f"text (one per {per:.0f} B of new text)")
    print("  per output, JSON of the values/diffs:")
    for name, size in sorted(w["per_output"].items(), key=lambda kv: -kv[1])[:10]:
        print(f"    {name:<34}{size:>9,} B   {size / r.final_bytes:.2f}x")
    print("  diff ops in process_generating, by target:")
    for name, size in sorted(w["ops"].items(), key=lambda kv: -kv[1])[:10]:
        print(f"    {name:<44}{size:>9,} B")
    print(f"baseline round trip (Stop -> toast), median of {len(r.rtt)}: {ms(rtt)}; "
          f"refresh interval {ms(refresh)}")
    for key, what in (("marker", "token -> page (markers)"),
                      ("network", "  token -> SSE bytes at the browser"),
                      ("dom", "  SSE bytes -> DOM"),
                      ("probe", "token -> page (text probes)")):
        d = r.delays.get(key)
        if not d:
            continue
        p50, p95 = pct(d, 0.5), pct(d, 0.95)
        print(f"{what:<40} n={len(d):>4}  p50 {ms(p50):>9} ({p50 / rtt:.2f}x rtt, "
              f"{p50 / refresh:.2f}x refresh)  p95 {ms(p95):>9} ({p95 / rtt:.2f}x rtt, "
              f"{p95 / refresh:.2f}x refresh)  max {ms(max(d))}")
    for note in r.notes:
        print(f"note: {note}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokens", type=int, default=3200, help="scripted trajectory length")
    ap.add_argument("--rate", type=float, default=200.0, help="scripted tokens per second")
    ap.add_argument("--model", action="store_true", help="also the embedded llama.cpp model")
    ap.add_argument("--model-tokens", type=int, default=512)
    args = ap.parse_args()
    # a hung browser or server must not hang the bench: dump every thread's stack and exit
    faulthandler.dump_traceback_later(240 + 3 * args.tokens / args.rate
                                      + (300 + 2 * args.model_tokens if args.model else 0),
                                      exit=True)
    if not Path(CHROMIUM).exists():
        sys.exit(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    script = Script(args.tokens)
    scripted = Timed(ScriptedBackend(respond=script.respond, delay=1 / args.rate,
                                     model="bench-ui"))
    budget = min(8192, -(-(args.tokens + 200) // 64) * 64)
    t = time.time()
    r = run_once(args, "scripted", scripted, "What is the sum of all primes below 1000?",
                 budget, script.markers, timeout_s=60 + 3 * args.tokens / args.rate)
    report(r, f"{args.rate:g} tok/s, delay={1 / args.rate:g}")
    if args.model:
        from startui.infer.backends.llamacpp import LlamaCppBackend

        llm = LlamaCppBackend()
        print("\nloading the embedded model ...", flush=True)
        llm.load()
        timed = Timed(llm)
        m = run_once(args, "embedded model", timed,
                     "What is the sum of all primes below 1000? Check it with Python.",
                     args.model_tokens, 0, timeout_s=60 + 2 * args.model_tokens)
        report(m, f"{m.decode_rate:.1f} tok/s")
    print(f"\nbench time {time.time() - t:.0f} s")


if __name__ == "__main__":
    main()
