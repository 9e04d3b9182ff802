"""KernelPool / Kernel against a real ipykernel: the behaviour the engine relies on."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import os
import signal
import threading
import time
from types import ModuleType

import pytest
import pytest_asyncio

from startui.infer.kernels import (
    ENV_ALLOW,
    KERNELS_DIR,
    ExecutionResult,
    Kernel,
    KernelLimits,
    KernelPool,
    _Output,
    clean_text,
    truncate,
)

# Kernels are slow to boot: one event loop (and one warm pool) for the whole module.
module_loop = pytest.mark.asyncio(loop_scope="module")

SECRETS = {"STARTUI_SECRET_TOKEN": "do-not-leak-1", "HF_TOKEN": "hf_do_not_leak"}


def _launcher() -> ModuleType:
    """kernels/sandbox_launch.py is a script run inside the kernel; load it by path."""
    spec = importlib.util.spec_from_file_location(
        "sandbox_launch", KERNELS_DIR / "sandbox_launch.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie still answers kill(0); it is gone for our purposes once it is not running.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pool():
    with pytest.MonkeyPatch.context() as mp:
        for k, v in SECRETS.items():  # secrets in the app's env while kernels start
            mp.setenv(k, v)
        async with KernelPool(size=1, timeout=10) as p:
            yield p


@pytest_asyncio.fixture(loop_scope="module")
async def kernel(pool: KernelPool):
    k = await pool.acquire()
    yield k
    await pool.release(k)


# --- pure helpers -----------------------------------------------------------------------


def test_clean_text_strips_ansi_and_resolves_carriage_returns() -> None:
    assert clean_text("\x1b[31mred\x1b[0m plain") == "red plain"
    assert clean_text("10%\r50%\r100%\ndone\r\n") == "100%\ndone\n"


def test_truncate_keeps_head_and_tail() -> None:
    text = "H" * 500 + "M" * 1000 + "T" * 500
    out, cut = truncate(text, 400, 400)
    assert cut and out.startswith("H" * 400) and out.endswith("T" * 400)
    assert "[1200 characters cut]" in out
    assert truncate("short", 400, 400) == ("short", False)


def test_output_merges_consecutive_figure_placeholders() -> None:
    out = _Output()
    out.add("display_data", {"data": {"image/png": "AAA\n", "text/plain": "<Figure>"}})
    out.add("display_data", {"data": {"image/png": "BBB", "text/plain": "<Figure>"}})
    out.add("stream", {"name": "stdout", "text": "between\n"})
    out.add("display_data", {"data": {"application/vnd.plotly.v1+json": {"data": []}}})
    assert "".join(out.parts) == (
        "[image: 2 figures shown to the user]\nbetween\n"
        "[plotly: 1 interactive figure shown to the user]\n"
    )
    assert out.images == ["AAA", "BBB"] and out.plotly == [{"data": []}]


def test_output_keeps_bounded_memory_and_counts_what_it_dropped() -> None:
    out = _Output(cap=400)
    for i in range(100):
        out.text(f"{i:09d}\n")  # 10 characters each, 1000 in all
    assert out.size <= 400
    text, cut = truncate("".join(out.parts), 50, 50, out.dropped)
    assert cut and text.startswith("000000000\n000000001") and text.endswith("000000099\n")
    assert "[900 characters cut]" in text


def test_meta_is_json_able() -> None:
    r = ExecutionResult("x", error="Timeout", images=["AAA"], duration=1.23456, truncated=True)
    meta = json.loads(json.dumps(r.meta()))
    assert meta == {
        "error": "Timeout",
        "images": ["AAA"],
        "plotly": [],
        "duration": 1.2346,
        "truncated": True,
    }


# --- results ------------------------------------------------------------------------------


@module_loop
async def test_state_persists_and_outputs_are_collected(kernel: Kernel) -> None:
    assert (await kernel.execute("x = 1")).text == ""
    r = await kernel.execute("print(x + 1)")
    assert (r.text, r.error) == ("2", None)
    assert (await kernel.execute("1 + 1")).text == "2"  # execute_result text/plain
    r = await kernel.execute("import sys; print('to stderr', file=sys.stderr)")
    assert r.text == "to stderr"
    r = await kernel.execute("from IPython.display import display; display({'a': 1})")
    assert r.text == "{'a': 1}"
    r = await kernel.execute("print('\\x1b[31mred\\x1b[0m')")
    assert r.text == "red"
    assert r.duration > 0 and not r.truncated


@module_loop
async def test_released_kernel_state_does_not_leak(pool: KernelPool) -> None:
    first = await pool.acquire()
    await first.execute("leaky = 42")
    workdir, pid = first.workdir, first.pid
    await pool.release(first)  # returns at once; the shutdown goes on in the background
    await pool.settle()
    assert not os.path.exists(workdir) and _gone(pid)
    second = await pool.acquire()
    try:
        assert second.pid != pid
        assert (await second.execute("'leaky' in globals()")).text == "False"
    finally:
        await pool.release(second)


@module_loop
async def test_traceback_is_full_and_ansi_free(kernel: Kernel) -> None:
    r = await kernel.execute("def f():\n    return 1 / 0\n\nf()")
    assert r.error == "ZeroDivisionError"
    assert "\x1b" not in r.text
    assert r.text.startswith("Traceback (most recent call last):")
    assert "return 1 / 0" in r.text and "in f" in r.text  # the inner frame is shown
    assert r.text.endswith("ZeroDivisionError: division by zero")
    r = await kernel.execute("def broken(:")
    assert r.error == "SyntaxError" and "\x1b" not in r.text


@module_loop
async def test_long_output_is_cut_in_the_middle(kernel: Kernel) -> None:
    r = await kernel.execute("print('A' * 1000 + 'B' * 3000 + 'C' * 1000)")
    assert r.truncated
    assert r.text.startswith("A" * 400) and r.text.endswith("C" * 400)
    assert "... [4200 characters cut] ..." in r.text


@module_loop
async def test_output_flood_is_capped_in_the_kernel(kernel: Kernel) -> None:
    r = await kernel.execute("print('x' * 5_000_000)")
    assert r.truncated and "[output stopped after 1000000 characters" in r.text
    t0 = time.monotonic()
    r = await kernel.execute("while True:\n    print('spam ' * 1000)", timeout=1)
    assert r.error == "Timeout" and time.monotonic() - t0 < 3
    assert (await kernel.execute("print('quiet')")).text == "quiet"  # the cap is per cell


# --- timeout, cancel, crash ---------------------------------------------------------------


@module_loop
async def test_timeout_interrupts_and_keeps_state(kernel: Kernel) -> None:
    await kernel.execute("kept = 'yes'")
    t0 = time.monotonic()
    r = await kernel.execute("import time\nprint('started', flush=True)\ntime.sleep(30)", timeout=1)
    assert time.monotonic() - t0 < 4
    assert r.error == "Timeout"
    assert "started" in r.text  # output produced before the timeout is kept
    assert "TimeoutError: execution exceeded 1 s and was interrupted" in r.text
    assert (await kernel.execute("print(kept)")).text == "yes"


@module_loop
async def test_timeout_restarts_a_kernel_that_ignores_interrupts(kernel: Kernel) -> None:
    pid = kernel.pid
    code = "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(60)"
    r = await kernel.execute(code, timeout=1)
    assert r.error == "Timeout" and "restarted" in r.text and "lost" in r.text
    assert kernel.pid != pid and kernel.alive
    assert (await kernel.execute("print('back')")).text == "back"


@module_loop
async def test_cancel_interrupts_the_running_cell(kernel: Kernel) -> None:
    task = asyncio.create_task(kernel.execute("import time; time.sleep(60)", timeout=120))
    await asyncio.sleep(1)
    t0 = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    r = await kernel.execute("print('free')", timeout=5)
    assert r.text == "free" and r.error is None
    assert time.monotonic() - t0 < 3


@module_loop
@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("import os; os._exit(1)", "exited with code 1"),
        ("import ctypes; ctypes.string_at(0)", "SIGSEGV"),
    ],
)
async def test_crash_restarts_with_fresh_state(kernel: Kernel, code: str, reason: str) -> None:
    await kernel.execute("before = 1")
    r = await kernel.execute(code)
    assert r.error == "KernelDied"
    assert "died" in r.text and "restarted" in r.text and reason in r.text
    assert kernel.alive
    r = await kernel.execute("print('ok'); before")
    assert r.text.startswith("ok") and r.error == "NameError"


@module_loop
async def test_kernel_killed_between_cells_is_restarted_on_next_execute(kernel: Kernel) -> None:
    os.kill(kernel.pid, signal.SIGKILL)
    for _ in range(50):
        if not kernel.alive:
            break
        await asyncio.sleep(0.05)
    r = await kernel.execute("print('again')")
    assert r.error is None and "restarted" in r.text and r.text.endswith("again")


# --- rich output ----------------------------------------------------------------------------


@module_loop
async def test_matplotlib_figure_becomes_png(kernel: Kernel) -> None:
    r = await kernel.execute("import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()")
    assert r.error is None and len(r.images) == 1
    assert base64.b64decode(r.images[0])[:8] == b"\x89PNG\r\n\x1a\n"
    assert r.text == "[image: 1 figure shown to the user]"


@module_loop
async def test_plotly_show_gives_figure_json(kernel: Kernel) -> None:
    r = await kernel.execute(
        "import plotly.graph_objects as go\ngo.Figure(go.Bar(x=['a', 'b'], y=[1, 2])).show()"
    )
    assert r.error is None and len(r.plotly) == 1
    assert r.plotly[0]["data"][0]["type"] == "bar"
    assert r.text == "[plotly: 1 interactive figure shown to the user]"


# --- sandbox ----------------------------------------------------------------------------------


@module_loop
async def test_environment_is_scrubbed_and_home_is_scratch(kernel: Kernel) -> None:
    r = await kernel.execute(
        "import os\n"
        "print(sorted(k for k in ('STARTUI_SECRET_TOKEN', 'HF_TOKEN') if k in os.environ))\n"
        "print(os.getcwd() == os.environ['HOME'])\nprint(os.getcwd())"
    )
    assert r.text.splitlines() == ["[]", "True", kernel.workdir]
    assert all(v not in r.text for v in SECRETS.values())
    # Nothing outside the allow-list comes through from the app (STARTUI_DB_URL, ...).
    await kernel.execute("import json; json.dump(dict(os.environ), open('env.json', 'w'))")
    with open(os.path.join(kernel.workdir, "env.json")) as f:
        env = json.load(f)
    leaked = {k for k, v in os.environ.items() if k not in ENV_ALLOW and env.get(k) == v}
    assert not leaked


@module_loop
async def test_input_is_disabled(kernel: Kernel) -> None:
    r = await kernel.execute("name = input('Your name? ')")
    assert r.error == "InputNotAvailableError"
    assert "input() is not available: the code runs unattended" in r.text
    r = await kernel.execute("import sys; sys.stdin.read()")  # no hang on a real stdin
    assert r.text == "''"


@module_loop
async def test_default_limits_are_applied(kernel: Kernel) -> None:
    r = await kernel.execute(
        "import resource as r\n"
        "print([r.getrlimit(getattr(r, n))[0] for n in "
        "('RLIMIT_AS', 'RLIMIT_CPU', 'RLIMIT_FSIZE', 'RLIMIT_NPROC', 'RLIMIT_CORE')])"
    )
    lim, mb = KernelLimits(), 1024 * 1024
    mem, cpu, fsize, nproc, core = json.loads(r.text)
    assert [mem, cpu, fsize, core] == [
        lim.memory_mb * mb,
        lim.cpu_seconds,
        lim.file_size_mb * mb,
        0,
    ]
    # NPROC is per user, so it is set as headroom over the user's current processes+threads.
    assert abs(nproc - (_launcher().user_tasks() + lim.processes)) < 64


def test_user_tasks_counts_at_least_this_process() -> None:
    assert _launcher().user_tasks() >= threading.active_count()


@module_loop
async def test_limits_hold_even_as_root() -> None:
    """Memory and file size give errors the model can read; CPU time ends the process."""
    k = await Kernel.start(limits=KernelLimits(memory_mb=1024, file_size_mb=1, cpu_seconds=3))
    try:
        r = await k.execute("buf = bytearray(4 * 1024**3)")
        assert r.error == "MemoryError" and "MemoryError" in r.text
        r = await k.execute("open('big.bin', 'wb').write(b'x' * (2 * 1024 * 1024))")
        assert r.error == "OSError" and "File too large" in r.text
        assert (await k.execute("print('alive')")).text == "alive"
        r = await k.execute("while True:\n    pass", timeout=20)
        assert r.error == "KernelDied" and "CPU time limit of 3 s exceeded" in r.text
        assert (await k.execute("print('fresh budget')")).text == "fresh budget"
    finally:
        await k.shutdown()


# --- pool -------------------------------------------------------------------------------------


@module_loop
async def test_warm_acquire_is_instant_and_close_leaves_no_processes() -> None:
    async with KernelPool(size=2) as p:
        t0 = time.monotonic()
        k = await p.acquire()
        assert time.monotonic() - t0 < 0.05
        await k.execute("import subprocess; child = subprocess.Popen(['sleep', '60'])")
        child = int((await k.execute("child.pid")).text)
        warm = [w.pid for w in p._warm]
        pids = [k.pid, child, *warm]
        workdirs = [k.workdir, *(w.workdir for w in p._warm)]
    assert all(_gone(pid) for pid in pids), pids
    assert not any(os.path.exists(d) for d in workdirs)
    with pytest.raises(RuntimeError, match="closed"):
        await p.acquire()


@module_loop
async def test_empty_pool_boots_a_kernel_on_acquire(tmp_path) -> None:
    async with KernelPool(size=0, workdir_root=str(tmp_path)) as p:
        k = await p.acquire()
        assert k.workdir.startswith(str(tmp_path))
        assert (await k.execute("6 * 7")).text == "42"
        await p.release(k)
        assert not p._warm  # size 0: nothing is booted in the background
        assert p.booting == 0


@module_loop
async def test_kernels_of_one_pool_run_concurrently() -> None:
    async with KernelPool(size=1, timeout=10) as p:
        a, b = await asyncio.gather(p.acquire(), p.acquire())  # one warm, one booted on demand
        assert a is not b and a.pid != b.pid
        t0 = time.monotonic()
        ra, rb = await asyncio.gather(
            a.execute("import time; time.sleep(1.5); 'a'"),
            b.execute("import time; time.sleep(1.5); 'b'"),
        )
        assert (ra.text, rb.text) == ("'a'", "'b'")
        assert time.monotonic() - t0 < 2.8  # one after the other would take 3 s
