"""What a deployment installs and runs, checked without docker (it cannot run here): every file
the Dockerfile copies exists, every command it runs works, its installs are the ones CI tests,
and neither the app nor its image installs torch."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out, buf = [], ""
    for line in text.splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        buf += line.rstrip("\\").rstrip() + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            word, _, rest = buf.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            buf = ""
    return out


def requirement_files(path: Path) -> set[Path]:
    """``path`` and every file it pulls in with ``-r``."""
    found = {path}
    for line in path.read_text().splitlines():
        m = re.match(r"-r\s+(\S+)", line.strip())
        if m:
            found |= requirement_files(path.parent / m.group(1))
    return found


def requirements(path: Path) -> set[str]:
    names = set()
    for f in requirement_files(path):
        for line in f.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                names.add(re.split(r"[=<>\[ ;]", line, maxsplit=1)[0].lower())
    return names


DOCKER = instructions((ROOT / "Dockerfile").read_text())


def test_every_file_the_image_copies_exists():
    copies = [shlex.split(args) for word, args in DOCKER if word == "COPY"]
    assert copies
    for parts in copies:
        sources = [p for p in parts[:-1] if not p.startswith("--")]
        for src in sources:
            if src != ".":
                assert (ROOT / src).exists(), f"Dockerfile copies {src}, which does not exist"


def test_the_image_installs_what_ci_tests_and_no_torch():
    runs = " && ".join(args for word, args in DOCKER if word == "RUN")
    installed = {ROOT / m for m in re.findall(r"pip install -r (\S+)", runs)}
    assert installed == {ROOT / "requirements.txt"}
    ci = (ROOT / ".ci" / "run").read_text()
    ci_files = set()
    for m in re.findall(r"pip install[^\n&]*?-r (\S+)", ci):
        ci_files |= requirement_files(ROOT / m)
    for f in installed:
        assert requirement_files(f) <= ci_files, f"CI does not install {f.name}"
    app = requirements(ROOT / "requirements.txt")
    assert "torch" not in app and "vllm" not in app and "trl" not in app
    assert "torch" in requirements(ROOT / "requirements-dev.txt")  # the tests still cover it


def test_the_image_is_public_offline_and_sandboxed():
    env = " ".join(args for word, args in DOCKER if word == "ENV")
    assert "STARTUI_PUBLIC=1" in env and "HF_HUB_OFFLINE=1" in env
    runs = " ".join(args for word, args in DOCKER if word == "RUN")
    assert "useradd" in runs and " sandbox" in runs
    assert ("USER", "user") in DOCKER
    cmd = next(args for word, args in DOCKER if word == "CMD")
    assert (ROOT / eval(cmd)[-1]).is_file()  # noqa: S307 - the exec form is a JSON list


def test_the_model_assembly_step_runs_as_the_image_runs_it(tmp_path):
    """The build's `python /tmp/embedded.py`: a standalone script (no startui import) that
    prints the verified model's path."""
    script = tmp_path / "embedded.py"
    script.write_text((ROOT / "startui" / "infer" / "backends" / "embedded.py").read_text())
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    path = Path(out.stdout.strip().splitlines()[-1])
    assert path.is_file() and path.stat().st_size == 1_117_320_768


def test_the_image_leaves_out_local_state():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".git" in ignored and "db/*.sqlite*" in ignored


def test_the_readme_is_a_docker_space():
    text = (ROOT / "README.md").read_text()
    assert text.startswith("---\n")
    front = text.split("---\n", 2)[1]
    assert "sdk: docker" in front and "app_port: 7860" in front and "hf_oauth: true" in front


def test_the_transformers_backend_says_which_file_to_install(monkeypatch, tiny_dir):
    from startui.infer.backends import BackendError
    from startui.infer.backends.hf import TransformersBackend

    monkeypatch.setitem(sys.modules, "torch", None)  # as on a machine without torch
    backend = TransformersBackend(str(tiny_dir))
    with pytest.raises(BackendError, match="requirements-transformers.txt"):
        backend.load()


def test_doctor_reports_the_sandbox_this_machine_gives(tmp_path, capsys, monkeypatch):
    from startui.cli import main

    monkeypatch.delenv("STARTUI_ALLOW_WEAK_SANDBOX", raising=False)
    assert main(["doctor", "--json", "--db", f"sqlite:///{tmp_path / 'd.sqlite'}"]) == 0
    import json

    facts = json.loads(capsys.readouterr().out)
    assert facts["store"]["trajectories"] == 0
    assert facts["isolation"]["landlock"]["abi"] >= 1  # Landlock ABI 7 on these machines
    assert facts["isolation_line"].startswith("isolation: Landlock ABI")
    assert facts["public_mode_ready"] is True
