"""The training-ready export: JSONL, Parquet and a datasets folder that load back equal, offsets
that slice the right text, a loss mask without kernel outputs, provenance, and byte-identical
output for the same store and options."""

from __future__ import annotations

import hashlib
import json

import pyarrow.parquet as pq
import pytest

from startui import cli
from startui.answers import SCORER
from startui.rft.export import (
    ExportConfig,
    export,
    from_arrow_row,
    merge_spans,
    read_jsonl,
)
from startui.rft.filters import ModifyConfig
from startui.rft.select import SelectConfig
from startui.store import Store
from startui.trajectory import Problem, Segment, Trajectory

HUMAN = "Check it with a loop over all cases, please.\n\n"


def trajectories() -> list[Trajectory]:
    def math(i: int, segments: list[Segment]) -> Trajectory:
        p = Problem(f"What is {i}*7?", answer=str(7 * i), id=f"m:{i}",
                    meta={"source": "m", "external_id": str(i)})
        return Trajectory(problem=p, prompt=f"<|im_start|>user\nWhat is {i}*7?<|im_end|>\n"
                          "<|im_start|>assistant\n", segments=segments, status="finished",
                          id=f"t{i}", created_at=f"2025-01-0{i}T00:00:00+00:00",
                          settings={"run_id": "exp", "run_name": "exp", "mode": "hinted",
                                    "sample": 0, "backend": "scripted", "model": "m-1",
                                    "engine": {"system_prompt": "Be brief.", "temperature": 0.6}})

    a = math(1, [
        Segment("think", "Seven, I think.\n\n"),
        Segment("hint", HUMAN, "human", {"category": "human"}),
        Segment("hint", "Wait, I can use Python to check if my approach is correct and refine "
                        "it, if necessary.\n", "auto", {"category": "self-reflection",
                                                         "round": 1}),
        Segment("code", "open('x.txt', 'w').write('7')\nprint(1 * 7)"),
        Segment("output", "7   \n/tmp/startui-work-q1w2/x.txt\n\n\n", "kernel",
                {"duration": 0.01}),
        Segment("answer", "The kernel agrees: \\boxed{7}.")])
    b = math(2, [Segment("think", "Two sevens.\n"), Segment("code", "print(2 * 7)"),
                 Segment("output", "14", "kernel"), Segment("answer", "\\boxed{14}")])
    c = math(3, [Segment("think", "Three sevens.\n"), Segment("code", "print(3 * 7)"),
                 Segment("output", "21", "kernel"), Segment("answer", "\\boxed{21}")])
    return [a, b, c]


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'exp.sqlite'}")
    for t in trajectories():
        s.save_trajectory(t)
        s.add_score(t.id, scorer=SCORER, correct=True, value=1.0, detail={"answer": t.answer})
    _, v = s.load_trajectory_versioned("t2")
    edited = s.load_trajectory("t2").segments
    edited[0].text = "Two sevens make fourteen.\n"
    s.update_trajectory_segments("t2", edited, expected_version=v, editor="bob")
    s.add_score("t2", scorer=SCORER, correct=True, value=1.0)  # re-scored after the edit
    s.add_review("t1", reviewer="ann", decision="accepted")
    s.add_review("t3", reviewer="cyd", decision="rejected")
    yield s
    s.close()


def test_rows_slice_right_and_never_train_on_kernel_output(store, tmp_path):
    result = export(store, tmp_path / "out", ["exp"])
    rows = list(read_jsonl(tmp_path / "out"))
    assert [r["id"] for r in rows] == ["t1", "t2"]  # t3 was rejected by a reviewer
    originals = {t.id: t for t in store.iter_trajectories(run_id="exp")}
    for row in rows:
        traj = originals[row["id"]]
        assert row["completion"] == traj.completion() and row["prompt"] == traj.prompt
        assert row["messages"] == [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": traj.problem.question},
            {"role": "assistant", "content": row["completion"]}]
        for seg, meta in zip(traj.segments, row["segments"], strict=True):
            assert row["completion"][meta["start"]:meta["end"]] == seg.render()
            assert (meta["kind"], meta["source"]) == (seg.kind, seg.source)
        outputs = [(m["start"], m["end"]) for m in row["segments"] if m["kind"] == "output"]
        others = [(m["start"], m["end"]) for m in row["segments"] if m["kind"] != "output"]
        assert row["loss_mask"] == merge_spans(others)
        trained = "".join(row["completion"][s:e] for s, e in row["loss_mask"])
        for s, e in outputs:
            assert row["completion"][s:e] not in trained
            assert all(e0 <= s or s0 >= e for s0, e0 in row["loss_mask"])
    t1, t2 = rows
    assert t1["review"] == {"status": "accepted", "reviewer": "ann", "editors": []}
    assert t2["review"] == {"status": "pending", "reviewer": None, "editors": ["bob"]}
    assert t2["version"] > 1 and "fourteen" in t2["completion"]
    assert t1["problem"] == {"id": "m:1", "kind": "math", "answer": "7", "source": "m"}
    assert (t1["run"], t1["model"], t1["backend"], t1["mode"], t1["sample"]) == (
        "exp", "m-1", "scripted", "hinted", 0)
    assert t1["scores"]["rule"]["correct"] is True and t1["scores"]["rule"]["value"] == 1.0
    assert t1["settings"]["engine"]["temperature"] == 0.6
    assert t1["modifications"] == [] and t1["dataset"] == "start"
    m = result.manifest
    assert m["counts"]["rows"] == 2 and m["counts"]["by_run"] == {"exp": 2}
    assert m["selection"]["dropped"] == {"rejected by a reviewer": 1}
    assert m["checksum"]["value"] == hashlib.sha256(
        (tmp_path / "out" / "data.jsonl").read_bytes()).hexdigest()


def test_parquet_and_datasets_load_back_equal_to_the_jsonl(store, tmp_path):
    import datasets

    export(store, tmp_path / "out", ["exp"])
    rows = list(read_jsonl(tmp_path / "out" / "data.jsonl"))
    table = pq.read_table(tmp_path / "out" / "data.parquet")
    assert [from_arrow_row(r) for r in table.to_pylist()] == rows
    ds = datasets.load_from_disk(str(tmp_path / "out" / "dataset"))
    assert ds.num_rows == 2
    assert [from_arrow_row(r) for r in ds] == rows
    first = ds[0]
    s, e = first["loss_mask"][0]
    assert first["completion"][s:e].startswith("Seven, I think.")


def test_hints_can_be_masked_and_modifications_are_recorded(store, tmp_path):
    cfg = ExportConfig(formats=("jsonl",), mask_hints="all",
                       modify=ModifyConfig(strip_human_hints=True, normalize_outputs=True))
    export(store, tmp_path / "out", ["exp"], config=cfg)
    t1 = next(read_jsonl(tmp_path / "out"))
    assert HUMAN not in t1["completion"]
    assert [s["kind"] for s in t1["segments"]] == ["think", "hint", "code", "output", "answer"]
    hint = t1["segments"][1]
    assert hint["category"] == "self-reflection"
    assert all(e <= hint["start"] or s >= hint["end"] for s, e in t1["loss_mask"])
    out = t1["segments"][3]
    assert t1["completion"][out["start"]:out["end"]] == "```output\n7\n./x.txt\n```\n"
    assert t1["modifications"] == [
        {"op": "strip_human_hints", "segments": [1], "chars": len(HUMAN)},
        {"op": "normalize_outputs", "segments": [4], "max_output_chars": 2000}]
    # only human hints out of the loss: the auto hint is trained on
    export(store, tmp_path / "h", ["exp"], config=ExportConfig(formats=("jsonl",),
                                                               mask_hints="human"))
    t1 = next(read_jsonl(tmp_path / "h"))
    human, auto = t1["segments"][1], t1["segments"][2]
    assert [human["start"], human["end"]] not in t1["loss_mask"]
    assert any(s <= auto["start"] and auto["end"] <= e for s, e in t1["loss_mask"])


def test_the_same_store_and_options_give_byte_identical_exports(store, tmp_path):
    a = export(store, tmp_path / "a", ["exp"], select_config=SelectConfig(per_problem=1))
    b = export(store, tmp_path / "b", ["exp"], select_config=SelectConfig(per_problem=1))
    for name in ("data.jsonl", "data.parquet"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    ma, mb = (json.loads((tmp_path / d / "manifest.json").read_text()) for d in "ab")
    ma.pop("created_at"), mb.pop("created_at")
    assert ma == mb and a.manifest["checksum"] == b.manifest["checksum"]
    state = json.loads((tmp_path / "a" / "dataset" / "state.json").read_text())
    assert state["_fingerprint"] == a.manifest["checksum"]["value"][:16]
    # a re-export into the same folder replaces it cleanly
    export(store, tmp_path / "a", ["exp"], config=ExportConfig(formats=("jsonl",)))
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "data.jsonl", "data.parquet", "dataset", "manifest.json"]


def test_the_export_command(store, tmp_path, capsys):
    url = store.url
    out = tmp_path / "cli"
    assert cli.main(["export", str(out), "--run", "exp", "--db", url, "--formats",
                     "jsonl,parquet", "--normalize-outputs"]) == 0
    text = capsys.readouterr().out
    assert "D_START: 2 of 3 trajectories selected" in text and "wrote 2 rows" in text
    assert sorted(p.name for p in out.iterdir()) == ["data.jsonl", "data.parquet",
                                                      "manifest.json"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["options"]["export"]["modify"]["normalize_outputs"] is True
    assert cli.main(["export", str(out), "--run", "exp", "--db", url, "--dry-run",
                     "--dataset", "seed"]) == 0
    assert "problems: no greedy baseline 2" in capsys.readouterr().out
    assert cli.main(["export", str(out), "--run", "nope", "--db", url]) == 1
    assert "unknown run 'nope'" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert cli.main(["export", str(tmp_path / "file"), "--run", "exp", "--db", url]) == 1
    assert "is a file" in capsys.readouterr().err
    assert cli.main(["export", str(out), "--run", "exp", "--db", url, "--formats", "xml"]) == 1
    assert "unknown export format" in capsys.readouterr().err
