"""What the Dataset tab does, without Gradio: the export as a zip, a batch Hint-infer run started
from the app, and an admin's user management — each through the library code the command line
runs (:func:`startui.rft.export.export`, :class:`startui.rft.generate.Batch`,
:mod:`startui.review.users`), with the same permission checks.

Who may do what: anyone who may see the tab reads the dashboards and previews an export's
selection; exporting needs the role ``export`` allows (admin, reviewer); importing problems,
starting a batch and managing users need an admin — on a laptop with no users configured (and
not in public mode) the one person there may import and generate, as they may from a terminal.
A public deployment's visitor who did not log in may do nothing here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
import tempfile
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from startui.infer.engine import EngineConfig
from startui.infer.hints import HintPolicy
from startui.review import users
from startui.review.users import PermissionDenied
from startui.rft.export import FORMATS, ExportConfig, ExportResult, export
from startui.rft.filters import FilterConfig, ModifyConfig
from startui.rft.generate import PAPER_PRESET, Batch, BatchConfig, BatchReport
from startui.rft.select import SelectConfig, Selection, select
from startui.trajectory import Problem
from startui.ui.settings import RunSettings

log = logging.getLogger(__name__)

# The export's options, as ``python -m startui export`` names its flags (API callers send these)
EXPORT_OPTIONS = ("dataset", "per_problem", "keep_incorrect", "modes", "disable", "max_chars",
                  "max_tokens", "max_tool_calls", "ngram", "max_ngram_repeats", "mask_hints",
                  "strip_human_hints", "normalize_outputs", "max_output_chars", "formats")


# --- who may -------------------------------------------------------------------------------

def may_look(name: str) -> None:
    """A public deployment's anonymous visitor sees nothing of the Dataset tab."""
    if name == users.ANONYMOUS:
        raise PermissionDenied("log in to use the Dataset tab: this public deployment lets "
                               "visitors try the model, and its team build datasets")


def require_admin(store: Any, name: str, what: str, *, public: bool) -> None:
    """Problem import and batch generation: an admin; with no users configured, outside public
    mode, the one person at the keyboard."""
    may_look(name)
    if not public and not store.list_users():
        return
    role = users.role_of(store, name)
    if role != "admin":
        raise PermissionDenied(f"{name} is a {role}: {what} needs the role admin (an admin can "
                               f"change it with `python -m startui users role {name} admin`)")


# --- export ----------------------------------------------------------------------------------

def csv_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v).strip() for v in value if str(v).strip()]


def whole(value: Any) -> int | None:
    """A whole number from a form or JSON (None, "" and 0: not given)."""
    if value in (None, "", 0, "0"):
        return None
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"{value} is not a whole number")
    return int(value)


def export_configs(options: Mapping[str, Any]) -> tuple[SelectConfig, ExportConfig]:
    """The selection and export configs from ``python -m startui export``'s options (unknown keys
    are refused: a typo must not silently export something else)."""
    unknown = sorted(set(options) - set(EXPORT_OPTIONS))
    if unknown:
        raise ValueError(f"unknown export option(s) {', '.join(unknown)}; the options are "
                         f"{', '.join(EXPORT_OPTIONS)}")
    f = FilterConfig()
    m = ModifyConfig()
    o = dict(options)
    filters = FilterConfig(
        ngram=whole(o.get("ngram")) or f.ngram,
        max_ngram_repeats=whole(o.get("max_ngram_repeats")) or f.max_ngram_repeats,
        max_chars=whole(o.get("max_chars")) if "max_chars" in o else f.max_chars,
        max_tokens=whole(o.get("max_tokens")),
        max_tool_calls=int(o["max_tool_calls"]) if o.get("max_tool_calls") not in (None, "")
        else f.max_tool_calls,
        disabled=tuple(csv_list(o.get("disable"))))
    modes = tuple(csv_list(o.get("modes"))) or None
    select_cfg = SelectConfig(dataset=o.get("dataset") or "start",
                              per_problem=whole(o.get("per_problem")),
                              require_correct=not o.get("keep_incorrect"), modes=modes,
                              filters=filters)
    export_cfg = ExportConfig(
        formats=tuple(csv_list(o.get("formats")) or ("jsonl", "parquet")),
        mask_hints=o.get("mask_hints") or "none",
        modify=ModifyConfig(strip_human_hints=bool(o.get("strip_human_hints")),
                            normalize_outputs=bool(o.get("normalize_outputs")),
                            max_output_chars=whole(o.get("max_output_chars"))
                            or m.max_output_chars))
    return select_cfg, export_cfg


def run_ids(store: Any, runs: Any) -> list[str]:
    """The runs to export, by name or id (at least one)."""
    names = csv_list(runs)
    if not names:
        raise ValueError("pick at least one run to export")
    return store.resolve_runs(names)


def preview(store: Any, runs: Any, options: Mapping[str, Any], *, by: str) -> Selection:
    """What the export would keep, and what each filter dropped: nothing written."""
    may_look(by)
    select_cfg, _ = export_configs(options)
    return select(store, run_ids(store, runs), select_cfg)


@dataclass
class ExportZip:
    path: Path
    result: ExportResult

    @property
    def manifest(self) -> dict[str, Any]:
        return self.result.manifest


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:60] or "export"


def export_zip(store: Any, runs: Any, options: Mapping[str, Any], *, by: str,
               root: str | Path | None = None) -> ExportZip:
    """Export (the code ``python -m startui export`` runs, refused unless ``by`` may export)
    into a fresh folder under ``root`` and zip it: the data files, the ``dataset/`` folder when
    asked for, and ``manifest.json``."""
    may_look(by)
    users.require(store, by, "export")  # before any work; export() checks again
    select_cfg, export_cfg = export_configs(options)
    ids = run_ids(store, runs)
    root = Path(root or tempfile.gettempdir()) / "startui-exports"
    prune(root)
    work = Path(tempfile.mkdtemp(prefix="export-", dir=_mkdir(root)))
    result = export(store, work / "dataset", ids, select_config=select_cfg, config=export_cfg,
                    by=by)
    name = f"startui-{select_cfg.dataset}-{_slug('+'.join(csv_list(runs)))}-" \
           f"{result.manifest['checksum']['value'][:8]}.zip"
    path = work / name
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for f in sorted(p for p in (work / "dataset").rglob("*") if p.is_file()):
            z.write(f, f.relative_to(work / "dataset").as_posix())
    shutil.rmtree(work / "dataset", ignore_errors=True)
    return ExportZip(path, result)


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def prune(root: Path, older_than: float = 3600.0) -> None:
    """Forget exports made more than an hour ago (the page has long downloaded them)."""
    if not root.is_dir():
        return
    now = time.time()
    for d in root.iterdir():
        with contextlib.suppress(OSError):
            if d.is_dir() and now - d.stat().st_mtime > older_than:
                shutil.rmtree(d, ignore_errors=True)


# --- batch generation ------------------------------------------------------------------------

PRESETS = {"paper": PAPER_PRESET}


@dataclass
class BatchRequest:
    """A batch as the tab asks for it: which problems, how many samples, which model."""

    run: str
    source: str | None = None
    kind: str | None = None
    limit: int | None = None
    samples: int = 1
    greedy_baseline: bool = False
    preset: str = "paper"  # paper | custom
    temperature: float = 0.6
    rounds: int = 1
    concurrency: int = 2
    score: bool = True
    # the backend, model and max tokens, as the deployment resolved them (Deployment.resolve)
    settings: RunSettings = field(default_factory=RunSettings)

    @classmethod
    def from_options(cls, o: Mapping[str, Any], settings: RunSettings) -> BatchRequest:
        def opt(key: str) -> str | None:
            v = str(o.get(key) or "").strip()
            return None if v in ("", "any") else v

        preset = str(o.get("preset") or "paper")
        if preset not in ("paper", "custom"):
            raise ValueError(f"preset is paper or custom, not {preset!r}")
        return cls(run=str(o.get("run") or "").strip(), source=opt("source"), kind=opt("kind"),
                   limit=whole(o.get("limit")), samples=int(o.get("samples", 1)),
                   greedy_baseline=bool(o.get("greedy_baseline")), preset=preset,
                   temperature=float(o.get("temperature", 0.6)),
                   rounds=int(o.get("rounds", 1)), concurrency=int(o.get("concurrency", 2)),
                   score=bool(o.get("score", True)),
                   settings=settings)

    def config(self) -> BatchConfig:
        return BatchConfig(run=self.run, samples=self.samples,
                           greedy_baseline=self.greedy_baseline, concurrency=self.concurrency,
                           score=self.score)

    def engine_config(self) -> EngineConfig:
        preset = PRESETS.get(self.preset, {})
        return EngineConfig(max_tool_calls=int(preset.get("max_tool_calls", 6)),
                            max_tokens=self.settings.max_tokens,
                            temperature=float(preset.get("temperature", self.temperature)),
                            top_p=float(preset.get("top_p", 0.95)),
                            kernel_timeout=self.settings.kernel_timeout)

    def policy(self) -> HintPolicy:
        return HintPolicy(rounds=self.rounds)


def batch_problems(store: Any, req: BatchRequest) -> list[Problem]:
    problems = store.list_problems(source=req.source, kind=req.kind, limit=req.limit)
    if not problems:
        what = " and ".join(x for x in (req.source and f"source {req.source!r}",
                                        req.kind and f"kind {req.kind}") if x)
        raise ValueError("no stored problems" + (f" of {what}" if what else "")
                         + ": import a problem file first")
    return problems


class BatchJob:
    """The app's batch Hint-infer run (one at a time): :class:`startui.rft.generate.Batch`, the
    code of ``python -m startui generate``, as a task in the app's event loop on the shared
    kernel pool. Stopping saves every trajectory in flight as cancelled; starting the same run
    again resumes it (finished work is skipped, cancelled work continued)."""

    def __init__(self) -> None:
        self.request: BatchRequest | None = None
        self.report: BatchReport | None = None
        self.started_by: str | None = None
        self.error: str | None = None
        self.problems = 0
        self._batch: Batch | None = None
        self._task: asyncio.Task[Any] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self, store: Any, backend: Any, pool: Any, req: BatchRequest,
              problems: list[Problem], *, by: str) -> None:
        """Start (call from the event loop the app serves on); returns at once."""
        if self.running:
            raise ValueError(f"batch {self.request.run if self.request else ''} is running: "
                             "stop it first (one batch at a time)")
        cfg = req.config()
        self.request, self.started_by, self.error, self.problems = req, by, None, len(problems)
        self.report = BatchReport(run=cfg.run)
        self._batch = Batch(store, backend, pool, cfg, policy=req.policy(),
                            engine_config=req.engine_config(), on_progress=self._progress)
        self._task = asyncio.get_running_loop().create_task(self._run(self._batch, problems))

    def _progress(self, report: BatchReport) -> None:
        self.report = report

    async def _run(self, batch: Batch, problems: list[Problem]) -> None:
        try:
            self.report = await batch.run(problems)
        except Exception as e:  # noqa: BLE001 - said on the page; the app keeps serving
            log.exception("batch %s failed", batch.config.run)
            self.error = f"{type(e).__name__}: {e}"

    def stop(self) -> bool:
        if not self.running or self._batch is None:
            return False
        self._batch.stop()
        return True

    async def wait(self, timeout: float | None = None) -> None:
        if self._task is not None:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)

    def status(self) -> dict[str, Any]:
        """What the progress bar and ``/batch_status`` show."""
        r = self.report
        return {"run": self.request.run if self.request else None, "running": self.running,
                "started_by": self.started_by, "problems": self.problems, "error": self.error,
                "report": r.to_dict() if r is not None else None,
                "done": r.done if r is not None else 0, "todo": r.todo if r is not None else 0,
                "summary": r.summary() if r is not None and not self.running else None}


# --- users -------------------------------------------------------------------------------------

def _admins(store: Any) -> list[str]:
    return [u.name for u in store.list_users() if u.role == "admin"]


def add_user(store: Any, name: str, password: str | None, role: str, *, by: str) -> Any:
    """An admin adds a person (a password for the login page; none for a Hugging Face login)."""
    may_look(by)
    users.require(store, by, "users")
    name = users.check_name((name or "").strip())
    if store.get_user(name) is not None:
        raise ValueError(f"{name} exists already: change their role instead")
    return users.add_user(store, name, password or None, role=role)


def change_role(store: Any, name: str, role: str, *, by: str) -> Any:
    may_look(by)
    users.require(store, by, "users")
    if role != "admin" and _admins(store) == [name]:
        raise ValueError(f"{name} is the last admin: make someone else an admin first")
    return users.set_role(store, (name or "").strip(), role)


def remove_user(store: Any, name: str, *, by: str) -> None:
    may_look(by)
    users.require(store, by, "users")
    name = (name or "").strip()
    if _admins(store) == [name]:
        raise ValueError(f"{name} is the last admin: make someone else an admin first")
    users.remove_user(store, name)


__all__ = ["EXPORT_OPTIONS", "FORMATS", "BatchJob", "BatchRequest", "ExportZip", "add_user",
           "batch_problems", "change_role", "csv_list", "export_configs", "export_zip", "may_look",
           "preview", "prune", "remove_user", "require_admin", "run_ids", "whole"]
