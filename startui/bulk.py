"""Reading in bulk: what a draw of the Dataset tab or a selection over 100,000 trajectories
needs from the interpreter.

Such a read builds a few million small, long-lived objects (rows, digests, records, facts) at
once. CPython's cyclic garbage collector runs a full collection each time the long-lived
objects grew by a quarter, walking all of them every time: on 100,000 trajectories that was
more than half of a draw. None of these objects form reference cycles (reference counting frees
them), so the collector is paused while they are built and resumed after (nested and
concurrent pauses, from several of the app's threads, resume it once, when the last ends).
"""

from __future__ import annotations

import gc
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while the block runs (see the module docstring)."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()


try:  # a faster JSON decoder when one is installed (gradio brings orjson)
    from orjson import JSONDecodeError as _FastError
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - depends on the environment
    _fast_loads = None


def loads(text: str | bytes) -> Any:
    """``json.loads``, faster where orjson is installed (what it refuses, like ``NaN``, goes
    to ``json.loads``: the result is the same either way)."""
    if _fast_loads is not None:
        try:
            return _fast_loads(text)
        except _FastError:
            pass
    return json.loads(text)
