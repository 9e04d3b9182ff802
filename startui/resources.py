"""Where startui's files that are not library modules live, in a checkout and when installed.

- ``kernels/``: what runs inside a kernel process (the sandbox launcher and its start-up code).
- ``db/``: the Alembic environment and revisions.

In a checkout they are the top-level folders of those names. ``pip install .`` ships them inside
the package as ``startui/_kernels`` and ``startui/_db`` (``[tool.setuptools.package-dir]`` in
pyproject.toml maps the folders there), so an installed startui runs from any directory. This is
the one module that knows both places; everything else asks it.

Shared core: imports nothing of startui.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent  # the repository root, when startui runs from a checkout
SPACES_DATA = Path("/data")  # Hugging Face Spaces' persistent storage


def _folder(name: str) -> Path:
    spec = importlib.util.find_spec(f"startui._{name}")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    here = _CHECKOUT / name
    if here.is_dir():
        return here
    raise FileNotFoundError(
        f"startui's {name}/ folder is missing: reinstall startui (pip install .) or run it from "
        "a full checkout")


def kernels_dir() -> Path:
    """The folder holding ``sandbox_launch.py`` and ``sandbox_startup.py``."""
    return _folder("kernels")


def migrations_dir() -> Path:
    """The Alembic script location (``env.py``, ``versions/``)."""
    return _folder("db")


def in_checkout() -> bool:
    return (_CHECKOUT / "db" / "env.py").is_file() and (_CHECKOUT / "app.py").is_file()


def data_dir() -> Path:
    """Where the default SQLite store lives: ``STARTUI_HOME``, else ``/data`` when writable
    (Spaces), else ``db/`` in a checkout (git-ignored), else the user's data folder."""
    if os.environ.get("STARTUI_HOME"):
        return Path(os.environ["STARTUI_HOME"]).expanduser()
    if SPACES_DATA.is_dir() and os.access(SPACES_DATA, os.W_OK):
        return SPACES_DATA
    if in_checkout():
        return _CHECKOUT / "db"
    base = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(base) / "startui"
