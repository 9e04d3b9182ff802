"""Kernels forked from the warm fork server, and the pool that boots them ahead of demand: a
forked kernel is as isolated as one started from scratch, the pool boots in parallel within
its bounds, and a dead fork server is replaced."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from startui.infer.kernels import KernelPool

module_loop = pytest.mark.asyncio(loop_scope="module")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "Z"


@module_loop
async def test_a_forked_kernel_is_the_servers_child_and_keeps_nothing_of_it(monkeypatch) -> None:
    monkeypatch.setenv("STARTUI_SECRET_TOKEN", "do-not-leak-2")
    async with KernelPool(size=2) as pool:
        server = pool.forkserver
        assert server is not None and server.pid
        a, b = await pool.acquire(), await pool.acquire()
        run = a.execute
        assert int((await run("import os; os.getppid()")).text) == server.pid
        # the kernel's environment is its own allow-list, and the app's secret is in neither
        # the kernel nor the server it was forked from
        assert (await run("os.environ.get('STARTUI_SECRET_TOKEN')")).text == ""
        assert (await run("os.environ['HOME'] == os.getcwd()")).text == "True"
        with open(f"/proc/{server.pid}/environ", "rb") as f:
            assert b"do-not-leak-2" not in f.read()
        # no way back to the server: the kernel holds none of the server's pipes (its control
        # channel to the app, its signal wake-up pipe)
        pipes = {os.readlink(f"/proc/{server.pid}/fd/{n}")
                 for n in os.listdir(f"/proc/{server.pid}/fd")} - {"/dev/null"}
        assert sum(p.startswith("pipe:") for p in pipes) >= 3, pipes
        listed = await run(
            "fds = []\n"
            "for n in os.listdir('/proc/self/fd'):\n"
            "    try:\n"
            "        fds.append(os.readlink(f'/proc/self/fd/{n}'))\n"
            "    except OSError:\n"
            "        pass  # the listing's own descriptor, closed by now\n"
            "sorted(fds)")
        assert listed.error is None and "/dev/null" in listed.text, listed.text
        assert not any(p in listed.text for p in pipes if p.startswith("pipe:")), listed.text
        # the sandbox went up in the forked child as in a kernel started from scratch
        assert a.isolation and a.isolation["pid"] == a.pid
        assert (await run("open('/etc/hostname').read() and 1")).text == "1"
        # each kernel draws its own random numbers, not a copy of the server's state
        draw = "import random; random.getrandbits(64)"
        assert (await run(draw)).text != (await b.execute(draw)).text
        await pool.release(a)
        await pool.release(b)
        kernels = [k.pid for k in pool._warm]
    assert _gone(server.pid) and all(_gone(pid) for pid in kernels)


@module_loop
async def test_killed_kernel_is_reported_with_its_signal() -> None:
    async with KernelPool(size=1) as pool:
        k = await pool.acquire()
        result = await k.execute("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
        assert result.error == "KernelDied" and "SIGKILL" in result.text
        assert (await k.execute("1 + 1")).text == "2"  # restarted, through the server
        await pool.release(k)


@module_loop
async def test_a_dead_fork_server_is_replaced() -> None:
    async with KernelPool(size=0) as pool:
        k = await pool.acquire()
        old = pool.forkserver.pid  # type: ignore[union-attr]
        os.kill(old, signal.SIGKILL)
        for _ in range(100):
            if not pool.forkserver.alive:  # type: ignore[union-attr]
                break
            await asyncio.sleep(0.05)
        fresh = await pool.acquire()
        assert (await fresh.execute("6 * 7")).text == "42"
        assert pool.forkserver.pid != old  # type: ignore[union-attr]
        await pool.release(fresh)
        await pool.release(k)


@module_loop
async def test_the_pool_boots_for_the_work_in_flight_in_parallel_within_its_ceiling() -> None:
    async with KernelPool(size=0, ceiling=5, boots=2) as pool:
        seen = []
        pool.expect(8)  # eight trajectories in flight, none holding a kernel yet
        for _ in range(400):
            seen.append((pool.warm, pool.booting, pool.busy))
            if pool.warm == 5:
                break
            await asyncio.sleep(0.01)
        assert pool.warm == 5, seen[-5:]  # the ceiling, not the eight asked for
        assert max(b for _, b, _ in seen) == 2  # two boots at once, never more
        assert all(w + b + u <= 5 for w, b, u in seen)
        held = [await pool.acquire() for _ in range(5)]
        pool.expect(-5)
        await asyncio.sleep(0.3)
        assert pool.booting == 0 and pool.warm == 0  # at the ceiling: nothing more is booted
        await pool.release(held.pop())
        for _ in range(200):  # three still expect one, and a place is free again
            if pool.warm == 1:
                break
            await asyncio.sleep(0.01)
        assert pool.warm == 1
        pool.expect(-3)
        for k in held:
            await pool.release(k)
        assert pool.memory()["uss"] > 1 << 20  # each idle kernel measured


@module_loop
async def test_warm_kernels_beyond_the_work_in_flight_are_shut_down_once_idle() -> None:
    # (idle_trim counts from each kernel's arrival: it must outlast the boots, even on a busy
    # machine, for "not at once" below to hold)
    async with KernelPool(size=1, ceiling=6, idle_trim=2.0) as pool:
        pool.expect(4)
        for _ in range(300):
            if pool.warm == 4:
                break
            await asyncio.sleep(0.01)
        assert pool.warm == 4
        pids = [k.pid for k in pool._warm]
        pool.expect(-4)  # the trajectories ended without running code
        assert pool.warm == 4  # not at once: the next ones may be about to start
        for _ in range(100):
            if pool.warm == 1:
                break
            await asyncio.sleep(0.05)
        await pool.settle()
        assert pool.warm == 1  # back to the pool's size
        assert sum(_gone(p) for p in pids) == 3
