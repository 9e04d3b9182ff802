"""The "steps" dataset (process supervision, TRL's stepwise-supervision columns) and the latest
revision in every export: which trajectories go in (accepted, labelled on their current
revision), how segments become steps (unlabelled ones merged forward, the unlabelled tail
dropped, the steps joined = the trajectory's text), the label mapping, provenance (reviewer,
revision, editors, labeller), loading with `datasets`, byte-identical re-exports, the CLI."""

from __future__ import annotations

import hashlib
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from startui import cli
from startui.answers import SCORER
from startui.rft.export import (
    LABEL_MAPPING,
    ExportConfig,
    export,
    from_arrow_row,
    read_jsonl,
    split_steps,
)
from startui.rft.filters import ModifyConfig
from startui.rft.select import SelectConfig, select
from startui.store import Store
from startui.trajectory import Problem, Segment, Trajectory
from tests.test_export import trajectories

STEPS = SelectConfig(dataset="steps")
T1_LABELS = {0: 1, 2: 0, 3: -1, 5: 1}  # think | human hint + auto hint | code | output + answer


def plain(tid: str, i: int, *, mode: str = "hinted") -> Trajectory:
    p = Problem(f"What is {i}*7?", answer=str(7 * i), id=f"m:{i}", meta={"source": "m"})
    return Trajectory(
        problem=p, prompt=f"<|im_start|>user\nWhat is {i}*7?<|im_end|>\n<|im_start|>assistant\n",
        segments=[Segment("think", f"{i} sevens.\n"), Segment("code", f"print({i} * 7)"),
                  Segment("output", str(7 * i), "kernel"),
                  Segment("answer", f"\\boxed{{{7 * i}}}")],
        status="finished", id=tid, created_at=f"2025-02-0{tid[-1]}T00:00:00+00:00",
        settings={"run_id": "exp", "run_name": "exp", "mode": mode, "sample": 0,
                  "backend": "scripted", "model": "m-1"})


def edit(store: Store, tid: str, editor: str, change) -> int:
    _, version = store.load_trajectory_versioned(tid)
    segments = store.load_trajectory(tid).segments
    change(segments)
    return store.update_trajectory_segments(tid, segments, expected_version=version,
                                            editor=editor)


def fourteen(segments: list[Segment]) -> None:
    segments[0].text = "Two sevens make fourteen.\n"


@pytest.fixture
def store(tmp_path):
    """t1 accepted and labelled; t2 accepted, then edited, then labelled on the new revision
    (older labels on the first); t3 rejected (labelled); t4 labelled, not accepted; t5 accepted,
    no labels; t6 accepted and labelled, then edited (the labels no longer apply); t7 a greedy
    baseline with a wrong answer, accepted and labelled; t8 a second labelled one for t1's
    problem."""
    s = Store(f"sqlite:///{tmp_path / 'steps.sqlite'}")
    trajs = trajectories() + [plain("t4", 4), plain("t5", 5), plain("t6", 6),
                              plain("t7", 7, mode="greedy"), plain("t8", 1)]
    for t in trajs:
        s.save_trajectory(t)
        s.add_score(t.id, scorer=SCORER, correct=t.id != "t7", value=float(t.id != "t7"))
    s.add_review("t1", reviewer="ann", decision="accepted")
    s.set_step_labels("t1", reviewer="ann", labels=T1_LABELS)
    s.set_step_labels("t2", reviewer="cyd", labels={0: -1, 3: 1})  # on revision 1
    s.add_review("t2", reviewer="ann", decision="accepted")
    assert edit(s, "t2", "bob", fourteen) == 2
    s.set_step_labels("t2", reviewer="ann", labels={0: 1, 1: -1})  # on revision 2
    s.set_step_labels("t2", reviewer="cyd", labels={3: 1})  # not the deciding reviewer
    s.add_review("t3", reviewer="cyd", decision="rejected")
    s.set_step_labels("t3", reviewer="cyd", labels={0: 1})
    s.set_step_labels("t4", reviewer="dan", labels={0: 1})
    s.add_review("t5", reviewer="ann", decision="accepted")
    s.add_review("t6", reviewer="ann", decision="accepted")
    s.set_step_labels("t6", reviewer="ann", labels={0: 1})
    edit(s, "t6", "bob", lambda segs: setattr(segs[0], "text", "Six sevens: 42.\n"))
    s.add_review("t7", reviewer="eve", decision="accepted")
    s.set_step_labels("t7", reviewer="eve", labels={3: 1})
    s.add_review("t8", reviewer="ann", decision="accepted")
    s.set_step_labels("t8", reviewer="ann", labels={0: -1})
    yield s
    s.close()


def current(store: Store, tid: str) -> Trajectory:
    return store.load_trajectory(tid)


def test_steps_rows_split_label_and_carry_provenance(store, tmp_path):
    result = export(store, tmp_path / "out", ["exp"], select_config=STEPS)
    rows = list(read_jsonl(tmp_path / "out"))
    assert [r["id"] for r in rows] == ["t1", "t8", "t2", "t7"]  # by (problem, trajectory)
    by = {r["id"]: r for r in rows}
    for row in rows:
        traj = current(store, row["id"])
        spans = traj.spans()
        end = spans[row["step_positions"][-1]][1]
        # the steps joined are exactly the trajectory's text, up to the last labelled segment
        assert "".join(row["completions"]) == traj.completion()[:end]
        assert row["prompt"] == traj.prompt and row["dataset"] == "steps"
        assert row["labels"] == [LABEL_MAPPING[x] for x in row["step_labels"]]
        assert len(row["completions"]) == len(row["labels"]) == len(row["step_kinds"]) == len(
            row["step_sources"]) == len(row["step_positions"])
        for text, pos, kind in zip(row["completions"], row["step_positions"],
                                   row["step_kinds"], strict=True):
            assert text.endswith(traj.segments[pos].render()) and kind == traj.segments[pos].kind
    t1 = by["t1"]
    segs = current(store, "t1").segments
    assert t1["completions"] == [segs[0].render(), segs[1].render() + segs[2].render(),
                                 segs[3].render(), segs[4].render() + segs[5].render()]
    assert "".join(t1["completions"]) == current(store, "t1").completion()
    assert t1["step_labels"] == [1, 0, -1, 1] and t1["labels"] == [True, True, False, True]
    assert t1["step_kinds"] == ["think", "hint", "code", "answer"]
    assert t1["step_sources"] == ["model", "auto", "model", "model"]
    assert t1["step_positions"] == [0, 2, 3, 5]
    assert (t1["review"], t1["version"], t1["labelled_by"]) == (
        {"status": "accepted", "reviewer": "ann", "editors": []}, 1, "ann")
    assert t1["problem"] == {"id": "m:1", "kind": "math", "answer": "7", "source": "m"}
    assert (t1["run"], t1["model"], t1["backend"], t1["mode"], t1["sample"]) == (
        "exp", "m-1", "scripted", "hinted", 0)
    assert t1["scores"]["rule"]["correct"] is True and t1["modifications"] == []
    assert t1["settings"]["engine"]["temperature"] == 0.6
    # t2: the edited revision, its own labels (the deciding reviewer's), the tail dropped
    t2 = by["t2"]
    assert t2["completions"][0] == "Two sevens make fourteen.\n"
    assert t2["step_labels"] == [1, -1] and t2["labels"] == [True, False]
    assert (t2["version"], t2["review"], t2["labelled_by"]) == (
        2, {"status": "accepted", "reviewer": "ann", "editors": ["bob"]}, "ann")
    segs2 = current(store, "t2").segments
    assert "".join(t2["completions"]) + segs2[2].render() + segs2[3].render() == current(
        store, "t2").completion()  # the unlabelled output and answer after step 2 are dropped
    assert by["t7"]["mode"] == "greedy" and by["t7"]["labelled_by"] == "eve"
    assert by["t7"]["scores"]["rule"]["correct"] is False  # a wrong answer is supervision too
    assert by["t8"]["step_labels"] == [-1] and by["t8"]["labels"] == [False]
    m = result.manifest
    assert m["dataset"] == "steps" and m["label_mapping"] == {"+1": True, "0": True,
                                                              "-1": False}
    c = m["counts"]
    assert (c["rows"], c["problems"], c["steps"]) == (4, 3, 8)
    assert c["by_label"] == {"+1": 4, "0": 1, "-1": 3}
    assert c["dropped_tail_segments"] == 2 + 3  # t2's output + answer, t8's last three
    assert c["by_mode"] == {"greedy": 1, "hinted": 3} and "trained_chars" not in c
    assert c["completion_chars"] == sum(len("".join(r["completions"])) for r in rows)
    assert m["selection"]["dropped"] == {
        "rejected by a reviewer": 1, "steps: not accepted by a reviewer": 1,
        "steps: no step labels on its current revision": 2}
    assert m["checksum"]["value"] == hashlib.sha256(
        (tmp_path / "out" / "data.jsonl").read_bytes()).hexdigest()


def test_split_steps_merges_forward_drops_the_tail_and_empty_steps():
    p = Problem("q")
    t = Trajectory(p, "", [Segment("think", "a"), Segment("think", "b"), Segment("code", "c"),
                           Segment("think", ""), Segment("answer", "d"), Segment("think", "e")])
    split = split_steps(t, {1: 1, 3: -1, 4: 0})
    assert [(s.text, s.label, s.kind, s.position) for s in split.steps] == [
        ("ab", 1, "think", 1), (t.segments[2].render(), -1, "think", 3), ("d", 0, "answer", 4)]
    assert "".join(s.text for s in split.steps) + "e" == t.completion()
    assert (split.dropped_tail, split.dropped_empty) == (1, 0)
    # an empty labelled step with nothing before it carries no text: dropped, counted
    split = split_steps(t, {1: 1, 2: 1, 3: -1})
    assert [s.position for s in split.steps] == [1, 2] and split.dropped_empty == 1
    assert split.dropped_tail == 2
    # positions: the stored revision's, when a modification removed segments
    split = split_steps(Trajectory(p, "", [Segment("think", "x"), Segment("answer", "y")]),
                        {0: 1, 2: -1}, positions=[0, 2])
    assert [(s.text, s.position, s.label) for s in split.steps] == [("x", 0, 1), ("y", 2, -1)]
    assert LABEL_MAPPING == {1: True, 0: True, -1: False}


def test_steps_load_with_datasets_equal_to_the_jsonl(store, tmp_path):
    import datasets

    export(store, tmp_path / "out", ["exp"], select_config=STEPS)
    out = tmp_path / "out"
    rows = list(read_jsonl(out))
    ds = datasets.load_from_disk(str(out / "dataset"))
    assert [from_arrow_row(r) for r in ds] == rows
    assert ds.data.schema.field("labels").type == pa.list_(pa.bool_())
    assert ds.data.schema.field("completions").type == pa.list_(pa.string())
    assert ds.data.schema.field("step_labels").type == pa.list_(pa.int64())
    assert [from_arrow_row(r) for r in pq.read_table(out / "data.parquet").to_pylist()] == rows
    cache = str(tmp_path / "hf-cache")
    from_parquet = datasets.load_dataset("parquet", data_files=str(out / "data.parquet"),
                                         split="train", cache_dir=cache)
    from_json = datasets.load_dataset("json", data_files=str(out / "data.jsonl"),
                                      split="train", cache_dir=cache)
    for loaded in (from_parquet, from_json):
        assert loaded.num_rows == 4
        assert {"prompt", "completions", "labels", "step_labels", "step_kinds", "step_sources",
                "labelled_by", "version", "review"} <= set(loaded.column_names)
        for got, want in zip(loaded, rows, strict=True):
            for col in ("id", "prompt", "completions", "labels", "step_labels", "step_kinds",
                        "step_sources", "step_positions", "labelled_by", "version"):
                assert got[col] == want[col]
            assert all(isinstance(x, bool) for x in got["labels"])


def test_steps_exports_are_byte_identical_and_modifications_keep_positions(store, tmp_path):
    a = export(store, tmp_path / "a", ["exp"], select_config=STEPS)
    b = export(store, tmp_path / "b", ["exp"], select_config=STEPS)
    for name in ("data.jsonl", "data.parquet"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    ma, mb = (json.loads((tmp_path / d / "manifest.json").read_text()) for d in "ab")
    ma.pop("created_at"), mb.pop("created_at")
    assert ma == mb and a.manifest["checksum"] == b.manifest["checksum"]
    # stripping t1's human hint: the labels stay on their segments, positions stay the store's
    cfg = ExportConfig(formats=("jsonl",), modify=ModifyConfig(strip_human_hints=True,
                                                               normalize_outputs=True))
    export(store, tmp_path / "m", ["exp"], select_config=STEPS, config=cfg)
    t1 = next(r for r in read_jsonl(tmp_path / "m") if r["id"] == "t1")
    segs = current(store, "t1").segments
    assert t1["step_positions"] == [0, 2, 3, 5] and t1["step_labels"] == [1, 0, -1, 1]
    assert t1["completions"][1] == segs[2].render()  # the human hint is gone
    assert "```output\n7\n./x.txt\n```\n" in t1["completions"][3]
    assert [m["op"] for m in t1["modifications"]] == ["strip_human_hints", "normalize_outputs"]


def test_steps_selection_requires_acceptance_and_labels_and_has_no_cap_by_default(store):
    assert SelectConfig().per_problem == 1 and SelectConfig(dataset="seed").per_problem == 1
    assert STEPS.per_problem is None and STEPS.to_dict()["per_problem"] is None
    sel = select(store, ["exp"], STEPS)
    assert sel.ids == ["t1", "t8", "t2", "t7"]
    assert sel.report.considered == 8 and sel.report.overrides == {}
    capped = select(store, ["exp"], SelectConfig(dataset="steps", per_problem=1))
    assert capped.ids == ["t8", "t2", "t7"]  # t8 is the shorter of m:1's two
    assert capped.report.dropped["over the per-problem cap (1)"] == 1
    assert select(store, ["exp"], SelectConfig(dataset="steps", modes=("hinted",))).ids == [
        "t1", "t8", "t2"]
    with pytest.raises(ValueError, match="'steps'"):
        SelectConfig(dataset="prm")
    assert "Steps (process supervision): 4 of 8" in sel.report.summary()


@pytest.mark.parametrize("dataset", ["seed", "start", "steps"])
def test_every_dataset_exports_the_latest_revision_with_reviewer_and_version(store, tmp_path,
                                                                             dataset):
    """t2 and t6 were accepted and then edited: every dataset has the edited text, the revision
    exported and who reviewed and edited it."""
    select_config = SelectConfig(dataset=dataset, require_correct=False)
    export(store, tmp_path / dataset, ["exp"], select_config=select_config)
    rows = {r["id"]: r for r in read_jsonl(tmp_path / dataset)}
    t2 = rows["t2"]
    text = t2["completion"] if dataset != "steps" else "".join(t2["completions"])
    assert "Two sevens make fourteen." in text and "Two sevens.\n" not in text
    assert t2["version"] == 2
    assert t2["review"] == {"status": "accepted", "reviewer": "ann", "editors": ["bob"]}
    if dataset != "steps":
        t6 = rows["t6"]
        assert t6["completion"] == current(store, "t6").completion()
        assert t6["completion"].startswith("Six sevens: 42.") and t6["version"] == 2
        assert t6["review"] == {"status": "accepted", "reviewer": "ann", "editors": ["bob"]}
        assert all(r["version"] >= 1 and "reviewer" in r["review"] for r in rows.values())


def test_the_export_command_writes_steps(store, tmp_path, capsys):
    url = store.url
    out = tmp_path / "cli"
    assert cli.main(["export", str(out), "--run", "exp", "--db", url, "--dataset", "steps",
                     "--formats", "jsonl,parquet"]) == 0
    text = capsys.readouterr().out
    assert "Steps (process supervision): 4 of 8 trajectories selected" in text
    assert "steps: no step labels on its current revision" in text and "wrote 4 rows" in text
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["dataset"] == "steps" and manifest["counts"]["steps"] == 8
    assert manifest["options"]["select"]["per_problem"] is None
    rows = list(read_jsonl(out))
    assert [r["id"] for r in rows] == ["t1", "t8", "t2", "t7"]
    assert all(set(r) >= {"prompt", "completions", "labels"} for r in rows)
    assert cli.main(["export", str(out), "--run", "exp", "--db", url, "--dataset", "steps",
                     "--per-problem", "1", "--dry-run", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dataset"] == "steps" and report["selected"] == 3
    with pytest.raises(SystemExit):
        cli.main(["export", str(out), "--run", "exp", "--db", url, "--dataset", "prm"])
    assert "invalid choice: 'prm'" in capsys.readouterr().err
