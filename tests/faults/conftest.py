"""The fault suite's bookkeeping: each ``fault`` test's outcome goes to the ledger, and a session
that ran the concurrency test writes the figures to bench/RESULTS.md."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.faults import ledger
from tests.faults.support import ROOT


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fault(name): one fault of the fault suite (issue 11)")


def fault_name(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("fault")
    if marker is None:
        return None
    name = marker.args[0] if marker.args else item.name
    callspec = getattr(item, "callspec", None)
    return f"{name} [{callspec.id}]" if callspec is not None else name


@pytest.fixture
def fault(request: pytest.FixtureRequest) -> str:
    """This test's name in the ledger."""
    return fault_name(request.node) or request.node.name


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    outcome = yield
    report = outcome.get_result()
    name = fault_name(item)
    if name is None or not (report.when == "call" or report.failed or report.skipped):
        return
    if hasattr(report, "wasxfail"):
        ledger.outcome(name, "xfailed" if report.skipped else "xpassed")
    else:
        ledger.outcome(name, report.outcome)


def isolation_line() -> str:
    """The isolation layers a kernel gets on this machine, as ``python -m startui doctor`` prints
    them (a kernel of the hostile-code app reported them already, unless that module did not run:
    then the doctor is asked)."""
    if line := ledger.figures.get("isolation"):
        return line
    out = subprocess.run([sys.executable, "-m", "startui", "doctor", "--json"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    return json.loads(out.stdout)["isolation_line"]


def pytest_sessionfinish(session: pytest.Session) -> None:
    """After a session that ran the concurrency test the figures are printed; with
    STARTUI_RECORD_RESULTS=1 they also replace the "Fault suite" section of bench/RESULTS.md (a
    test run does not rewrite a tracked file unless asked)."""
    if "runs" in ledger.figures and ledger.faults:
        line = isolation_line().removeprefix("isolation: ")
        if os.environ.get("STARTUI_RECORD_RESULTS"):
            print("\n" + ledger.write(line))
        else:
            print("\n" + ledger.section(line))
