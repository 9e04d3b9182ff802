"""The fast export writes exactly what the plain one wrote: the same bytes of data.jsonl and
data.parquet (pyarrow writes the same bytes for the same data and version), the same manifest
apart from its created_at, on SQLite and PostgreSQL, for a store with a bit of everything (runs,
greedy and hinted, edits and revisions, stale scores, reviews, a campaign with consensus, a
dispute and an adjudication, step labels, kernel errors, images and figures, non-ASCII text).

The reference reads each trajectory on its own through the ORM (mapped rows, segments in position
order, their artifacts put back) and writes rows the plain way: ``Trajectory.completion()`` and
``spans()``, ``json.dumps``, one ``pyarrow.Table.from_pylist`` per 1,000 rows."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from startui.answers import SCORER
from startui.review import campaigns, decisions, users
from startui.rft.export import (
    ExportConfig,
    arrow_schema,
    build_step_row,
    dumps,
    export,
    merge_spans,
    provenance,
    to_arrow_row,
    trained,
)
from startui.rft.filters import ModifyConfig, modify
from startui.rft.select import SelectConfig
from startui.store import Store
from startui.store.models import ArtifactRow, ProblemRow, SegmentRow, TrajectoryRow
from startui.store.queue import QueueFilter
from startui.store.records import Record
from startui.store.repository import format_ts
from startui.trajectory import Problem, Segment, Trajectory

PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9aw"
       "AAAABJRU5ErkJggg==")
HUMAN = "Try the identity (a+b)² = a² + 2ab + b² — it's quicker.\n\n"


def problem(i: int, *, kind: str = "math") -> Problem:
    return Problem(f"Problem {i}: what is {i}·7? «quote» \"x\"\\ ", answer=str(7 * i), kind=kind,
                   id=f"eq:{i}", tests=[{"input": f"{i}\n", "output": str(7 * i)}]
                   if kind == "code" else None,
                   meta={"source": "eq", "external_id": str(i), "tags": ["a", {"b": [1, 2.5]}]})


def traj(tid: str, i: int, segments: list[Segment], *, run: str, mode: str | None,
         status: str = "finished", **settings: Any) -> Trajectory:
    return Trajectory(
        problem=problem(i, kind="code" if i % 3 == 0 else "math"),
        prompt=f"<|im_start|>user\nProblem {i}<|im_end|>\n<|im_start|>assistant\n",
        segments=segments, status=status, id=tid, tokens=100 + i,
        created_at=f"2025-03-{1 + int(tid[1:]):02d}T00:00:00+00:00",
        settings={"run_id": run, "run_name": run, **({"mode": mode} if mode else {}),
                  "sample": i % 2, "backend": "scripted", "model": "m-1",
                  "engine": {"temperature": 0.6, "top_p": 1e-05, "seed": 2**40,
                             **({"system_prompt": "Sois bref. 简洁"} if i % 2 else {})},
                  **settings})


def hinted(i: int) -> list[Segment]:
    return [Segment("think", f"Let me think about {i}·7… π ≈ 3.14159\t\x01 😀\n"),
            Segment("hint", HUMAN, "human", {"category": "human"}),
            Segment("hint", "Wait, I can use Python to check.\n", "auto",
                    {"category": "self-reflection", "round": 1}),
            Segment("code", f"import math\nprint({i} * 7, \"\\\\n\")"),
            Segment("output", f"{7 * i}   \n/tmp/startui-work-ab12/x.txt\n\n\n\n", "kernel",
                    {"duration": 0.012, "exec_ms": 3}),
            Segment("answer", f"So the answer is \\boxed{{{7 * i}}}.", meta={"boxed": str(7 * i)})]


def with_error(i: int) -> list[Segment]:
    return [Segment("think", "Divide first.\n"), Segment("code", "print(1/0)"),
            Segment("output", "Traceback (most recent call last):\nZeroDivisionError: division"
                    " by zero", "kernel", {"error": "ZeroDivisionError", "duration": 0.2}),
            Segment("think", "Oops, fix it.\n"), Segment("code", f"print({i}*7)"),
            Segment("output", "x" * 2500, "kernel", {"error": None}),
            Segment("answer", f"\\boxed{{{7 * i}}}")]


def with_figures(i: int) -> list[Segment]:
    return [Segment("code", "plot()"),
            Segment("output", "<Figure>", "kernel",
                    {"images": [PNG, PNG[::-1]], "plotly": [{"data": [{"y": [1, 2]}]}],
                     "error": 7}),
            Segment("output", "", "kernel", {"images": []}),
            Segment("answer", f"\\boxed{{{7 * i}}}")]


def edit(store: Store, tid: str, editor: str, text: str) -> None:
    t, version = store.load_trajectory_versioned(tid)
    t.segments[0].text = text
    store.update_trajectory_segments(tid, t.segments, expected_version=version, editor=editor)


def fill(store: Store) -> None:
    for name, role in (("root", "admin"), ("ann", "reviewer"), ("bob", "reviewer"),
                       ("carol", "reviewer")):
        users.add_user(store, name, None, role=role)
    trajs = [traj("t1", 1, hinted(1), run="hx", mode="hinted"),
             traj("t2", 2, with_error(2), run="hx", mode="hinted"),
             traj("t3", 3, with_figures(3), run="hx", mode="hinted", parent_id="t1"),
             traj("t4", 1, [Segment("think", "Seven.\n"), Segment("code", "print(7)"),
                            Segment("output", "7", "kernel"), Segment("answer", "\\boxed{7}")],
                  run="gx", mode="greedy"),
             traj("t5", 4, hinted(4)[:4] + [Segment("code", "while True:", closed=False)],
                  run="hx", mode="hinted", status="cancelled"),
             traj("t6", 5, with_error(5), run="px", mode=None),  # no hint: "plain"
             traj("t7", 6, with_error(6)[:3], run="px", mode=None),
             *[traj(f"t{k}", k, hinted(k), run="hx", mode="hinted") for k in range(8, 14)]]
    store.save_trajectories(trajs)
    for t in trajs:
        store.add_score(t.id, scorer=SCORER, correct=t.id != "t9", value=1.0,
                        detail={"answer": t.answer, "extracted_by": "boxed", "ε": [1, None]})
    edit(store, "t2", "bob", "Divide first, carefully.\n")  # scored before: the score is stale
    edit(store, "t6", "ann", "Five sevens.\n")
    edit(store, "t6", "bob", "Five sevens: 35.\n")
    store.add_score("t6", scorer=SCORER, correct=True, value=0.5)  # re-scored after the edits
    store.add_review("t1", reviewer="ann", decision="accepted")
    store.add_review("t5", reviewer="ann", decision="accepted")  # cancelled, kept by a person
    store.add_review("t7", reviewer="bob", decision="rejected")
    store.set_step_labels("t1", reviewer="ann", labels={0: 1, 3: 0, 4: -1, 5: 1})
    store.set_step_labels("t5", reviewer="bob", labels={1: 1})
    store.set_step_labels("t6", reviewer="ann", labels={0: -1})
    store.set_step_labels("t6", reviewer="bob", labels={0: 1, 2: 1})
    c = campaigns.create_campaign(store, "eq", by="root", reviewers=["ann", "bob"],
                                  filter=QueueFilter(run_id="hx"), adjudicator="carol")
    for tid, votes in (("t8", ("accepted", "accepted")), ("t9", ("accepted", "accepted")),
                       ("t10", ("accepted", "rejected")), ("t11", ("rejected", "rejected")),
                       ("t12", ("rejected", "accepted"))):
        for who, d in zip(("ann", "bob"), votes, strict=True):
            decisions.decide(store, tid, reviewer=who, decision=d, campaign=c)
    campaigns.adjudicate(store, c, "t12", "accept", by="carol")
    store.set_step_labels("t12", reviewer="carol", labels={2: 1, 5: 1})
    store.set_step_labels("t8", reviewer="ann", labels={0: 1})


@pytest.fixture
def store(url):
    with Store(url) as s:
        fill(s)
        yield s


# --- the reference ---------------------------------------------------------------------------

def orm_records(store: Store, ids: Sequence[str], load_records: Any = None,
                ) -> Iterator[Record]:
    """Records with their trajectory read on its own through the ORM; what people and the
    scorer said comes from the store's records of one id (``load_records``)."""
    for tid in ids:
        [rec] = (load_records or store.load_records)([tid])
        with store.read() as s:
            row = s.get(TrajectoryRow, tid)
            p = s.get(ProblemRow, row.problem_id)
            segments = []
            for seg in s.scalars(select(SegmentRow).where(SegmentRow.trajectory_id == tid)
                                 .order_by(SegmentRow.position)):
                meta = dict(seg.meta or {})
                arts = s.scalars(select(ArtifactRow).where(ArtifactRow.segment_id == seg.id)
                                 .order_by(ArtifactRow.key, ArtifactRow.ordinal))
                for a in arts:
                    meta.setdefault(a.key, []).append(
                        a.data if a.key == "images" else json.loads(a.data))
                segments.append(Segment(seg.kind, seg.text, seg.source, meta, seg.closed))
            trajectory = Trajectory(
                problem=Problem(p.question, p.answer, p.kind, p.tests, p.id, dict(p.meta or {})),
                prompt=row.prompt, segments=segments, status=row.status, id=row.id,
                settings=dict(row.settings or {}), error=row.error, tokens=row.tokens,
                created_at=format_ts(row.created_at) or "")
        yield dataclasses.replace(rec, trajectory=trajectory)


def plain_row(rec: Record, cfg: ExportConfig, dataset: str) -> dict[str, Any] | None:
    """An export row built the plain way (None: a steps row left without steps)."""
    if dataset == "steps":
        row, _ = build_step_row(rec, cfg)
        return row if row["completions"] else None
    mod = modify(rec.trajectory, cfg.modify)
    t = mod.trajectory
    completion = t.completion()
    system = (t.settings.get("engine") or {}).get("system_prompt")
    segments = [{"kind": s.kind, "source": s.source, "start": a, "end": b,
                 **{k: None if s.meta.get(k) is None else str(s.meta[k])
                    for k in ("category", "error")}}
                for s, (a, b) in zip(t.segments, t.spans(), strict=True)]
    return {"id": t.id, "dataset": dataset,
            "messages": ([{"role": "system", "content": system}] if system else [])
            + [{"role": "user", "content": t.problem.question},
               {"role": "assistant", "content": completion}],
            "prompt": t.prompt, "completion": completion, "segments": segments,
            "loss_mask": merge_spans((a, b) for s, (a, b) in zip(t.segments, t.spans(),
                                                                   strict=True)
                                     if trained(s.kind, s.source, cfg.mask_hints)),
            **provenance(rec, t, mod.records)}


def plain_files(store: Store, ids: Sequence[str], cfg: ExportConfig,
                dataset: str) -> tuple[bytes, bytes]:
    rows = [r for rec in orm_records(store, ids) if (r := plain_row(rec, cfg, dataset))]
    jsonl = "".join(dumps(r) + "\n" for r in rows).encode("utf-8")
    buf = io.BytesIO()
    schema = arrow_schema(dataset)
    with pq.ParquetWriter(buf, schema, compression="zstd") as w:
        for i in range(0, len(rows), 1000):
            w.write_table(pa.Table.from_pylist([to_arrow_row(r) for r in rows[i:i + 1000]],
                                               schema=schema))
    return jsonl, buf.getvalue()


def manifest(out: Path) -> dict[str, Any]:
    m = json.loads((out / "manifest.json").read_text())
    del m["created_at"]
    return m


def test_records_read_in_bulk_equal_those_read_one_by_one_through_the_orm(store):
    """Every field, also what no export column shows (images and figures, closed, meta)."""
    paged = list(store.iter_records(["hx", "gx", "px"], batch_size=4))  # keyset pages
    ids = [r.trajectory.id for r in paged]
    assert len(ids) == 13 and len(set(ids)) == 13
    assert paged == list(orm_records(store, ids))
    backwards = list(store.load_records(ids[::-1], batch_size=5))
    assert backwards == list(orm_records(store, ids[::-1]))
    t3 = next(r.trajectory for r in backwards if r.trajectory.id == "t3")
    assert t3.segments[1].meta["images"] == [PNG, PNG[::-1]] and t3.segments[2].meta == {
        "images": []}


CASES = {
    "start": (SelectConfig(per_problem=100), ExportConfig(formats=("jsonl", "parquet"))),
    "modified": (SelectConfig(per_problem=2, require_correct=False,
                              modes=("greedy", "hinted", "plain")), ExportConfig(
        formats=("jsonl", "parquet"), mask_hints="human",
        modify=ModifyConfig(strip_human_hints=True, normalize_outputs=True,
                            max_output_chars=100))),
    "steps": (SelectConfig(dataset="steps"), ExportConfig(formats=("jsonl", "parquet"),
                                                          modify=ModifyConfig(
                                                              strip_human_hints=True))),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_export_writes_the_bytes_the_plain_export_wrote(store, tmp_path, monkeypatch,
                                                              case):
    sel, cfg = CASES[case]
    runs = ["hx", "gx", "px"]
    fast = export(store, tmp_path / "fast", runs, select_config=sel, config=cfg)
    ids = fast.selection.ids
    assert len(ids) >= 4, fast.selection.report.to_dict()  # a dataset with something in it
    jsonl, parquet = plain_files(store, ids, cfg, sel.dataset)
    assert (tmp_path / "fast" / "data.jsonl").read_bytes() == jsonl
    assert (tmp_path / "fast" / "data.parquet").read_bytes() == parquet
    # the same export with every record read through the ORM: the same manifest
    load_records = store.load_records
    monkeypatch.setattr(store, "load_records",
                        lambda ids: orm_records(store, ids, load_records))
    export(store, tmp_path / "orm", runs, select_config=sel, config=cfg)
    assert manifest(tmp_path / "fast") == manifest(tmp_path / "orm")
    for name in ("data.jsonl", "data.parquet"):
        assert (tmp_path / "fast" / name).read_bytes() == (tmp_path / "orm" / name).read_bytes()
