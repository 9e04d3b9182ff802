"""Benchmark of the Review tab on a store of 100,000 trajectories (issue 10): how long a reviewer
waits between pressing ``a`` and seeing the next trajectory.

    python bench/bench_review.py                       # 100,000 trajectories (a few minutes)
    python bench/bench_review.py --n 10000             # quick run
    python bench/bench_review.py --db /tmp/r.sqlite    # keep the store there (reused next time)
    python bench/bench_review.py --no-browser          # the server side only

The store is built on the bulk path (``Store.save_trajectories`` over bench_store.py's synthetic
generator: N trajectories x ~20 segments, 10 runs, 1 in 5 unfinished), then given a review mix:
the oldest 60% decided (except every tenth, skipped over as reviewers do), and a rule score
(``startui.answers.SCORER``, through the library's own ``add_score``, in bulk transactions) on
every finished trajectory of three of the ten runs, 40% of them wrong — so "wrong" is a filter
with something to find all through the queue.

1. Server. ``ReviewSession.decide("accepted")`` -> the next ``Item`` (the decision is written,
   the prefetched item becomes current, the one after it is prefetched), for each queue:
   pending/oldest (the default), verdict=wrong, shortest first, shuffled (seed 1); then the tab's
   pure render of that Item (``review_render``: ``item_messages`` = ``render.messages`` with the
   review's marks, the status line, the verdict panel, the segment picker's choices). Goal:
   decide + render p95 < 100 ms. Then, per queue, the Review tab's whole "accept" handler (taken
   from the built app's event table and called as Gradio calls it: the decision and every output
   it sends back, the progress line and the counts per status included). Store calls made
   through the session are timed on the side (``time.perf_counter`` around each) to say where the
   time goes. Baseline, same run, the same number of calls: a trivial Gradio round trip, a
   launched Blocks app whose no-op function is called through ``gradio_client``.

2. Browser. The real app (``build_app`` + ``launch``) on the same store in Debian's Chromium
   (Playwright, the browser tests' flags); ``?tab=review`` opens the queue (no users in the
   store: the OS user reviews). The key ``a`` is pressed again and again (after each, 250 ms of
   quiet); the page records the time of the keydown (a capturing listener, before the tab's
   own) and, from a MutationObserver, the moment ``#review-status`` shows a different trajectory
   id; the trajectory view (``#review-trajectory``) is timed too, at its last change. Split:
   CDP's network events give when the reply's last bytes reached the browser (the rest is the
   page's parsing and rendering), and the launched app's accept event is timed inside the server
   (the handler, and Gradio's whole processing of the event). Goal: key -> next item p50 <
   300 ms. Baseline, the same browser, interleaved press by press: a tiny separate Blocks app
   whose key ``a`` clicks a button whose no-op function writes a counter into a Markdown — key
   press -> the new text in the page.

The app, the trivial app and Playwright share this process (as in bench_ui.py and the browser
tests), so the server's figures inside the browser run carry the browser's load on 2 cores.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import faulthandler
import functools
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from sqlalchemy import text, update

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_store import pct, synthetic  # noqa: E402

from startui.answers import SCORER  # noqa: E402
from startui.review.session import ReviewSession  # noqa: E402
from startui.store import Store  # noqa: E402
from startui.store import reviews as store_reviews  # noqa: E402
from startui.store.models import TrajectoryRow  # noqa: E402
from startui.store.queue import QueueFilter  # noqa: E402
from startui.ui import review_render as rr  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SCORED_RUNS = ("run-0", "run-3", "run-7")
QUEUES = {
    "pending, oldest (default)": QueueFilter(),
    "verdict=wrong": QueueFilter(verdict="wrong"),
    "shortest first": QueueFilter(sort="shortest"),
    "shuffled (seed 1)": QueueFilter(sort="shuffled", seed=1),
}


# -- the store --------------------------------------------------------------------------------

def build_store(store: Store, n: int, n_segments: int) -> dict[str, float]:
    t0 = time.perf_counter()
    gen = synthetic(n, n_segments)
    done = 0
    while batch := [t for _, t in zip(range(1000), gen, strict=False)]:
        done += store.save_trajectories(batch, batch_size=1000)
        if done % 20000 == 0:
            print(f"  inserted {done:,}", file=sys.stderr, flush=True)
    t_insert = time.perf_counter() - t0

    # the oldest 60% decided, except every tenth (skipped over), mostly accepted
    t1 = time.perf_counter()
    decided = [i for i in range(int(n * 0.6)) if i % 10 != 3]
    for status, keep in (("accepted", lambda i: i % 20 < 16), ("rejected", lambda i: i % 20 >= 16)):
        ids = [f"t{i:08d}" for i in decided if keep(i)]
        for k in range(0, len(ids), 5000):
            store.write(lambda s, chunk=ids[k:k + 5000], st=status: s.execute(
                update(TrajectoryRow).where(TrajectoryRow.id.in_(chunk)).values(
                    review_status=st).execution_options(synchronize_session=False)))

    # a rule score on every finished trajectory of three runs, through the library's add_score
    rng = random.Random(3)
    runs = store.resolve_runs(list(SCORED_RUNS))
    scored = wrong = 0
    for run in runs:
        ids = sorted(store.trajectory_statuses(run).items())
        todo = [tid for tid, st in ids if st == "finished"]
        for k in range(0, len(todo), 2000):
            chunk = [(tid, rng.random() >= 0.4) for tid in todo[k:k + 2000]]
            store.write(lambda s, chunk=chunk: [store_reviews.add_score(
                s, tid, scorer=SCORER, correct=ok,
                detail={"answer": "76127", "extracted_by": "boxed",
                        "reference": "76127" if ok else "76128"}) for tid, ok in chunk])
            scored += len(chunk)
            wrong += sum(not ok for _, ok in chunk)
    store.write(lambda s: s.execute(text("ANALYZE")))
    return {"insert_s": t_insert, "mix_s": time.perf_counter() - t1, "scored": scored,
            "wrong": wrong}


class Clocked:
    """The store, with the time spent in each of its methods added up (perf_counter around every
    call made through this object; the store's own calls to itself are not counted twice)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.spent: collections.Counter[str] = collections.Counter()
        self.calls: collections.Counter[str] = collections.Counter()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if not callable(attr) or name.startswith("_"):
            return attr

        def timed(*a: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return attr(*a, **kw)
            finally:
                self.spent[name] += time.perf_counter() - t
                self.calls[name] += 1

        return timed

    def reset(self) -> None:
        self.spent.clear()
        self.calls.clear()


# -- server side ------------------------------------------------------------------------------

def render_item(item: Any) -> Any:
    """What the Review tab draws from an Item (review_render's pure functions)."""
    return (rr.item_messages(item), rr.item_status(item), rr.verdict_panel(item),
            rr.segment_choices(item.trajectory, item.my_labels))


def bench_session(store: Store, f: QueueFilter, repeat: int) -> dict[str, Any]:
    clocked = Clocked(store)
    session = ReviewSession(clocked, "bench-server", f)
    assert session.set_filter(f) is not None, "the queue is empty"
    for _ in range(3):  # warm-up
        session.decide("accepted")
    clocked.reset()
    decide, render, ids = [], [], set()
    for _ in range(repeat):
        t = time.perf_counter()
        item = session.decide("accepted")
        t1 = time.perf_counter()
        assert item is not None, "the queue ran out: use a bigger --n or fewer --decisions"
        render_item(item)
        t2 = time.perf_counter()
        decide.append((t1 - t) * 1000)
        render.append((t2 - t1) * 1000)
        ids.add(item.id)
    assert len(ids) == repeat, "an item came back twice"
    per_call = {name: (clocked.spent[name] * 1000 / repeat, clocked.calls[name] / repeat)
                for name in clocked.spent}
    return {"decide": decide, "render": render, "per_call": per_call}


def accept_event(demo: Any) -> Any:
    """The Review tab's own "accept" event (a BlockFunction), from the built app's event table."""
    for fn in demo.fns.values():
        for block_id, _event in fn.targets:
            block = demo.blocks.get(block_id)
            if getattr(block, "elem_id", None) == "review-accept":
                return fn
    raise SystemExit("no event function is wired to #review-accept")


def instrument(demo: Any) -> dict[str, list[float]]:
    """Time the accept event inside the launched server: the tab's handler alone, and Gradio's
    whole processing of the event (preprocess, the handler, postprocess of every output)."""
    event = accept_event(demo)
    spent: dict[str, list[float]] = {"handler": [], "gradio": []}
    handler = event.fn

    @functools.wraps(handler)  # Gradio reads the signature (gr.Request) through __wrapped__
    def timed_handler(*a: Any, **kw: Any) -> Any:
        t = time.perf_counter()
        try:
            return handler(*a, **kw)
        finally:
            spent["handler"].append((time.perf_counter() - t) * 1000)

    event.fn = timed_handler
    process_api = demo.process_api

    async def timed_process_api(block_fn: Any, *a: Any, **kw: Any) -> Any:
        t = time.perf_counter()
        try:
            return await process_api(block_fn, *a, **kw)
        finally:
            if block_fn is event or block_fn == getattr(event, "_id", object()):
                spent["gradio"].append((time.perf_counter() - t) * 1000)

    demo.process_api = timed_process_api
    return spent


def bench_tab_handler(demo: Any, f: QueueFilter, repeat: int,
                      ) -> tuple[list[float], dict[str, tuple[float, float]]]:
    """The tab's whole accept handler as Gradio calls it (no request: the OS user reviews), on
    the queue ``f``: the decision and every output the tab sends back."""
    handler = accept_event(demo).fn
    with warnings.catch_warnings():  # "nothing on screen to decide on": a new desk, as wanted
        warnings.simplefilter("ignore")
        out = handler(None, None, [], "", "", None)
    desk = next(v for v in out.values() if hasattr(v, "session"))
    clocked = Clocked(desk.session.store)
    desk.session.store = clocked
    desk.session.set_filter(f)
    for _ in range(3):
        handler(desk, None, [], "", "", None)
    clocked.reset()
    xs = []
    for _ in range(repeat):
        t = time.perf_counter()
        handler(desk, None, [], "", "", None)
        xs.append((time.perf_counter() - t) * 1000)
    desk.session.store = clocked._store
    return xs, {name: (clocked.spent[name] * 1000 / repeat, clocked.calls[name] / repeat)
                for name in clocked.spent}


def trivial_app() -> Any:
    """A tiny Blocks app: a no-op function (``/noop``) and a button whose click writes a counter
    into a Markdown (the key ``a`` clicks it)."""
    import gradio as gr

    with gr.Blocks() as demo:
        box = gr.Textbox("x")
        out = gr.Markdown("n0", elem_id="noop-out")
        btn = gr.Button("go", elem_id="noop-btn")
        count = gr.State(0)
        btn.click(lambda x: x, box, box, api_name="noop")
        btn.click(lambda k: (k + 1, f"n{k + 1}"), count, [count, out], api_name=False)
    return demo


KEY_TO_BUTTON = """() => { document.addEventListener('keydown', (e) => {
  if (e.key === 'a') document.getElementById('noop-btn').click(); }); }"""


def bench_gradio_client(url: str, repeat: int) -> list[float]:
    from gradio_client import Client

    client = Client(url, verbose=False)
    for _ in range(5):
        client.predict("x", api_name="/noop")
    xs = []
    for _ in range(repeat):
        t = time.perf_counter()
        client.predict("x", api_name="/noop")
        xs.append((time.perf_counter() - t) * 1000)
    client.close()
    return xs


# -- browser ----------------------------------------------------------------------------------

# Installed in a page: the keydown time (capturing, before the app's own listener) and, from a
# MutationObserver, the first time the watched element shows a new value and the last time the
# watched view changed. Times are wall-clock ms (timeOrigin + now) to meet CDP's network times.
OBSERVE = r"""([sel, pattern, view]) => {
  const re = new RegExp(pattern);
  const now = () => performance.timeOrigin + performance.now();
  const read = () => { const el = document.querySelector(sel);
    const m = el && re.exec(el.textContent); return m ? m[1] : null; };
  const b = window.__bench = {key: null, value: read(), shown: null, viewLast: null};
  document.addEventListener('keydown', () => { b.key = now(); b.shown = null;
    b.viewLast = null; }, true);
  new MutationObserver(() => {
    const t = now();
    const v = read();
    if (v !== null && v !== b.value) { b.value = v; if (b.key !== null && b.shown === null)
      b.shown = t; }
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
  const vel = view && document.querySelector(view);
  if (vel) new MutationObserver(() => { if (b.key !== null) b.viewLast = now(); })
    .observe(vel, {subtree: true, childList: true, characterData: true, attributes: true});
}"""


class Arrivals:
    """When the page's Gradio stream (the SSE response of ``/queue/data``) received bytes, in
    wall-clock ms, from CDP's network events (as bench_ui.py counts them)."""

    def __init__(self, page: Any) -> None:
        self.cdp = page.context.new_cdp_session(page)
        self.base: dict[str, tuple[float, float]] = {}  # requestId -> (wallTime, timestamp)
        self.times: list[float] = []
        self.cdp.on("Network.requestWillBeSent", self._request)
        self.cdp.on("Network.dataReceived", self._data)
        self.cdp.send("Network.enable")

    def _request(self, e: dict[str, Any]) -> None:
        if "/queue/data" in e["request"]["url"]:
            self.base[e["requestId"]] = (e["wallTime"], e["timestamp"])

    def _data(self, e: dict[str, Any]) -> None:
        if e["requestId"] in self.base:
            wall, ts = self.base[e["requestId"]]
            self.times.append((wall + e["timestamp"] - ts) * 1000)

    def last_before(self, start: float, end: float) -> float | None:
        hits = [t for t in self.times if start <= t <= end]
        return max(hits) if hits else None


def press(page: Any, arrivals: Arrivals, quiet_ms: int) -> dict[str, Any]:
    """Press ``a``; wait for the new value, then for ``quiet_ms`` without a change in the page."""
    before = page.evaluate("() => window.__bench.value")
    page.keyboard.press("a")
    page.wait_for_function("() => window.__bench.shown !== null", timeout=30_000)
    page.wait_for_timeout(quiet_ms)
    b = page.evaluate("() => window.__bench")
    out: dict[str, Any] = {"shown": b["shown"] - b["key"], "value": b["value"],
                           "before": before, "view": None, "bytes": None}
    if b.get("viewLast") is not None:
        out["view"] = max(b["viewLast"], b["shown"]) - b["key"]
    bytes_at = arrivals.last_before(b["key"], b["shown"] + 1)  # CDP/page clocks: within ~1 ms
    if bytes_at is not None:
        out["bytes"] = bytes_at - b["key"]
    return out


def bench_browser(review_url: str, trivial_url: str, presses: int, quiet_ms: int,
                  ) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    out: dict[str, list[float]] = collections.defaultdict(list)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        ctx = browser.new_context(viewport={"width": 1500, "height": 1150})
        review = ctx.new_page()
        review.set_default_timeout(60_000)
        review_net = Arrivals(review)
        review.goto(review_url + "?tab=review")
        review.locator("#review-accept").wait_for()
        review.wait_for_function(
            "() => /id t\\d+/.test(document.querySelector('#review-status').textContent)")
        review.evaluate(OBSERVE, ["#review-status", r"id (t\d+)", "#review-trajectory"])
        review.locator("body").click(position={"x": 5, "y": 5})
        trivial = ctx.new_page()
        trivial.set_default_timeout(60_000)
        trivial_net = Arrivals(trivial)
        trivial.goto(trivial_url)
        trivial.locator("#noop-btn").wait_for()
        trivial.evaluate(KEY_TO_BUTTON)
        trivial.evaluate(OBSERVE, ["#noop-out", r"(n\d+)", None])
        trivial.locator("body").click(position={"x": 5, "y": 5})
        for i in range(presses + 3):  # the first 3: warm-up
            review.bring_to_front()
            r = press(review, review_net, quiet_ms)
            assert r["value"] != r["before"], "the same trajectory came back"
            trivial.bring_to_front()
            t = press(trivial, trivial_net, quiet_ms)
            if i < 3:
                continue
            out["review"].append(float(r["shown"]))
            out["view"].append(float(r["view"] if r["view"] is not None else r["shown"]))
            out["trivial"].append(float(t["shown"]))
            for key, x in (("review_bytes", r), ("trivial_bytes", t)):
                if x["bytes"] is not None:
                    out[key].append(float(x["bytes"]))
                    out[key + "_to_dom"].append(float(x["shown"] - x["bytes"]))
            if (i - 2) % 25 == 0:
                print(f"  {i - 2} presses", file=sys.stderr, flush=True)
        browser.close()
    return out


# -- report -----------------------------------------------------------------------------------

def p50(xs: list[float]) -> float:
    return statistics.median(xs)


def p95(xs: list[float]) -> float:
    return pct(xs, 95)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="trajectories (default 100,000)")
    ap.add_argument("--segments", type=int, default=20, help="segments per trajectory")
    ap.add_argument("--db", help="SQLite file to use: built there if missing, else reused "
                                 "(decisions from earlier runs stay: the queues just move on)")
    ap.add_argument("--decisions", type=int, default=200, help="timed decisions per queue")
    ap.add_argument("--presses", type=int, default=100, help="timed key presses in the browser")
    ap.add_argument("--quiet-ms", type=int, default=250,
                    help="wait after the new item is shown before the next press")
    ap.add_argument("--no-browser", action="store_true")
    args = ap.parse_args()
    faulthandler.dump_traceback_later(3600, exit=True)
    os.environ.setdefault("STARTUI_REVIEWER", "bench")
    t_start = time.perf_counter()

    if args.db:
        path = Path(args.db)
        fresh = not path.exists()
    else:
        path = Path(tempfile.mkdtemp(prefix="bench_review_")) / "review.sqlite"
        fresh = True
    store = Store(f"sqlite:///{path}")
    built = None
    if fresh:
        print(f"building {args.n:,} trajectories x {args.segments} segments in {path} ...",
              file=sys.stderr, flush=True)
        built = build_store(store, args.n, args.segments)
    total = store.count_trajectories()
    counts = store.queue_counts(QueueFilter())
    wrong = store.queue_counts(QueueFilter(verdict="wrong"))
    print(f"\n## Review benchmark: {total:,} trajectories in {path} "
          f"({path.stat().st_size / 2**20:,.0f} MiB)")
    if built:
        print(f"built: insert {built['insert_s']:.0f} s, review mix + {built['scored']:,} rule "
              f"scores ({built['wrong']:,} wrong) {built['mix_s']:.0f} s")
    print("finished trajectories per review status: " + ", ".join(
        f"{k} {v:,}" for k, v in counts.items()) + f"; pending and wrong: {wrong['pending']:,}")

    import gradio as gr

    from startui.ui.app import build_app, launch
    from startui.ui.studio import Services

    tiny = trivial_app()
    _, tiny_url, _ = tiny.queue(default_concurrency_limit=None).launch(
        prevent_thread_lock=True, quiet=True, js=KEY_TO_BUTTON)
    base = bench_gradio_client(tiny_url, args.decisions)

    print(f"\n### Server: decision -> next item, {args.decisions} decisions per queue "
          f"(after 3 warm-up)\n")
    print(f"baseline, trivial Gradio round trip (gradio_client -> no-op, {args.decisions} calls): "
          f"p50 {p50(base):.1f} ms, p95 {p95(base):.1f} ms\n")
    print("| queue | decide -> Item p50 / p95 ms | render p50 / p95 ms | decide + render p95 "
          "| vs round trip p50 / p95 | where the time goes (ms per decision) |")
    print("|---|---:|---:|---:|---:|---|")
    worst = 0.0
    for name, f in QUEUES.items():
        r = bench_session(store, f, args.decisions)
        both = [a + b for a, b in zip(r["decide"], r["render"], strict=True)]
        worst = max(worst, p95(both))
        top = sorted(r["per_call"].items(), key=lambda kv: -kv[1][0])[:5]
        where = ", ".join(f"{k} {ms:.1f} ({c:g}x)" for k, (ms, c) in top)
        print(f"| {name} | {p50(r['decide']):.1f} / {p95(r['decide']):.1f} | "
              f"{p50(r['render']):.2f} / {p95(r['render']):.2f} | {p95(both):.1f} | "
              f"{p50(both) / p50(base):.2f}x / {p95(both) / p95(base):.2f}x | {where} |")
    print(f"\nworst decide + render p95 {worst:.1f} ms (goal < 100 ms): "
          f"{'OK' if worst < 100 else 'MISSED'}")

    demo = build_app(Services(store, pool_size=1))
    print(f"\nthe Review tab's whole accept handler (the decision and every output it sends "
          f"back: item, progress line, counts per status), {args.decisions} decisions per "
          f"queue:\n")
    print("| queue | handler p50 / p95 ms | vs round trip p50 / p95 | where the time goes "
          "(ms per decision) |")
    print("|---|---:|---:|---|")
    for name, f in QUEUES.items():
        tab, where = bench_tab_handler(demo, f, args.decisions)
        top = sorted(where.items(), key=lambda kv: -kv[1][0])[:4]
        print(f"| {name} | {p50(tab):.1f} / {p95(tab):.1f} | {p50(tab) / p50(base):.2f}x / "
              f"{p95(tab) / p95(base):.2f}x | "
              + ", ".join(f"{k} {ms:.1f} ({c:g}x)" for k, (ms, c) in top) + " |")

    if not args.no_browser:
        if not Path(CHROMIUM).exists():
            sys.exit(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
        server = instrument(demo)
        _, url, _ = launch(demo, prevent_thread_lock=True, quiet=True)
        b = bench_browser(url, tiny_url, args.presses, args.quiet_ms)
        demo.close()
        rt = b["trivial"]
        handler, gradio = server["handler"][3:], server["gradio"][3:]  # less the warm-up
        print(f"\n### Browser: key `a` -> next item visible, {args.presses} presses (after 3 "
              f"warm-up), interleaved with the baseline\n")
        print("| what | p50 ms | p95 ms | vs trivial round trip p50 / p95 |")
        print("|---|---:|---:|---:|")
        for label, xs in (("key -> new id in #review-status", b["review"]),
                          ("key -> trajectory view's last change", b["view"]),
                          ("  key -> the reply's last bytes at the browser (CDP)",
                           b["review_bytes"]),
                          ("  those bytes -> id shown (the page's parse and render)",
                           b["review_bytes_to_dom"]),
                          ("baseline: key -> trivial Gradio update visible", rt),
                          ("  key -> the reply's last bytes at the browser (CDP)",
                           b["trivial_bytes"]),
                          ("  those bytes -> text shown", b["trivial_bytes_to_dom"]),
                          ("in the server: the tab's accept handler", handler),
                          ("in the server: Gradio's processing of the event (pre + handler + "
                           "post)", gradio)):
            if len(xs) != len(rt):
                print(f"| {label} | — | — | timed {len(xs)} times, not {len(rt)} |")
                continue
            print(f"| {label} | {p50(xs):.1f} | {p95(xs):.1f} | "
                  f"{p50(xs) / p50(rt):.2f}x / {p95(xs) / p95(rt):.2f}x |")
        if len(gradio) == len(b["review"]):
            rest = [a - g for a, g in zip(b["review"], gradio, strict=True)]
            print(f"\nkey -> id shown, less Gradio's processing in the server (the queue, the "
                  f"wire, the page's rendering): p50 {p50(rest):.1f} ms, p95 {p95(rest):.1f} ms")
        print(f"\nkey -> next item p50 {p50(b['review']):.0f} ms (goal < 300 ms): "
              f"{'OK' if p50(b['review']) < 300 else 'MISSED'}")
    tiny.close()
    store.close()
    if not args.db:  # a temporary store (~460 MiB at 100k): gone with the run
        shutil.rmtree(path.parent, ignore_errors=True)
    with contextlib.suppress(OSError):
        load = os.getloadavg()
        print(f"\nbench time {time.perf_counter() - t_start:.0f} s; load average "
              f"{load[0]:.1f} / {load[1]:.1f}; gradio {gr.__version__}")


if __name__ == "__main__":
    main()
