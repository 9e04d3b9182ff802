"""The training-ready export of a Hint-RFT selection: JSONL, Parquet and a `datasets` directory.

One row per trajectory. ``prompt`` + ``completion`` is exactly the text the model continued from
and wrote (the chat template applied), ``messages`` the same conversation in chat form,
``segments`` the typed pieces with their ``[start, end)`` offsets in ``completion``, and
``loss_mask`` the spans of ``completion`` to train on: kernel outputs are never trained on (the
model must not learn to invent them), hints optionally not. :func:`token_labels` turns a row into
token ids and labels (-100 outside the mask) for any tokenizer with offset mapping, which is what
TRL's ``SFTTrainer`` takes.

The "steps" dataset (``SelectConfig(dataset="steps")``, ``export --dataset steps``) is process
supervision for a reward model instead, in TRL's stepwise-supervision format: ``prompt`` (the
templated prompt the model continued from; the question when none was recorded),
``completions`` (the steps) and ``labels`` (one bool per step), plus the raw reviewer labels
``step_labels`` (PRM800K's -1 / 0 / +1), ``step_kinds``, ``step_sources`` and
``step_positions`` (the labelled segment's position in the stored revision). Each labelled
segment ends a step; unlabelled segments before it are merged into it, so the steps joined are
exactly the trajectory's text up to its last labelled segment; the unlabelled segments after
that are dropped. +1 and 0 map to True (0 is PRM800K's "reasonable but not progress": not an
error) and -1 to False. :func:`step_token_labels` tokenizes a row as TRL's ``PRMTrainer`` did.

Every row carries its provenance (problem, run, model, settings, reviewer of the latest decision,
editors, version = the revision exported, scores, the modifications applied; steps rows also
``labelled_by``). The exporter reads each trajectory's current revision, the one reviewers
accepted, edited and labelled. The data is deterministic: the same store and options give
byte-identical files, so the manifest's sha256 identifies a dataset; only the manifest's own
``created_at`` varies, and the checksum does not cover it.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from startui.bulk import collector_paused
from startui.review.users import require
from startui.rft.filters import ModifyConfig, modify
from startui.rft.select import SelectConfig, Selection, mode_of, select
from startui.store.consensus import CAMPAIGN_SOURCES
from startui.store.records import Record
from startui.store.repository import jsonable
from startui.trajectory import Trajectory

if TYPE_CHECKING:
    from startui.store import Store

EXPORT_FORMAT = "startui-hint-rft/1"
FORMATS = ("jsonl", "parquet", "datasets")
FILES = {"jsonl": "data.jsonl", "parquet": "data.parquet", "datasets": "dataset"}
MaskHints = Literal["none", "human", "all"]
# Free-form provenance: nested objects in JSONL, JSON text in Parquet/datasets (Arrow needs one
# schema for every row, and settings differ between backends).
JSON_COLUMNS = ("settings", "scores", "modifications")
_SEGMENT_META = ("category", "error")
# steps: a reviewer's label -> TRL's bool label (0, "neutral", is not a mistake)
LABEL_MAPPING = {1: True, 0: True, -1: False}


@dataclass
class ExportConfig:
    formats: tuple[str, ...] = FORMATS
    mask_hints: MaskHints = "none"
    modify: ModifyConfig = field(default_factory=ModifyConfig)

    def __post_init__(self) -> None:
        bad = [f for f in self.formats if f not in FORMATS]
        if bad or not self.formats:
            raise ValueError(f"unknown export format(s) {', '.join(bad) or '(none)'}; choose "
                             f"from {', '.join(FORMATS)}")
        if self.mask_hints not in ("none", "human", "all"):
            raise ValueError(f"mask_hints must be none, human or all, not {self.mask_hints!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"formats": list(self.formats), "mask_hints": self.mask_hints,
                "modify": self.modify.to_dict()}


# --- rows ------------------------------------------------------------------------------------

def trained(kind: str, source: str, mask_hints: MaskHints) -> bool:
    if kind == "output":
        return False
    if kind == "hint":
        return mask_hints == "none" or (mask_hints == "human" and source != "human")
    return True


def merge_spans(spans: Iterable[tuple[int, int]]) -> list[list[int]]:
    out: list[list[int]] = []
    for s, e in sorted(spans):
        if e <= s:
            continue
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return out


def build_row(rec: Record, cfg: ExportConfig, dataset: str) -> dict[str, Any]:
    """The export row of one selected trajectory (modifications applied and recorded)."""
    mod = modify(rec.trajectory, cfg.modify)
    traj = mod.trajectory
    # one pass: the renderings joined are traj.completion(), their offsets traj.spans()
    rendered: list[str] = []
    segments = []
    mask = []
    start = 0
    for seg in traj.segments:
        text = seg.render()
        rendered.append(text)
        end = start + len(text)
        meta = seg.meta
        item = {"kind": seg.kind, "source": seg.source, "start": start, "end": end}
        for k in _SEGMENT_META:
            v = meta.get(k)
            item[k] = None if v is None else str(v)
        segments.append(item)
        if trained(seg.kind, seg.source, cfg.mask_hints):
            mask.append((start, end))
        start = end
    completion = "".join(rendered)
    engine = traj.settings.get("engine")
    system = engine.get("system_prompt") if isinstance(engine, dict) else None
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": traj.problem.question},
        {"role": "assistant", "content": completion}]
    return {
        "id": traj.id,
        "dataset": dataset,
        "messages": messages,
        "prompt": traj.prompt,
        "completion": completion,
        "segments": segments,
        "loss_mask": merge_spans(mask),
        **provenance(rec, traj, mod.records),
    }


def provenance(rec: Record, traj: Trajectory, modifications: list[dict[str, Any]],
               ) -> dict[str, Any]:
    """What every row of every dataset says about where it came from: the problem, run, model,
    settings, the review (status, the reviewer of the latest decision, the editors), ``version``
    (the revision exported: the trajectory's current one), the current rule score and the
    modifications applied."""
    settings = traj.settings
    problem = traj.problem
    sample = settings.get("sample")
    score = rec.score
    return {
        "problem": {"id": problem.id, "kind": problem.kind, "answer": problem.answer,
                    "source": problem.meta.get("source")},
        "run": rec.run_id,
        "model": None if settings.get("model") is None else str(settings.get("model")),
        "backend": None if settings.get("backend") is None else str(settings.get("backend")),
        "mode": mode_of(traj),
        "sample": sample if isinstance(sample, int) and not isinstance(sample, bool) else None,
        "review": {"status": rec.review_status, "reviewer": rec.reviewer,
                   "editors": list(rec.editors),
                   # several reviewers (a campaign): adjudicated | consensus | disputed
                   **({"resolution": rec.human} if rec.human in CAMPAIGN_SOURCES else {})},
        "version": rec.version,
        "settings": jsonable(dict(settings)),
        "scores": {} if score is None else {"rule": {
            "correct": score.correct, "value": score.value, "detail": jsonable(score.detail)}},
        "modifications": modifications,
    }


@dataclass
class Step:
    text: str  # the labelled segment's rendering, after the unlabelled ones before it
    label: int  # the reviewer's -1 | 0 | +1
    kind: str  # of the labelled segment
    source: str
    position: int  # the labelled segment's position in the stored revision


@dataclass
class StepSplit:
    steps: list[Step]
    dropped_tail: int = 0  # unlabelled segments after the last labelled one
    dropped_empty: int = 0  # labelled steps without any text (nothing to put a label on)


def split_steps(traj: Trajectory, labels: dict[int, int],
                positions: Sequence[int] | None = None) -> StepSplit:
    """``traj``'s segments as labelled steps. ``labels`` maps a segment's position to its label;
    ``positions[i]`` is segment ``i``'s position in the stored revision (after a modification
    removed segments). A labelled segment ends a step, unlabelled segments before it are merged
    into that step, the unlabelled segments after the last labelled one are dropped."""
    positions = range(len(traj.segments)) if positions is None else positions
    out = StepSplit([])
    pending: list[str] = []
    for seg, pos in zip(traj.segments, positions, strict=True):
        pending.append(seg.render())
        label = labels.get(pos)
        if label is None:
            continue
        text = "".join(pending)
        pending = []
        if not text:
            out.dropped_empty += 1
            continue
        out.steps.append(Step(text, int(label), seg.kind, seg.source, pos))
    out.dropped_tail = len(pending)
    return out


def build_step_row(rec: Record, cfg: ExportConfig) -> tuple[dict[str, Any], StepSplit]:
    """The "steps" row of one selected trajectory (see the module docstring), and how it was
    split. ``cfg.modify`` applies as for the other datasets; ``cfg.mask_hints`` does not."""
    mod = modify(rec.trajectory, cfg.modify)
    traj = mod.trajectory
    split = split_steps(traj, rec.step_labels, mod.index_map)
    steps = split.steps
    row = {
        "id": traj.id,
        "dataset": "steps",
        "prompt": traj.prompt or traj.problem.question,
        "completions": [s.text for s in steps],
        "labels": [LABEL_MAPPING[s.label] for s in steps],
        "step_labels": [s.label for s in steps],
        "step_kinds": [s.kind for s in steps],
        "step_sources": [s.source for s in steps],
        "step_positions": [s.position for s in steps],
        "labelled_by": rec.labelled_by,
        **provenance(rec, traj, mod.records),
    }
    return row, split


def dumps(row: dict[str, Any]) -> str:
    """One canonical JSON line (sorted keys, no spaces): byte-stable across runs."""
    return json.dumps(row, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


# --- Arrow -----------------------------------------------------------------------------------

def arrow_schema(dataset: str = "start") -> Any:
    """The Parquet/datasets schema of ``dataset``'s rows ("seed" and "start" share one)."""
    import pyarrow as pa

    s = pa.string()
    if dataset == "steps":
        head = [("id", s), ("dataset", s), ("prompt", s), ("completions", pa.list_(s)),
                ("labels", pa.list_(pa.bool_())), ("step_labels", pa.list_(pa.int64())),
                ("step_kinds", pa.list_(s)), ("step_sources", pa.list_(s)),
                ("step_positions", pa.list_(pa.int64())), ("labelled_by", s)]
    else:
        head = [
            ("id", s), ("dataset", s),
            ("messages", pa.list_(pa.struct([("role", s), ("content", s)]))),
            ("prompt", s), ("completion", s),
            ("segments", pa.list_(pa.struct([("kind", s), ("source", s), ("start", pa.int64()),
                                             ("end", pa.int64()), ("category", s),
                                             ("error", s)]))),
            ("loss_mask", pa.list_(pa.list_(pa.int64())))]
    return pa.schema([
        *head,
        ("problem", pa.struct([("id", s), ("kind", s), ("answer", s), ("source", s)])),
        ("run", s), ("model", s), ("backend", s), ("mode", s), ("sample", pa.int64()),
        ("review", pa.struct([("status", s), ("reviewer", s), ("editors", pa.list_(s))])),
        ("version", pa.int64()),
        *[(c, s) for c in JSON_COLUMNS],
    ])


def to_arrow_row(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for c in JSON_COLUMNS:
        out[c] = json.dumps(row[c], ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return out


def from_arrow_row(row: dict[str, Any]) -> dict[str, Any]:
    """A Parquet/datasets row back to the JSONL shape (JSON text columns decoded)."""
    out = dict(row)
    for c in JSON_COLUMNS:
        out[c] = json.loads(row[c])
    return out


# --- writing ---------------------------------------------------------------------------------

def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class _Writers:
    """Streams rows to the enabled formats' temporary files; ``commit`` moves them in place."""

    def __init__(self, out: Path, formats: Sequence[str], batch: int = 1000, *,
                 dataset: str = "start") -> None:
        self.out, self.formats, self.batch = out, formats, batch
        self.schema = arrow_schema(dataset)
        self.tmp = {f: out / f".{FILES[f]}.tmp" for f in formats}
        self._jsonl = self.tmp["jsonl"].open("wb", buffering=1 << 20) \
            if "jsonl" in formats else None
        self._pq: Any = None
        self._rows: list[dict[str, Any]] = []
        if "parquet" in formats or "datasets" in formats:
            import pyarrow.parquet as pq

            target = self.tmp.get("parquet") or out / ".data.parquet.for-datasets.tmp"
            self.tmp.setdefault("parquet-staging", target)
            self._pq = pq.ParquetWriter(target, self.schema, compression="zstd")

    def write(self, row: dict[str, Any], line: bytes) -> None:
        """``line`` is ``dumps(row) + "\\n"`` in UTF-8, encoded once by the caller (it is hashed
        too)."""
        if self._jsonl is not None:
            self._jsonl.write(line)
        if self._pq is not None:
            self._rows.append(to_arrow_row(row))
            if len(self._rows) >= self.batch:
                self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self._rows:
            self._pq.write_table(pa.Table.from_pylist(self._rows, schema=self.schema))
            self._rows = []

    def close(self) -> None:
        if self._jsonl is not None:
            self._jsonl.close()
        if self._pq is not None:
            self._flush()
            self._pq.close()

    def abort(self) -> None:
        self.close()
        for path in self.tmp.values():
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    def commit(self, fingerprint: str) -> dict[str, dict[str, Any]]:
        self.close()
        files: dict[str, dict[str, Any]] = {}
        staging = self.tmp.get("parquet-staging")
        if "datasets" in self.formats:
            files[FILES["datasets"] + "/"] = self._datasets_dir(staging, fingerprint)
        for fmt in ("jsonl", "parquet"):
            if fmt in self.formats:
                final = self.out / FILES[fmt]
                os.replace(self.tmp[fmt], final)
                files[FILES[fmt]] = {"sha256": sha256_file(final),
                                     "bytes": final.stat().st_size}
        if staging is not None and "parquet" not in self.formats:
            staging.unlink(missing_ok=True)
        return files

    def _datasets_dir(self, parquet: Path | None, fingerprint: str) -> dict[str, Any]:
        try:
            import datasets
            from datasets.table import InMemoryTable
        except ImportError as e:
            raise ValueError("the datasets format needs the `datasets` package (pip install "
                             "datasets), or leave it out: --formats jsonl,parquet") from e
        import pyarrow.parquet as pq

        assert parquet is not None
        tmp_dir = self.out / f".{FILES['datasets']}.tmp"
        shutil.rmtree(tmp_dir, ignore_errors=True)
        ds = datasets.Dataset(InMemoryTable(pq.read_table(parquet)), fingerprint=fingerprint)
        quiet = datasets.are_progress_bars_disabled()
        datasets.disable_progress_bars()  # our own progress line is enough
        try:
            ds.save_to_disk(str(tmp_dir))
        finally:
            if not quiet:
                datasets.enable_progress_bars()
        final = self.out / FILES["datasets"]
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp_dir, final)
        return {"rows": ds.num_rows, "files": sorted(p.name for p in final.iterdir())}


@dataclass
class ExportResult:
    manifest: dict[str, Any]
    selection: Selection
    out: Path
    seconds: dict[str, float] = field(default_factory=dict)  # select / write (not in manifest)


def export(store: Store, out: str | Path, run_ids: Sequence[str], *,
           select_config: SelectConfig | None = None, config: ExportConfig | None = None,
           on_progress: Callable[[int, int], Any] | None = None,
           by: str | None = None) -> ExportResult:
    """Select (:func:`startui.rft.select`), modify and write the dataset into the folder ``out``:
    ``data.jsonl``, ``data.parquet``, ``dataset/`` (``datasets.load_from_disk``) and
    ``manifest.json``. ``select_config.dataset`` says which: "seed" / "start" (SFT rows) or
    "steps" (stepwise supervision rows). Files are written under temporary names and moved in
    place at the end, so an interrupted export leaves the previous one intact. ``by``: the person
    exporting (the app names them), refused unless their role may export
    (:func:`startui.review.users.require`)."""
    if by is not None:
        require(store, by, "export")
    config = config or ExportConfig()
    select_config = select_config or SelectConfig()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file; the export goes into a folder (it will hold "
                         f"{', '.join(FILES[f] for f in config.formats)} and manifest.json)")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    selection = select(store, run_ids, select_config)
    t1 = time.perf_counter()
    steps = select_config.dataset == "steps"
    writers = _Writers(out, config.formats, dataset=select_config.dataset)
    counts: Counter[str] = Counter()
    trained_chars = total_chars = 0
    digest = hashlib.sha256()
    try:
        with collector_paused():
            for n, rec in enumerate(store.load_records(selection.ids), 1):
                if steps:
                    row, split = build_step_row(rec, config)
                    counts["steps:dropped_tail_segments"] += split.dropped_tail
                    counts["steps:dropped_empty"] += split.dropped_empty
                    if not row["completions"]:  # its labelled segments were all modified away
                        counts["skipped:no step left after the modifications"] += 1
                        continue
                    counts["steps:total"] += len(row["completions"])
                    counts.update(f"label:{lab:+d}" if lab else "label:0"
                                  for lab in row["step_labels"])
                    total_chars += sum(len(c) for c in row["completions"])
                else:
                    row = build_row(rec, config, select_config.dataset)
                    total_chars += len(row["completion"])
                    trained_chars += sum(e - s for s, e in row["loss_mask"])
                line = (dumps(row) + "\n").encode("utf-8")
                writers.write(row, line)
                digest.update(line)
                counts[f"kind:{row['problem']['kind']}"] += 1
                counts[f"run:{row['run']}"] += 1
                counts[f"mode:{row['mode']}"] += 1
                if on_progress is not None:
                    on_progress(n, len(selection.ids))
        rows = sum(v for k, v in counts.items() if k.startswith("kind:"))
        checksum = digest.hexdigest()
        files = writers.commit(fingerprint=checksum[:16])
    except BaseException:
        writers.abort()
        raise
    manifest = {
        "format": EXPORT_FORMAT,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),  # not in the checksum
        "runs": list(run_ids),
        "dataset": select_config.dataset,
        "options": {"select": select_config.to_dict(), "export": config.to_dict()},
        "counts": {"rows": rows, "problems": selection.report.problems_selected,
                   "by_kind": _group(counts, "kind:"), "by_run": _group(counts, "run:"),
                   "by_mode": _group(counts, "mode:"), "completion_chars": total_chars,
                   **({"steps": counts["steps:total"], "by_label": {
                       k: counts[f"label:{k}"] for k in ("+1", "0", "-1")},
                       "dropped_tail_segments": counts["steps:dropped_tail_segments"],
                       "dropped_empty_steps": counts["steps:dropped_empty"],
                       "skipped": _group(counts, "skipped:")} if steps
                      else {"trained_chars": trained_chars})},
        "selection": selection.report.to_dict(),
        "json_columns": list(JSON_COLUMNS),
        **({"label_mapping": {"+1": True, "0": True, "-1": False}} if steps else {}),
        "files": files,
        "checksum": {"algorithm": "sha256", "of": "the canonical JSON lines of every row "
                     "(= sha256 of data.jsonl)", "value": checksum},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n",
                                       encoding="utf-8")
    return ExportResult(manifest, selection, out,
                        {"select": t1 - t0, "write": time.perf_counter() - t1})


def _group(counts: Counter[str], prefix: str) -> dict[str, int]:
    return {k[len(prefix):]: v for k, v in sorted(counts.items()) if k.startswith(prefix)}


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    path = Path(path)
    if path.is_dir():
        path = path / FILES["jsonl"]
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


# --- training labels -------------------------------------------------------------------------

def token_labels(row: dict[str, Any], tokenizer: Any, *, max_length: int | None = None,
                 add_eos: bool = True) -> dict[str, list[int]]:
    """``input_ids`` and ``labels`` for one exported row: the prompt and every token not wholly
    inside a ``loss_mask`` span get -100 (a token straddling a kernel output's edge is masked:
    when in doubt, do not train on text the model did not write). With ``add_eos`` the
    tokenizer's end-of-sequence token follows the completion and is trained on, so the model
    learns to stop. Needs a fast tokenizer (``return_offsets_mapping``)."""
    prompt, completion = row["prompt"], row["completion"]
    text = prompt + completion
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = list(enc["input_ids"])
    offsets = enc["offset_mapping"]
    base = len(prompt)
    starts = [base + s for s, _ in row["loss_mask"]]
    ends = [base + e for _, e in row["loss_mask"]]
    labels = []
    for tid, (s, e) in zip(ids, offsets, strict=True):
        i = bisect.bisect_right(starts, s) - 1
        inside = e > s and i >= 0 and s >= starts[i] and e <= ends[i]
        labels.append(tid if inside else -100)
    if add_eos and tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
        labels.append(tokenizer.eos_token_id)
    if max_length is not None:
        ids, labels = ids[:max_length], labels[:max_length]
    return {"input_ids": ids, "labels": labels}


def step_token_labels(row: dict[str, Any], tokenizer: Any, *, step_separator: str = "",
                      max_length: int | None = None, max_prompt_length: int | None = None,
                      max_completion_length: int | None = None,
                      train_on_last_step_only: bool = False) -> dict[str, list[int]]:
    """``input_ids`` and ``labels`` for one "steps" row, tokenized as TRL's ``PRMTrainer`` did
    (``tokenize_row``; TRL 1.x no longer ships a PRM trainer): the prompt (after the tokenizer's
    BOS token, if it has one) and each step tokenized on its own, ``step_separator`` appended to
    every step, the step's label (1 good, 0 bad) on its last token and -100 everywhere else.
    Train an ``AutoModelForTokenClassification`` with ``num_labels=2`` on these (padding labels
    with -100: ``DataCollatorForTokenClassification``); with ``Dataset.map`` pass int64
    ``features``, or the new ``labels`` take the bool type of the column they replace. The
    steps carry their own whitespace (joined they are the trajectory's text), so the separator
    defaults to "" where TRL's default was "\\n"; with "" a step must not be empty (the export
    writes none)."""
    prompt_ids = list(tokenizer(row["prompt"], add_special_tokens=False)["input_ids"])
    sep = list(tokenizer.encode(step_separator, add_special_tokens=False))
    steps = [list(tokenizer(c, add_special_tokens=False)["input_ids"]) + sep
             for c in row["completions"]]
    if any(not ids for ids in steps):
        raise ValueError(f"row {row.get('id')}: an empty step has no token to carry its label")
    labels = [int(bool(x)) for x in row["labels"]]
    if len(labels) != len(steps):
        raise ValueError(f"row {row.get('id')}: {len(steps)} steps but {len(labels)} labels")
    if train_on_last_step_only:
        labels = [-100] * (len(labels) - 1) + labels[-1:]
    completion_ids = [t for ids in steps for t in ids]
    completion_labels = [x for ids, lab in zip(steps, labels, strict=True)
                         for x in [-100] * (len(ids) - 1) + [lab]]
    if tokenizer.bos_token_id is not None:
        prompt_ids = [tokenizer.bos_token_id] + prompt_ids
    if max_prompt_length is not None:
        prompt_ids = prompt_ids[-max_prompt_length:]
    if max_completion_length is not None:
        completion_ids = completion_ids[:max_completion_length]
        completion_labels = completion_labels[:max_completion_length]
    ids = prompt_ids + completion_ids
    out = [-100] * len(prompt_ids) + completion_labels
    if max_length is not None:
        ids, out = ids[:max_length], out[:max_length]
    return {"input_ids": ids, "labels": out}
