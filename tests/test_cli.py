"""`python -m startui run`, as a script or a person uses it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRIMES = "print(sum(p for p in range(2, 30) if all(p % d for d in range(2, p))))"


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "startui", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                               "HOME": str(cwd), "STARTUI_DB_URL": f"sqlite:///{cwd}/s.sqlite"})


def write_script(tmp_path: Path, turns: list[str]) -> str:
    path = tmp_path / "script.json"
    path.write_text(json.dumps(turns))
    return str(path)


def test_json_mode_prints_events_then_the_whole_trajectory(tmp_path):
    script = write_script(tmp_path, [f"Compute.\n```python\n{PRIMES}\n```", "So \\boxed{129}."])
    proc = run_cli("run", "Sum of primes below 30?", "--backend", "scripted", "--model", script,
                   "--json", "--rounds", "0", "--no-save", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert lines[0]["type"] == "trajectory_started"
    types = {x.get("type") for x in lines}
    assert {"text_delta", "segment_finished", "trajectory_finished"} <= types
    final = lines[-1]
    assert [(s["kind"], s["source"]) for s in final["segments"]] == [
        ("think", "model"), ("code", "model"), ("output", "kernel"), ("answer", "model")]
    assert final["segments"][2]["text"] == "129"
    assert final["answer"] == "129" and final["status"] == "finished"


def test_terminal_mode_tells_the_parts_apart(tmp_path):
    script = write_script(tmp_path, ["It is 129.", f"{PRIMES}\n```", "Checked: \\boxed{129}."])
    proc = run_cli("run", "Sum of primes below 30?", "--backend", "scripted", "--model", script,
                   "--no-color", "--no-save", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "[hint: auto · self-reflection] Wait, I can use Python to check" in out
    assert "```python\n" + PRIMES in out
    assert "```output\n129\n```" in out
    assert out.rstrip().endswith("Answer: 129")


def test_bad_input_is_a_clear_error(tmp_path):
    proc = run_cli("run", "q", "--backend", "nope", "--no-save", cwd=tmp_path)
    assert proc.returncode == 2 and "unknown backend 'nope'" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_cli("run", "q", "--backend", "llamacpp", "--model", str(tmp_path / "missing.gguf"),
                   "--no-save", cwd=tmp_path)
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_cli("run", "q", "--conjunction-p", "2", "--backend", "scripted", "--no-save",
                   cwd=tmp_path)
    assert proc.returncode == 2 and "probability" in proc.stderr


def test_run_saves_to_the_store_unless_told_not_to(tmp_path):
    turns = [f"Let me add them up.\n```python\n{PRIMES}\n```", "The kernel agrees: \\boxed{129}."]
    script = write_script(tmp_path, turns)
    proc = run_cli("run", "primes?", "--backend", "scripted", "--model", script, "--rounds", "0",
                   "--no-color", "--no-save", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    # --no-save still shows the whole run: the thinking, the code, the kernel's output, the answer
    out = proc.stdout
    assert out.startswith("Let me add them up.\n")
    assert f"```python\n{PRIMES}\n```" in out
    assert "```output\n129\n```" in out
    assert "The kernel agrees: \\boxed{129}." in out
    assert out.rstrip().splitlines()[-1] == "Answer: 129"
    # ... and nothing of it reached the store at STARTUI_DB_URL
    stats = json.loads(run_cli("stats", "--json", cwd=tmp_path).stdout)
    assert (stats["trajectories"], stats["segments"], stats["problems"], stats["runs"]) == (
        0, 0, 0, 0)
    common = ("--backend", "scripted", "--model", script, "--rounds", "0", "--json")
    final = json.loads(run_cli("run", "primes?", *common, cwd=tmp_path).stdout.splitlines()[-1])
    stats = json.loads(run_cli("stats", "--json", cwd=tmp_path).stdout)
    assert stats["trajectories"] == 1 and stats["segments"] == len(final["segments"])
    assert stats["by_status"]["finished"] == 1


def test_each_part_has_its_colour_in_a_terminal():
    import io

    from startui.cli.run import COLORS, TerminalPrinter
    from startui.events import Notice, SegmentStarted, TextDelta
    from startui.trajectory import Segment

    out = io.StringIO()
    show = TerminalPrinter(out, color=True)
    show(SegmentStarted("t", 0, Segment("think", "")))
    show(TextDelta("t", 0, "thinking"))
    show(SegmentStarted("t", 1, Segment("code", "")))
    show(TextDelta("t", 1, "x = 1"))
    show(SegmentStarted("t", 2, Segment("output", "boom", "kernel", {"error": "ValueError"})))
    show(Notice("t", "kernel restarted", "warning"))
    text = out.getvalue()
    assert text.startswith("thinking")  # thinking in the terminal's own colour
    assert COLORS["code"] + "x = 1" + COLORS["reset"] in text
    assert COLORS["error"] + "```output\nboom" in text  # an error stands out
    assert COLORS["notice"] + "\n[warning] kernel restarted" in text
