"""START Studio: watch, steer and harvest a reasoning model's tool-using thoughts.

The public API, in the order of the data flow (problem → engine → store → review → export)::

    import asyncio
    from startui import Engine, HintPolicy, KernelPool, Recorder, Store, make_backend

    async def main():
        backend = make_backend("llamacpp")               # the embedded default model, on a CPU
        with Store() as store:                           # SQLite by default; any database URL
            async with KernelPool(size=1) as kernels:    # sandboxed Jupyter kernels
                engine = Engine(backend, kernels, HintPolicy(rounds=1))
                session = engine.start("What is the sum of the primes below 100?")
                session.subscribe(Recorder(store))       # every segment saved as it ends
                traj = await session.run()
        await backend.close()
        print(traj.answer, traj.tool_calls, traj.id)

    asyncio.run(main())

Names load on first use, so ``import startui`` stays cheap and pulls in no stage it does not
need (the kernel process imports nothing of this).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

_API = {
    # the shared core
    "Trajectory": "startui.trajectory", "Segment": "startui.trajectory",
    "Problem": "startui.trajectory",
    # Hint-infer
    "Engine": "startui.infer.engine", "EngineConfig": "startui.infer.engine",
    "HintPolicy": "startui.infer.hints", "HintLibrary": "startui.infer.hints",
    "KernelPool": "startui.infer.kernels",
    "Backend": "startui.infer.backends", "make_backend": "startui.infer.backends",
    # the store
    "Store": "startui.store", "Recorder": "startui.store",
    # Hint-RFT
    "select": "startui.rft.select", "SelectConfig": "startui.rft.select",
    "export": "startui.rft.export", "ExportConfig": "startui.rft.export",
}
__all__ = ["Backend", "Engine", "EngineConfig", "ExportConfig", "HintLibrary", "HintPolicy",
           "KernelPool", "Problem", "Recorder", "SelectConfig", "Segment", "Store", "Trajectory",
           "export", "make_backend", "select"]

if TYPE_CHECKING:
    from startui.infer.backends import Backend, make_backend
    from startui.infer.engine import Engine, EngineConfig
    from startui.infer.hints import HintLibrary, HintPolicy
    from startui.infer.kernels import KernelPool
    from startui.rft.export import ExportConfig, export
    from startui.rft.select import SelectConfig, select
    from startui.store import Recorder, Store
    from startui.trajectory import Problem, Segment, Trajectory


def __getattr__(name: str) -> Any:
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'startui' has no attribute {name!r}")
