"""Problem import: JSONL, JSON, CSV/TSV, Parquet and ``datasets.save_to_disk`` directories.

A row becomes a :class:`~startui.trajectory.Problem` with the fields ``id``, ``question``,
``answer``, ``kind`` (math | code), ``tests``, ``starter_code`` and ``source``; other columns are
kept in ``meta["extra"]`` (nothing in the file is dropped). Columns with other names are mapped
with ``field_map`` (``--map question=prompt``); a few common names (``problem``,
``question_content``, ...) are recognised on their own.

Imports are all or nothing: every row is validated first and one bad row stops the import with a
message naming its line (or row) and what is wrong — unless ``skip_invalid``, which imports the
valid rows and reports the others. Identity is ``(source, id)`` (an id-less row is keyed by a hash
of its question), so importing the same file twice changes nothing.

Tests of code problems are normalised to two shapes:
``{"type": "stdio", "input": "...", "output": "..."}`` (stdin → expected stdout) and
``{"type": "function", "fn_name": "f", "args": [...], "expected": ...}`` (a call's return value).
APPS-style ``{"inputs": [...], "outputs": [...], "fn_name"?: ...}`` is converted.
"""

from __future__ import annotations

import codecs
import csv
import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from startui.store.repository import content_hash, jsonable
from startui.trajectory import Problem

FIELDS = ("id", "question", "answer", "kind", "tests", "starter_code", "source")
# Tried in order when the canonical column is absent and not mapped.
ALIASES = {
    "id": ("id", "problem_id", "question_id", "unique_id", "task_id"),
    "question": ("question", "problem", "prompt", "question_content"),
    "answer": ("answer", "final_answer", "expected_answer", "target"),
    "kind": ("kind",),
    "tests": ("tests", "test_cases", "public_test_cases", "input_output"),
    "starter_code": ("starter_code",),
    "source": ("source", "dataset"),
}
SAMPLES = resources.files("startui.data") / "sample_problems.jsonl"
MAX_SHOWN_ERRORS = 20


class RowInvalid(ValueError):
    """One row cannot become a problem; the message says why."""


@dataclass
class RowError:
    where: str  # "line 4", "row 12", "train row 3"
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class ImportReport:
    path: str
    format: str
    source: str
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    columns: dict[str, str] = field(default_factory=dict)  # field -> column it was read from
    errors: list[RowError] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"{self.path} ({self.format}, source {self.source!r}): {self.rows} rows — "
                 f"{self.inserted} new, {self.updated} updated, {self.unchanged} unchanged, "
                 f"{self.skipped} skipped"]
        renamed = {f: c for f, c in self.columns.items() if f != c}
        if renamed:
            lines.append("columns: " + ", ".join(f"{f} <- {c}" for f, c in renamed.items()))
        lines += [f"  {e}" for e in self.errors[:MAX_SHOWN_ERRORS]]
        if len(self.errors) > MAX_SHOWN_ERRORS:
            lines.append(f"  ... and {len(self.errors) - MAX_SHOWN_ERRORS} more")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["errors"] = [str(e) for e in self.errors]
        return d


class ProblemImportError(ValueError):
    """The file (or some rows) could not be imported; nothing was written."""

    def __init__(self, message: str, report: ImportReport | None = None) -> None:
        super().__init__(message)
        self.report = report


# --- reading files -----------------------------------------------------------------------------

Rows = Iterator[tuple[str, "dict[str, Any] | RowInvalid"]]


MAX_LINE_BYTES = 10 * 1024 * 1024  # a longer JSONL line is refused unread: no problem is 10 MB


def _not_utf8(data: bytes, e: UnicodeDecodeError) -> str:
    return (f"not UTF-8 text (byte 0x{data[e.start]:02x} at byte {e.start + 1} of the line; "
            "latin-1 or Windows-1252?): save the file as UTF-8")


def _lines(path: Path) -> Iterator[tuple[int, bytes | None]]:
    """(line number, its bytes) of a text file, read a line at a time; a line longer than
    MAX_LINE_BYTES comes as None and is skipped in 1 MB reads, never held in memory."""
    with path.open("rb") as f:
        n = 0
        while line := f.readline(MAX_LINE_BYTES + 1):
            n += 1
            if len(line.rstrip(b"\r\n")) > MAX_LINE_BYTES:
                while not line.endswith(b"\n") and (line := f.readline(1 << 20)):
                    pass
                yield n, None
                continue
            yield n, line[3:] if n == 1 and line.startswith(codecs.BOM_UTF8) else line


def _jsonl(path: Path) -> Rows:
    for n, data in _lines(path):
        if data is None:
            yield f"line {n}", RowInvalid(f"longer than {MAX_LINE_BYTES // (1024 * 1024)} MB, so "
                                          "it was not read (is this a problem file?)")
            continue
        try:
            line = data.decode("utf-8")
        except UnicodeDecodeError as e:
            yield f"line {n}", RowInvalid(_not_utf8(data, e))
            continue
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            yield f"line {n}", RowInvalid(f"not valid JSON: {e.msg} (column {e.colno})")
            continue
        yield f"line {n}", obj


def _json(path: Path) -> Rows:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ProblemImportError(f"{path}: line {line}: not UTF-8 text (byte "
                                 f"0x{data[e.start]:02x}; latin-1 or Windows-1252?): save the "
                                 "file as UTF-8") from e
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        if e.msg == "Extra data":  # JSON Lines with a .json name
            yield from _jsonl(path)
            return
        raise ProblemImportError(f"{path}: not valid JSON: {e.msg} at line {e.lineno}, column "
                                 f"{e.colno}") from e
    if isinstance(data, dict) and isinstance(data.get("data") or data.get("problems"), list):
        data = data.get("data") or data.get("problems")
    if not isinstance(data, list):
        raise ProblemImportError(f"{path}: expected a JSON array of problems (or JSON Lines), "
                                 f"got a {type(data).__name__}")
    for n, obj in enumerate(data, 1):
        yield f"item {n}", obj


def _csv(path: Path) -> Rows:
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
        start = 2  # line 1 is the header
        rows = iter(reader)
        while True:
            try:
                row = next(rows)
            except StopIteration:
                return
            except UnicodeDecodeError as e:
                raise ProblemImportError(f"{path}: near line {reader.line_num + 1}: not UTF-8 "
                                         "text (latin-1 or Windows-1252?): save the file as "
                                         "UTF-8") from e
            except csv.Error as e:
                raise ProblemImportError(f"{path}: line {reader.line_num}: {e}") from e
            where = f"line {start}"
            start = reader.line_num + 1
            if None in row:
                yield where, RowInvalid(f"{len(row[None])} more fields than the header has "
                                        "columns (an unquoted comma?)")
                continue
            yield where, {k: (None if v == "" else v) for k, v in row.items()}


def _arrow_rows(table_batches: Iterator[Any], label: str = "") -> Rows:
    n = 0
    for batch in table_batches:
        for obj in batch.to_pylist():
            n += 1
            yield f"{label}row {n}", obj


def _parquet(path: Path) -> Rows:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # noqa: BLE001 - pyarrow raises several kinds for a bad file
        raise ProblemImportError(f"{path}: not a readable Parquet file: {e}") from e
    yield from _arrow_rows(pf.iter_batches(batch_size=1000))


def _datasets_dir(path: Path) -> Rows:
    """A ``Dataset.save_to_disk`` (state.json + Arrow stream files) or ``DatasetDict`` (one such
    directory per split) — read with pyarrow directly, so ``datasets`` need not be installed."""
    import pyarrow as pa

    if (path / "dataset_dict.json").exists():
        splits = json.loads((path / "dataset_dict.json").read_text())["splits"]
        for split in splits:
            for where, obj in _datasets_dir(path / split):
                yield f"{split} {where}", obj
        return
    state = json.loads((path / "state.json").read_text())

    def batches() -> Iterator[Any]:
        for f in state["_data_files"]:
            with pa.memory_map(str(path / f["filename"])) as src:
                yield from pa.ipc.open_stream(src)

    yield from _arrow_rows(batches())


def read_rows(path: str | Path) -> tuple[str, Rows]:
    """(format name, rows) for a problem file; raises ProblemImportError for what it can't read."""
    p = Path(path)
    if not p.exists():
        raise ProblemImportError(f"{p}: no such file or directory")
    if p.is_dir():
        if (p / "state.json").exists() or (p / "dataset_dict.json").exists():
            return "datasets", _datasets_dir(p)
        raise ProblemImportError(f"{p} is a directory but not one saved by datasets' "
                                 "save_to_disk (no state.json or dataset_dict.json)")
    suffix = p.suffix.lower()
    readers = {".jsonl": ("jsonl", _jsonl), ".ndjson": ("jsonl", _jsonl), ".json": ("json", _json),
               ".csv": ("csv", _csv), ".tsv": ("csv", _csv), ".parquet": ("parquet", _parquet),
               ".pq": ("parquet", _parquet)}
    if suffix not in readers:
        raise ProblemImportError(f"{p}: unsupported file type {suffix or '(none)'!r}; use JSONL, "
                                 "JSON, CSV, Parquet or a datasets save_to_disk directory")
    name, reader = readers[suffix]
    return name, reader(p)


# --- validating rows ---------------------------------------------------------------------------

def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (
        isinstance(v, str) and not v.strip())


def _text(name: str, v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, str | int | float):
        raise RowInvalid(f"{name} must be text or a number, got {type(v).__name__}")
    if isinstance(v, float) and v.is_integer():
        v = int(v)  # 3.0 from a float column that had gaps means 3
    return str(v).strip()


def _test(i: int, t: Any) -> dict[str, Any]:
    if not isinstance(t, dict):
        raise RowInvalid(f"tests[{i}] must be an object, got {type(t).__name__}")
    t = dict(t)
    kind = str(t.pop("type", None) or t.pop("testtype", None) or "").lower()
    if kind in ("function", "functional") or "fn_name" in t:
        if not isinstance(t.get("fn_name"), str) or "expected" not in t:
            raise RowInvalid(f"tests[{i}]: a function test needs 'fn_name', 'args' and "
                             f"'expected' (got keys {sorted(t)})")
        if not isinstance(t.setdefault("args", []), list):
            raise RowInvalid(f"tests[{i}]: 'args' must be a list")
        return {"type": "function", **t}
    if "input" in t and "output" in t:
        for k in ("input", "output"):
            if not isinstance(t[k], str):
                t[k] = _text(f"tests[{i}].{k}", t[k])
        return {"type": "stdio", **t}
    raise RowInvalid(f"tests[{i}]: expected {{input, output}} (stdin/stdout) or "
                     f"{{fn_name, args, expected}} (function call), got keys {sorted(t)}")


def normalize_tests(v: Any) -> list[dict[str, Any]] | None:
    if _missing(v):
        return None
    if isinstance(v, str):
        try:
            v = json.loads(v)
        except json.JSONDecodeError as e:
            raise RowInvalid(f"tests is not valid JSON: {e.msg} (column {e.colno})") from e
    if isinstance(v, dict) and "inputs" in v and "outputs" in v:  # APPS input_output
        ins, outs, fn = v["inputs"], v["outputs"], v.get("fn_name")
        if len(ins) != len(outs):
            raise RowInvalid(f"tests has {len(ins)} inputs but {len(outs)} outputs")
        v = [({"fn_name": fn, "args": a, "expected": o} if fn else {"input": a, "output": o})
             for a, o in zip(ins, outs, strict=True)]
    if not isinstance(v, list):
        raise RowInvalid(f"tests must be a list of test objects, got {type(v).__name__}")
    return [_test(i, t) for i, t in enumerate(v)] or None


def _column(raw: dict[str, Any], name: str, field_map: dict[str, str]) -> str | None:
    if name in field_map:
        return field_map[name]
    return next((c for c in ALIASES[name] if c in raw and not _missing(raw[c])), None)


def parse_problem(raw: Any, *, field_map: dict[str, str] | None = None, source: str,
                  force_source: bool = False, columns: dict[str, str] | None = None) -> Problem:
    """One row → Problem, or RowInvalid saying what is wrong."""
    if not isinstance(raw, dict):
        raise RowInvalid(f"expected an object with a 'question', got {type(raw).__name__}")
    fmap = field_map or {}
    used: dict[str, str] = {}
    vals: dict[str, Any] = {}
    for name in FIELDS:
        col = _column(raw, name, fmap)
        if col is not None:
            used[name] = col
            vals[name] = raw.get(col)
    if _missing(vals.get("question")):
        if "question" in fmap:
            raise RowInvalid(f"column {fmap['question']!r} (mapped to question) is missing or "
                             "empty")
        raise RowInvalid(f"no question (columns: {', '.join(map(str, raw)) or 'none'}); name the "
                         "column with --map question=COLUMN")
    question = vals["question"]
    if not isinstance(question, str):
        raise RowInvalid(f"question must be text, got {type(question).__name__}")
    answer = None if _missing(vals.get("answer")) else _text("answer", vals["answer"])
    tests = normalize_tests(vals.get("tests"))
    starter = vals.get("starter_code")
    if not _missing(starter) and not isinstance(starter, str):
        raise RowInvalid(f"starter_code must be text, got {type(starter).__name__}")
    kind = vals.get("kind")
    if _missing(kind):
        kind = "code" if tests or not _missing(starter) else "math"
    kind = str(kind).strip().lower()
    if kind not in ("math", "code"):
        raise RowInvalid(f"kind must be 'math' or 'code', got {vals['kind']!r}")
    src = source if force_source or _missing(vals.get("source")) else _text("source",
                                                                            vals["source"])
    ext = (content_hash(question) if _missing(vals.get("id")) else _text("id", vals["id"]))
    meta: dict[str, Any] = {"source": src, "external_id": ext}
    if not _missing(starter):
        meta["starter_code"] = starter
    extra = {str(k): v for k, v in raw.items() if k not in used.values() and not _missing(v)}
    if extra:
        meta["extra"] = jsonable(extra)
    if columns is not None:
        columns.update(used)
    return Problem(question=question, answer=answer, kind=kind, tests=tests,
                   id=f"{src}:{ext}", meta=meta)


def parse_field_map(items: list[str] | None) -> dict[str, str]:
    """``["question=prompt", ...]`` (the CLI's --map) → {"question": "prompt"}."""
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, col = item.partition("=")
        name, col = name.strip(), col.strip()
        if not sep or not name or not col:
            raise ProblemImportError(f"--map {item!r}: expected FIELD=COLUMN, e.g. "
                                     "question=prompt")
        if name not in FIELDS:
            raise ProblemImportError(f"--map {item!r}: unknown field {name!r}; fields are "
                                     f"{', '.join(FIELDS)}")
        out[name] = col
    return out


def parse_file(path: str | Path, *, field_map: dict[str, str] | None = None,
               source: str | None = None) -> tuple[list[tuple[str, Problem]], ImportReport]:
    """Read and validate every row without touching a store: (where, problem) pairs for valid
    rows and a report holding the errors (duplicates included)."""
    fmt, rows = read_rows(path)
    for name in field_map or {}:
        if name not in FIELDS:
            raise ProblemImportError(f"unknown field {name!r} in the field map; fields are "
                                     f"{', '.join(FIELDS)}")
    p = Path(path)
    default_source = source or (p.name if p.is_dir() else p.stem)
    report = ImportReport(path=str(path), format=fmt, source=default_source)
    good: list[tuple[str, Problem]] = []
    seen: dict[str, str] = {}
    for where, raw in rows:
        report.rows += 1
        try:
            if isinstance(raw, RowInvalid):
                raise raw
            prob = parse_problem(raw, field_map=field_map, source=default_source,
                                 force_source=source is not None, columns=report.columns)
            if prob.id in seen:
                raise RowInvalid(f"duplicate id {prob.meta['external_id']!r} (also at "
                                 f"{seen[prob.id]})")
            seen[prob.id] = where
            good.append((where, prob))
        except RowInvalid as e:
            report.errors.append(RowError(where, str(e)))
    return good, report


class ProblemSink(Protocol):
    """Where imported problems go: the :class:`~startui.store.Store` (typed structurally so this
    module, which the store uses, does not import it back)."""

    def upsert_problems(self, problems: list[Problem]) -> list[tuple[str, str]]: ...


def import_problems(store: ProblemSink, path: str | Path, *, skip_invalid: bool = False,
                    field_map: dict[str, str] | None = None,
                    source: str | None = None) -> ImportReport:
    """Import a problem file into ``store`` in one transaction (see the module docstring)."""
    good, report = parse_file(path, field_map=field_map, source=source)
    if report.rows == 0:
        raise ProblemImportError(f"{path}: no rows to import", report)
    if report.errors and not skip_invalid:
        shown = "\n".join(f"  {e}" for e in report.errors[:MAX_SHOWN_ERRORS])
        more = len(report.errors) - MAX_SHOWN_ERRORS
        raise ProblemImportError(
            f"{path}: {len(report.errors)} of {report.rows} rows are invalid; nothing was "
            f"imported (fix them, or pass --skip-invalid to import the {len(good)} valid "
            f"row{'' if len(good) == 1 else 's'}):\n"
            + shown + (f"\n  ... and {more} more" if more > 0 else ""), report)
    report.skipped = len(report.errors)
    if good:
        for pid, action in store.upsert_problems([p for _, p in good]):
            report.ids.append(pid)
            setattr(report, action, getattr(report, action) + 1)
    return report


def load_sample_problems() -> list[Problem]:
    """The problems bundled with startui (math with computed answers, code with tests), so the
    demo has examples on first start."""
    good, report = parse_file(SAMPLES, source="sample")
    if report.errors:  # a broken bundled file is a bug, not a user error
        raise RuntimeError(report.summary())
    return [p for _, p in good]
