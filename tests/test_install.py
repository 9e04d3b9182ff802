"""startui as its users get it: ``pip install .`` into a fresh environment, run from elsewhere.

Each install goes into a new venv made with ``--system-site-packages``, so the dependencies already
installed here are reused and nothing heavy is downloaded; startui itself is built the way pip
builds it for a user (a wheel, default build isolation). Everything then runs with its working
directory outside the checkout and ``PYTHONPATH`` unset, so only the installed copy can be
imported. setuptools' build folders go to a temporary directory (``DIST_EXTRA_CONFIG``), never
into the checkout.

The README's "As a library" example is run as written, with two textual substitutions: a scripted
backend for the embedded model, and a temporary database for the default store.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment minus anything that would let the checkout be imported."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    env.update(extra)
    return env


def make_venv(tmp: Path, *pip_args: str) -> Path:
    """A venv in ``tmp/venv`` with startui installed by ``pip install -q *pip_args``."""
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True, capture_output=True, timeout=120)
    cfg = tmp / "setuptools-dirs.cfg"  # keep build/ and *.egg-info out of the checkout
    cfg.write_text(f"[build]\nbuild_base = {tmp / 'build'}\n[egg_info]\negg_base = {tmp}\n")
    proc = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *pip_args],
                          cwd=tmp, env=clean_env(DIST_EXTRA_CONFIG=str(cfg)), text=True,
                          capture_output=True, timeout=300)
    assert proc.returncode == 0, f"pip install {' '.join(pip_args)} failed:\n{proc.stderr}"
    return venv


def run_in(venv: Path, cwd: Path, *args: str, timeout: float = 120,
           **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(venv / "bin" / args[0]), *args[1:]], cwd=cwd, text=True,
                          capture_output=True, timeout=timeout, env=clean_env(**env))


# Run by the venv's python: the installed package, its kernel launcher and its migrations.
INSTALLED_CHECK = textwrap.dedent("""
    import asyncio, json, sqlite3, sys, sysconfig
    from pathlib import Path

    import startui
    from startui import resources
    from startui.infer import kernels
    from startui.store import migrations

    site = Path(sysconfig.get_path("purelib")).resolve()
    def installed(path):
        return Path(path).resolve().is_relative_to(site)

    assert installed(startui.__file__), (startui.__file__, str(site))
    assert installed(kernels.LAUNCHER) and kernels.LAUNCHER.is_file(), kernels.LAUNCHER
    assert installed(resources.migrations_dir()), resources.migrations_dir()

    async def run_cell():
        async with startui.KernelPool(size=1) as pool:
            kernel = await pool.acquire()
            try:
                cmdline = Path(f"/proc/{kernel.pid}/cmdline").read_bytes().split(b"\\0")
                result = await kernel.execute("print(6*7)")
            finally:
                await pool.release(kernel)
        return [a.decode() for a in cmdline if a], result

    cmdline, result = asyncio.run(run_cell())
    assert result.error is None and result.text.strip() == "42", result
    # the kernel process really was started from the installed launcher
    assert str(kernels.LAUNCHER) in cmdline, cmdline

    db = Path(sys.argv[1])
    with startui.Store(f"sqlite:///{db}") as store:  # upgrades the new file to head
        stats = store.stats()
    con = sqlite3.connect(db)
    at = {r[0] for r in con.execute("SELECT version_num FROM alembic_version")}
    con.close()
    script = migrations.script()
    assert at == set(script.get_heads()), (at, script.get_heads())
    assert installed(script.dir), script.dir
    print(json.dumps({"stats": stats, "revision": sorted(at),
                      "versions": sorted(p.name for p in Path(script.versions).glob("*.py"))}))
""")


def test_pip_install_runs_from_anywhere(tmp_path):
    venv = make_venv(tmp_path, str(ROOT))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    help_ = run_in(venv, elsewhere, "startui", "run", "--help")
    assert help_.returncode == 0, help_.stderr
    assert "--backend" in help_.stdout and "--no-save" in help_.stdout

    check = elsewhere / "check.py"
    check.write_text(INSTALLED_CHECK)
    proc = run_in(venv, elsewhere, "python", str(check), str(tmp_path / "x.sqlite"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout.splitlines()[-1])
    assert report["stats"]["trajectories"] == 0 and report["stats"]["problems"] == 0
    # every revision of the checkout shipped as package data
    shipped = sorted(p.name for p in (ROOT / "db" / "versions").glob("*.py"))
    assert report["versions"] == shipped


def test_editable_install_uses_the_checkouts_folders(tmp_path):
    venv = make_venv(tmp_path, "-e", str(ROOT))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = ("import json, startui\nfrom startui import resources\n"
            "print(json.dumps([startui.__file__, str(resources.kernels_dir()), "
            "str(resources.migrations_dir())]))")
    proc = run_in(venv, elsewhere, "python", "-c", code)
    assert proc.returncode == 0, proc.stderr
    module, kernels, migrations = (Path(p).resolve()
                                   for p in json.loads(proc.stdout.splitlines()[-1]))
    assert module == ROOT / "startui" / "__init__.py"
    assert kernels == ROOT / "kernels" and (kernels / "sandbox_launch.py").is_file()
    assert migrations == ROOT / "db" and (migrations / "env.py").is_file()


# --- the README's library example -------------------------------------------------------------

PRIMES = "print(sum(p for p in range(2, 100) if all(p % d for d in range(2, p))))"
TURNS = [  # what the scripted "model" writes: a cell, an answer, then the hint round's cell
    f"The primes below 100, summed:\n```python\n{PRIMES}\n```",
    "So the sum is \\boxed{1060}.",
    "print(1060 == 2 + 3 + 5 + 7 + sum(p for p in range(11, 100, 2) "
    "if all(p % d for d in range(3, p, 2))))\n```",
    "Checked twice: \\boxed{1060}.",
]


def readme_library_example() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    head = readme.find("### As a library")
    assert head >= 0, "README.md has no '### As a library' section"
    m = re.compile(r"```python\n(.*?)```", re.DOTALL).search(readme, head)
    assert m, "no ```python block after '### As a library' in README.md"
    return m.group(1)


def test_the_readmes_library_example_runs_and_saves_its_trajectory(tmp_path):
    code = readme_library_example()
    db = tmp_path / "example.sqlite"
    for old, new in ((' make_backend("llamacpp")', f" ScriptedBackend({TURNS!r})"),
                     (" Store()", f' Store("sqlite:///{db}")')):
        assert code.count(old) == 1, f"the README example no longer has {old.strip()!r}"
        code = code.replace(old, new)
    script = tmp_path / "example.py"
    script.write_text("from startui.infer.backends.scripted import ScriptedBackend\n" + code)
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, text=True,
                          capture_output=True, timeout=120,
                          env=clean_env(PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stderr
    answer, tool_calls, traj_id = proc.stdout.split()  # print(traj.answer, traj.tool_calls, id)
    assert (answer, tool_calls) == ("1060", "2")

    from startui.store import Store

    with Store(f"sqlite:///{db}") as store:
        saved = store.load_trajectory(traj_id)
    assert saved.status == "finished" and saved.answer == "1060" and saved.tool_calls == 2
    assert "What is the sum of the primes below 100?" in saved.prompt
    code_cells = [s for s in saved.segments if s.kind == "code"]
    outputs = [s for s in saved.segments if s.kind == "output"]
    assert code_cells[0].text == PRIMES
    assert [(o.source, o.text) for o in outputs] == [("kernel", "1060"), ("kernel", "True")]
    hints = [s for s in saved.segments if s.kind == "hint"]
    assert len(hints) == 1 and hints[0].source == "auto"  # HintPolicy(rounds=1)
