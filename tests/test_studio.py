"""One visitor's session: run, steer, stop, continue, rewind — all saved as it streams."""

from __future__ import annotations

import asyncio

import pytest

from startui.ui.studio import RunSettings, Services, Studio
from tests.tour import REFLECTION, tour_backend


@pytest.fixture
async def services(tmp_path):
    from startui.store import Store

    store = Store(f"sqlite:///{tmp_path / 'studio.sqlite'}")
    s = Services(store, pool_size=1, backend_factory=lambda settings: tour_backend(0.002))
    yield s
    await s.close()
    store.close()


SETTINGS = RunSettings(backend="scripted", rounds=1, max_tokens=4000)


async def test_a_run_streams_and_is_saved_with_its_settings(services):
    studio = Studio(services)
    updates = [len(t.segments) async for t in studio.run("Sum of primes below 1000?", SETTINGS)]
    assert updates[-1] > updates[0]  # the page saw it grow
    traj = studio.trajectory
    assert traj.status == "finished" and traj.answer == "76127"
    outputs = [s for s in traj.segments if s.kind == "output"]
    assert outputs[0].meta.get("images"), "the plot was captured"
    saved = services.store.load_trajectory(traj.id)
    assert saved.text() == traj.text()
    assert saved.settings["ui"]["rounds"] == 1 and saved.settings["backend"] == "scripted"
    assert [s.id for s in services.store.list_trajectories()] == [traj.id]


async def test_a_hint_mid_stream_and_stop_then_continue(services):
    studio = Studio(services)
    stream = studio.run("Sum of primes below 1000?", SETTINGS)
    async for traj in stream:
        last = traj.segments[-1] if traj.segments else None
        if last is not None and last.kind == "think" and "Step 3" in last.text:
            studio.insert_hint("Count the primes too.")
            break
    async for traj in stream:  # the hint lands, the model follows it ...
        if any(s.source == "human" for s in traj.segments) and traj.segments[-1].kind == "code":
            assert studio.stop()  # ... and stop cuts it
    await stream.aclose()
    traj = studio.trajectory
    assert traj.status == "cancelled"
    human = [i for i, s in enumerate(traj.segments) if s.source == "human"]
    cut = traj.segments[human[0] - 1].text
    assert "Step 3" in cut and ("The kernel says 76127. " + REFLECTION).startswith(cut)
    saved = services.store.load_trajectory(traj.id)
    assert saved.status == "cancelled" and len(saved.segments) == len(traj.segments)
    # continue from the saved copy, as a reloaded page would
    async for _ in studio.resume(saved, SETTINGS):
        pass
    assert studio.trajectory.status == "finished"
    assert studio.trajectory.text().startswith(traj.text().rstrip("`\n"))


async def test_rewind_makes_a_branch_and_keeps_the_original(services):
    studio = Studio(services)
    async for _ in studio.run("Sum of primes below 1000?", SETTINGS):
        pass
    original = studio.trajectory
    code_at = next(i for i, s in enumerate(original.segments) if s.kind == "code")
    async for _ in studio.rewind(original, code_at, "print(2 + 2)", SETTINGS):
        pass
    branch = studio.trajectory
    assert branch.id != original.id
    assert branch.settings["parent_id"] == original.id
    assert branch.settings["branch_point"] == code_at
    assert branch.segments[code_at].text == "print(2 + 2)"
    assert branch.segments[code_at + 1].text == "4"  # the edited cell ran
    assert branch.segments[:code_at] == original.segments[:code_at]
    kept = services.store.load_trajectory(original.id)
    assert kept.text() == original.text()
    summaries = {s.id: s for s in services.store.list_trajectories()}
    assert summaries[branch.id].parent_id == original.id
    # the page lists both under the problem, and reopens the original from the store
    assert {s.id for s in services.branches(branch.id)} == {original.id, branch.id}
    assert {s.id for s in services.recent()} >= {original.id, branch.id}
    assert Studio(services).open(original.id).text() == original.text()


async def test_one_run_at_a_time_and_clear_errors(services):
    studio = Studio(services)
    with pytest.raises(ValueError, match="type a problem"):
        async for _ in studio.run("  ", SETTINGS):
            pass
    with pytest.raises(ValueError, match="nothing is running"):
        studio.insert_hint("x")
    with pytest.raises(ValueError, match="no trajectory on screen"):
        studio.open(None)
    with pytest.raises(ValueError, match="cannot open nope"):
        studio.open("nope")
    assert services.branches("nope") == []
    stream = studio.run("q", SETTINGS)
    await anext(stream)
    with pytest.raises(RuntimeError, match="in progress"):
        async for _ in studio.run("q2", SETTINGS):
            pass
    await stream.aclose()  # the page went away: the run is stopped for real
    await asyncio.sleep(0)
    assert not studio.running and studio.trajectory.status == "cancelled"
