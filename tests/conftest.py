from __future__ import annotations

import os

import pytest

from startui.backends.scripted import ScriptedBackend
from startui.engine import Engine, EngineConfig
from startui.hints import HintPolicy


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Every test gets its own database and cache, never the user's."""
    monkeypatch.setenv("STARTUI_DB_URL", f"sqlite:///{tmp_path / 'startui.sqlite'}")
    if "STARTUI_CACHE" not in os.environ:  # the assembled model is shared: it is 1.1 GB
        monkeypatch.setenv("STARTUI_CACHE", os.path.expanduser("~/.cache/startui"))


@pytest.fixture(scope="session")
async def pool():
    from startui.kernels import KernelPool

    async with KernelPool(size=2, timeout=10) as p:
        yield p


@pytest.fixture
def make_engine(pool):
    def make(turns, *, rounds=0, conjunction_p=0.0, seed=0, delay=0.0, **config):
        backend = ScriptedBackend(turns, delay=delay)
        policy = HintPolicy(rounds=rounds, conjunction_p=conjunction_p, seed=seed)
        return Engine(backend, pool, policy, EngineConfig(**config))

    return make
