"""The fault suite's figures: every fault tried, whether the app survived it, what it did, and
how many stored items it lost. ``conftest.py`` fills in tried/survived from each ``fault`` test's
outcome; the tests add what happened and what was lost; the concurrency test adds its latencies.
At the end of a session that ran the concurrency test, the figures go to ``bench/RESULTS.md``
(section "Fault suite", replaced in place; the other sections are left as they are)."""

from __future__ import annotations

import datetime
import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "RESULTS.md"
HEADING = "## Fault suite"


@dataclass
class Fault:
    name: str
    outcome: str = "not run"  # passed | failed | xfailed | skipped
    what: str = ""
    lost: int = 0


faults: dict[str, Fault] = {}
figures: dict[str, Any] = {}  # the concurrency test's latencies and counts


def _fault(name: str) -> Fault:
    return faults.setdefault(name, Fault(name))


def record(name: str, *, what: str = "", lost: int = 0) -> None:
    """What the fault did (e.g. "PermissionError") and how many stored items it lost."""
    f = _fault(name)
    f.what, f.lost = what or f.what, f.lost + lost


def outcome(name: str, result: str) -> None:
    _fault(name).outcome = result


def totals() -> dict[str, int]:
    tried = [f for f in faults.values() if f.outcome != "not run"]
    return {"tried": len(tried), "survived": sum(f.outcome == "passed" for f in tried),
            "known_failures": sum(f.outcome == "xfailed" for f in tried),
            "lost": sum(f.lost for f in faults.values())}


def section(isolation: str) -> str:
    t = totals()
    day = datetime.date.today().isoformat()
    lines = [
        f"{HEADING} (`python -m pytest -q tests/faults`) — {day}", "",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
        f"{', running as root' if os.geteuid() == 0 else ''}. "
        f"Isolation layers a kernel got here (`python -m startui doctor`): {isolation}.", "",
        f"**{t['tried']} faults tried, {t['survived']} survived** (the app kept serving another "
        f"visitor, the faulting run was stored with what happened"
        + (f"; {t['known_failures']} known UI bugs marked xfail" if t["known_failures"] else "")
        + f"), **stored items lost: {t['lost']}**.", "",
    ]
    if figures:
        f = figures
        lines += [
            f"Concurrency: {f['visitors']} visitors (gradio_client, one thread each) starting "
            f"runs back to back for {f['seconds']:.0f} s against one app (scripted model, "
            f"{f['pieces']} pieces per run at {f['delay'] * 1000:g} ms each, text only; the "
            f"generation queue admits {f['visitors']} at once).", "",
            "| what | p50 | p95 | max |", "|---|---:|---:|---:|",
            f"| time to first update | {f['ttfu_p50'] * 1000:.0f} ms | "
            f"{f['ttfu_p95'] * 1000:.0f} ms | {f['ttfu_max'] * 1000:.0f} ms |",
            f"| time to first streamed text | {f['ttft_p50'] * 1000:.0f} ms | "
            f"{f['ttft_p95'] * 1000:.0f} ms | |",
            f"| run duration (submit → final result) | {f['run_p50']:.2f} s | "
            f"{f['run_p95']:.2f} s | {f['run_max']:.2f} s |", "",
            f"{f['runs']} runs finished, {f['errors']} errors, every run stored "
            f"({f['stored']} of {f['runs']}). Baseline, the same run streamed alone on the same "
            f"app (median of 3): {f['alone'] * 1000:.0f} ms to the first update, "
            f"{f['alone_text'] * 1000:.0f} ms to the first text, {f['alone_run']:.2f} s in all.",
            "",
        ]
    lines += ["| fault | outcome | what happened |", "|---|---|---|"]
    for fault in faults.values():
        if fault.outcome == "not run":
            continue
        what = fault.what.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {fault.name} | {fault.outcome} | {what} |")
    return "\n".join(lines) + "\n"


def write(isolation: str, path: Path = RESULTS) -> str:
    """Replace (or append) the "Fault suite" section of RESULTS.md; returns the section."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    new = section(isolation)
    pattern = re.compile(rf"^{re.escape(HEADING)}.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: new + "\n", text, count=1).rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + new
    path.write_text(text)
    return new
