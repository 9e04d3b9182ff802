"""``startui doctor``: what this machine gives startui — the store, the embedded model, and the
sandbox layers a kernel really gets here (one kernel is started to find out)."""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import platform
import sys
from typing import Any

from startui import resources
from startui.infer.kernels import KernelPool
from startui.infer.sandbox import describe_isolation, isolation_is_weak


async def _isolation() -> dict[str, Any] | None:
    async with KernelPool(size=1, timeout=30) as pool:
        return pool.isolation


def facts(db: str | None) -> dict[str, Any]:
    try:
        version = importlib.metadata.version("startui")
    except importlib.metadata.PackageNotFoundError:
        version = "not installed"
    if resources.in_checkout():
        version += ", running from a checkout"
    out: dict[str, Any] = {"startui": version, "python": sys.version.split()[0],
                           "platform": platform.platform(), "root": os.geteuid() == 0}
    try:
        from startui.store import Store, describe_url

        with Store(db) as store:
            out["store"] = {"url": describe_url(store.url), **{
                k: v for k, v in store.stats().items() if k in ("problems", "trajectories")}}
            out["users"] = len(store.list_users())
    except Exception as e:  # noqa: BLE001 - the doctor reports, it does not crash
        out["store"] = {"error": str(e)}
    try:
        from startui.infer.backends.embedded import cache_dir, default_model_path

        out["model"] = str(default_model_path()) if (cache_dir()).is_dir() else "not assembled"
    except Exception as e:  # noqa: BLE001
        out["model"] = f"missing: {e}"
    try:
        report = asyncio.run(_isolation())
    except Exception as e:  # noqa: BLE001
        report = None
        out["kernel_error"] = str(e)
    out["isolation"] = report
    out["isolation_line"] = describe_isolation(report)
    out["public_mode"] = bool(os.environ.get("STARTUI_PUBLIC"))
    out["public_mode_ready"] = not isolation_is_weak(report) or bool(
        os.environ.get("STARTUI_ALLOW_WEAK_SANDBOX"))
    return out


def cmd_doctor(args: argparse.Namespace) -> int:
    f = facts(args.db)
    if args.json:
        print(json.dumps(f, indent=2, default=str))
    else:
        print(f"startui {f['startui']} · Python {f['python']} · {f['platform']}"
              + (" · running as root" if f["root"] else ""))
        store = f["store"]
        print("store: " + (store.get("error") or
                           f"{store['url']} ({store['problems']} problems, "
                           f"{store['trajectories']} trajectories, {f['users']} users)"))
        print(f"model: {f['model']}")
        print(f["isolation_line"])
        if f.get("kernel_error"):
            print(f"kernel: could not start: {f['kernel_error']}")
        if not f["public_mode_ready"]:
            print("public mode: would refuse to start (only rlimits hold here); set "
                  "STARTUI_ALLOW_WEAK_SANDBOX=1 to accept that")
    return 0 if f["public_mode_ready"] and not f.get("kernel_error") else 1


def register(sub: Any) -> None:
    p = sub.add_parser("doctor", help="what this machine gives startui: store, model, sandbox")
    p.add_argument("--db", default=None, help="database URL (env STARTUI_DB_URL)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_doctor)
