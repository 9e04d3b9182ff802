"""Malformed problem files, through ``python -m startui import`` and ``import_problems``: each
is refused with a message that says what is wrong and where, exits 1, and leaves the store as it
was. A 100 MB line is refused without being read into memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.faults import ledger
from tests.faults.support import ROOT

GOOD = [{"id": "g1", "question": "What is 2 + 2?", "answer": "4"},
        {"id": "g2", "question": "What is 3 * 3?", "answer": "9"}]
BIG_MB = 100


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def good_line(i: int) -> bytes:
    return json.dumps({"id": f"new{i}", "question": f"What is {i} + 1?"}).encode()


def big_line_file(path: Path) -> Path:
    """A good line, then one JSON object with a 100 MB question, written 1 MB at a time."""
    with path.open("wb") as f:
        f.write(good_line(1) + b"\n")
        f.write(b'{"id": "huge", "question": "')
        chunk = b"x" * (1 << 20)
        for _ in range(BIG_MB):
            f.write(chunk)
        f.write(b'"}\n')
    return path


CASES = {  # name → (file maker, what the message must say)
    "bad JSON": (lambda d: write_lines(d / "bad.jsonl", [good_line(1), b'{"question": "unclosed']),
                 ["line 2", "not valid JSON"]),
    "latin-1 bytes in a .jsonl": (
        lambda d: write_lines(d / "latin1.jsonl", [good_line(1),
                                                   '{"question": "café?"}'.encode("latin-1")]),
        ["line 2", "not UTF-8", "0xe9"]),
    "missing fields": (lambda d: write_lines(d / "missing.jsonl", [good_line(1),
                                                                   b'{"answer": "4"}']),
                       ["line 2", "no question"]),
    f"a {BIG_MB} MB line": (lambda d: big_line_file(d / "big.jsonl"),
                            ["line 2", "longer than 10 MB", "not read"]),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("imports")
    made = {name: make(d) for name, (make, _) in CASES.items()}
    made["good"] = write_lines(d / "good.jsonl", [json.dumps(r).encode() for r in GOOD])
    yield made
    for path in made.values():
        path.unlink(missing_ok=True)


def counts(url: str) -> dict:
    from startui.store import Store

    with Store(url) as store:
        stats = store.stats()
        problems = sorted(p.id for p in store.list_problems(limit=10_000))
    return {"stats": stats, "problems": problems}


def cli(*args: str) -> tuple[int, str, int]:
    """``python -m startui …``: exit code, stderr and stdout, and the peak RSS in MB."""
    proc = subprocess.Popen([sys.executable, "-m", "startui", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.stdout.read().decode()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, out, usage.ru_maxrss // 1024


@pytest.mark.fault("malformed import, python -m startui import")
@pytest.mark.parametrize("case", list(CASES))
def test_the_cli_refuses_a_malformed_file_and_changes_nothing(files, tmp_path, case, fault):
    from startui.store import Store
    from startui.store.problems import import_problems

    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    with Store(url) as store:
        import_problems(store, files["good"])
    before = counts(url)
    code, out, _ = cli("import", str(files[case]), "--db", url)
    after = counts(url)
    ledger.record(fault, what=out.strip().splitlines()[-1].strip(),
                  lost=len(set(before["problems"]) - set(after["problems"])))
    assert code == 1, out
    assert out.startswith("error: ") and "nothing was imported" in out
    for needle in CASES[case][1]:
        assert needle in out, out
    assert "Traceback" not in out
    assert before == after


@pytest.mark.fault("malformed import, import_problems")
@pytest.mark.parametrize("case", list(CASES))
def test_the_library_refuses_a_malformed_file_and_changes_nothing(files, tmp_path, case, fault):
    from startui.store import Store
    from startui.store.problems import ProblemImportError, import_problems

    with Store(f"sqlite:///{tmp_path / 'lib.sqlite'}") as store:
        import_problems(store, files["good"])
        before = store.stats()
        with pytest.raises(ProblemImportError) as e:
            import_problems(store, files[case])
        ledger.record(fault, what=str(e.value).splitlines()[-1].strip())
        assert store.stats() == before
    for needle in CASES[case][1]:
        assert needle in str(e.value)
    report = e.value.report
    assert report is not None and report.rows == 2 and len(report.errors) == 1
    assert report.errors[0].where == "line 2"


def test_a_100_mb_line_is_never_held_in_memory(files, tmp_path):
    """Peak memory of the import with the 100 MB line, against the same command on a small file:
    the importer reads at most 10 MB of a line (then skips the rest in 1 MB reads)."""
    url = f"sqlite:///{tmp_path / 'mem.sqlite'}"
    code, _, small = cli("import", str(files["good"]), "--db", url)
    assert code == 0
    code, out, big = cli("import", str(files[f"a {BIG_MB} MB line"]), "--db", url)
    assert code == 1, out
    print(f"peak RSS: {big} MB with the {BIG_MB} MB line, {small} MB for a 2-line file")
    assert big - small < 40, (big, small)
