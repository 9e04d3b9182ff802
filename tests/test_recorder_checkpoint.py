"""A crash loses at most the last second of streamed text: the Recorder checkpoints the open
segment as it grows, so what was streamed is in the store while the run is still going."""

from __future__ import annotations

import asyncio

from startui.store import Recorder, Store


async def test_the_open_segment_is_checkpointed_as_it_streams(make_engine, tmp_path):
    words = " ".join(f"w{i}" for i in range(400))
    engine = make_engine([words + " The answer is \\boxed{1}."], delay=0.01, max_tokens=4096)
    with Store(f"sqlite:///{tmp_path / 'c.sqlite'}") as store:
        recorder = Recorder(store, checkpoint_every=0.2)
        session = engine.start("Count the words.")
        session.subscribe(recorder)
        task = asyncio.create_task(session.run())
        await asyncio.sleep(1.5)  # mid-stream: ~150 of ~800 pieces
        assert not task.done()
        tid = session.trajectory.id
        saved = await asyncio.to_thread(store.load_trajectory, tid)
        think = saved.segments[0]
        assert think.kind == "think" and not think.closed
        streamed = session.trajectory.segments[0].text
        # everything up to ~one checkpoint interval ago is stored, and it is a prefix of the text
        assert 40 < len(think.text) <= len(streamed) and streamed.startswith(think.text)
        assert len(streamed) - len(think.text) < 0.5 * len(streamed)
        session.stop()
        final = await task
        recorder.flush()
        assert store.load_trajectory(tid).segments == final.segments
