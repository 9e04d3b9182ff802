"""Problem import (every format, bad rows, idempotence), the sample set and the store CLI."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from startui.cli import store as cli_store
from startui.store import Store
from startui.store.problems import (
    SAMPLES,
    ProblemImportError,
    import_problems,
    load_sample_problems,
    parse_field_map,
)

GOOD = [
    {"id": 1, "question": "What is 2+2?", "answer": 4, "level": "easy"},
    {"id": "b", "question": "Sum of 1..10?", "answer": "55"},
    {"id": "c", "question": "Echo the input.", "tests": [{"input": "hi\n", "output": "hi\n"}],
     "starter_code": "import sys\n"},
    {"question": "No id, keyed by its text.", "answer": "x", "source": "other"},
]


@pytest.fixture
def store(tmp_path):
    with Store(f"sqlite:///{tmp_path / 'p.sqlite'}") as s:
        yield s


def write_jsonl(path: Path, rows: list, raw_lines: dict[int, str] | None = None) -> Path:
    lines = [json.dumps(r) for r in rows]
    for i, line in (raw_lines or {}).items():
        lines.insert(i, line)
    path.write_text("\n".join(lines) + "\n")
    return path


# --- JSONL -------------------------------------------------------------------------------------

def test_jsonl_import_fields_and_idempotence(store, tmp_path):
    f = write_jsonl(tmp_path / "aime.jsonl", GOOD)
    r = import_problems(store, f)
    assert (r.format, r.source, r.rows, r.inserted, r.skipped) == ("jsonl", "aime", 4, 4, 0)
    p = store.get_problem("aime:1")
    assert (p.question, p.answer, p.kind) == ("What is 2+2?", "4", "math")
    assert p.meta == {"source": "aime", "external_id": "1", "extra": {"level": "easy"}}
    code = store.get_problem("aime:c")
    assert code.kind == "code" and code.meta["starter_code"] == "import sys\n"
    assert code.tests == [{"type": "stdio", "input": "hi\n", "output": "hi\n"}]
    [other] = store.list_problems(source="other")
    assert other.id.startswith("other:") and other.answer == "x"

    again = import_problems(store, f)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 4)
    assert store.stats()["problems"] == 4

    changed = [dict(GOOD[0], answer=5)] + GOOD[1:]
    r3 = import_problems(store, write_jsonl(f, changed))
    assert (r3.inserted, r3.updated, r3.unchanged) == (0, 1, 3)
    assert store.get_problem("aime:1").answer == "5"


def test_jsonl_bad_rows_import_nothing(store, tmp_path):
    rows = [GOOD[0], {"id": 2, "answer": "3"}, {"id": 3, "question": "q", "kind": "physics"},
            {"id": 4, "question": "q", "tests": [{"stdin": "1"}]}, GOOD[1]]
    f = write_jsonl(tmp_path / "bad.jsonl", rows, raw_lines={2: "{not json", 3: ""})
    with pytest.raises(ProblemImportError) as e:
        import_problems(store, f)
    msg = str(e.value)
    assert "4 of 6 rows are invalid; nothing was imported" in msg
    assert "line 2: no question (columns: id, answer)" in msg
    assert "line 3: not valid JSON" in msg
    assert "line 5: kind must be 'math' or 'code', got 'physics'" in msg
    assert "line 6: tests[0]: expected {input, output}" in msg
    assert store.stats()["problems"] == 0

    r = import_problems(store, f, skip_invalid=True)
    assert (r.inserted, r.skipped, len(r.errors)) == (2, 4, 4)
    assert "line 3: not valid JSON" in r.summary()
    assert store.stats()["problems"] == 2


def test_duplicate_ids_in_one_file(store, tmp_path):
    f = write_jsonl(tmp_path / "d.jsonl", [GOOD[0], GOOD[1], dict(GOOD[0], question="again")])
    with pytest.raises(ProblemImportError, match=r"line 3: duplicate id '1' \(also at line 1\)"):
        import_problems(store, f)


def test_field_map_and_aliases(store, tmp_path):
    rows = [{"uid": "x1", "prompt_text": "Q1?", "solution": "7"},
            {"uid": "x2", "prompt_text": "Q2?", "solution": "8"}]
    f = write_jsonl(tmp_path / "mapped.jsonl", rows)
    with pytest.raises(ProblemImportError, match="--map question=COLUMN"):
        import_problems(store, f)
    fmap = parse_field_map(["question=prompt_text", "answer=solution", "id=uid"])
    r = import_problems(store, f, field_map=fmap, source="mine")
    assert r.columns == {"id": "uid", "question": "prompt_text", "answer": "solution"}
    assert "question <- prompt_text" in r.summary()
    assert store.get_problem("mine:x2").answer == "8"
    # a well-known column name needs no flag
    g = write_jsonl(tmp_path / "math.jsonl", [{"problem": "1+1?", "answer": "2"}])
    assert import_problems(store, g).columns == {"question": "problem", "answer": "answer"}


@pytest.mark.parametrize("items, message", [
    (["question"], "expected FIELD=COLUMN"),
    (["qestion=prompt"], "unknown field 'qestion'"),
    (["question="], "expected FIELD=COLUMN"),
])
def test_bad_field_map(items, message):
    with pytest.raises(ProblemImportError, match=message):
        parse_field_map(items)


def test_test_shapes(store, tmp_path):
    rows = [
        {"id": "apps", "question": "q",
         "tests": json.dumps({"inputs": ["1\n"], "outputs": ["2\n"]})},
        {"id": "fn", "question": "q", "tests": [{"fn_name": "f", "args": [1], "expected": 2}]},
        {"id": "apps-fn", "question": "q",
         "tests": {"inputs": [[1, 2]], "outputs": [3], "fn_name": "add"}},
        {"id": "lcb", "question": "q",
         "tests": [{"input": 5, "output": 25, "testtype": "stdin"}]},
    ]
    import_problems(store, write_jsonl(tmp_path / "t.jsonl", rows))
    assert store.get_problem("t:apps").tests == [{"type": "stdio", "input": "1\n",
                                                  "output": "2\n"}]
    assert store.get_problem("t:fn").tests == [{"type": "function", "fn_name": "f", "args": [1],
                                                "expected": 2}]
    assert store.get_problem("t:apps-fn").tests[0]["args"] == [1, 2]
    assert store.get_problem("t:lcb").tests == [{"type": "stdio", "input": "5", "output": "25"}]
    assert {p.kind for p in store.list_problems()} == {"code"}


@pytest.mark.parametrize("tests, message", [
    ("[oops", "tests is not valid JSON"),
    ({"inputs": ["1"], "outputs": []}, "1 inputs but 0 outputs"),
    ([{"fn_name": "f"}], "a function test needs 'fn_name', 'args' and 'expected'"),
    ([{"fn_name": "f", "args": 1, "expected": 2}], "'args' must be a list"),
    ("42", "tests must be a list"),
    (["x"], r"tests\[0\] must be an object"),
])
def test_bad_tests(store, tmp_path, tests, message):
    f = write_jsonl(tmp_path / "t.jsonl", [{"question": "q", "tests": tests}])
    with pytest.raises(ProblemImportError, match=message):
        import_problems(store, f)


def test_json_array_and_not_an_object(store, tmp_path):
    f = tmp_path / "arr.json"
    f.write_text(json.dumps([GOOD[0], ["not", "an", "object"]]))
    with pytest.raises(ProblemImportError, match="item 2: expected an object"):
        import_problems(store, f)
    f.write_text(json.dumps({"problems": GOOD}))
    assert import_problems(store, f).inserted == 4


# --- CSV, Parquet, datasets --------------------------------------------------------------------

def test_csv_import_with_multiline_and_line_numbers(store, tmp_path):
    f = tmp_path / "probs.csv"
    f.write_text(
        "\ufeffid,question,answer,tests\n"
        '1,"A question\nover two lines",3,\n'
        '2,Code?,,"[{""input"": ""1"", ""output"": ""1""}]"\n'
        "3,,5,\n"
        "4,Too,many,fields,here\n", encoding="utf-8")
    with pytest.raises(ProblemImportError) as e:
        import_problems(store, f)
    assert "line 5: no question" in str(e.value)
    assert "line 6: 1 more fields than the header" in str(e.value)
    r = import_problems(store, f, skip_invalid=True)
    assert (r.inserted, r.skipped) == (2, 2)
    assert store.get_problem("probs:1").question == "A question\nover two lines"
    assert store.get_problem("probs:2").tests == [{"type": "stdio", "input": "1", "output": "1"}]


def test_tsv(store, tmp_path):
    f = tmp_path / "p.tsv"
    f.write_text("id\tquestion\tanswer\nk\tWhat, with a comma?\t1\n")
    assert import_problems(store, f).inserted == 1
    assert store.get_problem("p:k").question == "What, with a comma?"


def test_parquet_import(store, tmp_path):
    table = pa.table({
        "id": [10, 11, 12],
        "question": ["Integer answer?", "Missing answer?", None],
        "answer": [3.0, float("nan"), 1.5],
        "tests": [None, [{"input": "a", "output": "b"}], None],
    })
    f = tmp_path / "set.parquet"
    pq.write_table(table, f)
    with pytest.raises(ProblemImportError, match="row 3: no question"):
        import_problems(store, f)
    r = import_problems(store, f, skip_invalid=True)
    assert (r.format, r.inserted, r.skipped) == ("parquet", 2, 1)
    assert store.get_problem("set:10").answer == "3"
    missing = store.get_problem("set:11")
    assert missing.answer is None and missing.kind == "code"


def test_datasets_save_to_disk(store, tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = [{"id": "d1", "question": "One?", "answer": "1"},
            {"id": "d2", "question": "Two?", "answer": "2"}]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "ds"))
    r = import_problems(store, tmp_path / "ds")
    assert (r.format, r.source, r.inserted) == ("datasets", "ds", 2)
    assert store.get_problem("ds:d2").answer == "2"

    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_list(rows),
        "test": datasets.Dataset.from_list([{"id": "d3", "question": "", "answer": "3"}]),
    })
    dd.save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(ProblemImportError, match="test row 1: no question"):
        import_problems(store, tmp_path / "dd")
    r2 = import_problems(store, tmp_path / "dd", skip_invalid=True, source="ds")
    assert (r2.inserted, r2.unchanged, r2.skipped) == (0, 2, 1)


@pytest.mark.parametrize("name, content, message", [
    ("x.xlsx", "", "unsupported file type '.xlsx'"),
    ("empty.jsonl", "\n\n", "no rows to import"),
    ("broken.parquet", "not parquet", "not a readable Parquet file"),
    ("broken.json", "{", "not valid JSON"),
])
def test_unreadable_files(store, tmp_path, name, content, message):
    f = tmp_path / name
    f.write_text(content)
    with pytest.raises(ProblemImportError, match=message):
        import_problems(store, f)


def test_missing_path_and_plain_directory(store, tmp_path):
    with pytest.raises(ProblemImportError, match="no such file"):
        import_problems(store, tmp_path / "nope.jsonl")
    with pytest.raises(ProblemImportError, match="not one saved by datasets"):
        import_problems(store, tmp_path)


# --- the bundled sample set --------------------------------------------------------------------

def test_sample_problems():
    probs = load_sample_problems()
    assert {p.kind for p in probs} == {"math", "code"}
    assert len({p.id for p in probs}) == len(probs)  # no two share an id
    assert all(p.id.startswith("sample:") for p in probs)
    assert all(p.answer for p in probs if p.kind == "math")
    assert all(p.tests for p in probs if p.kind == "code")
    by_id = {p.id: p for p in probs}
    assert by_id["sample:primes-below-1000"].answer == "76127"
    assert by_id["sample:telescoping-sum"].answer == "\\frac{20}{21}"


def test_sample_file_matches_its_generator():
    pytest.importorskip("sympy")
    from startui.data import make_sample_problems

    assert SAMPLES.read_text(encoding="utf-8") == make_sample_problems.render()


# A correct program for every code problem of the sample set, as a model would submit it.
REFERENCE_SOLUTIONS = {
    "sample:max-subarray": """\
n = int(input())
xs = list(map(int, input().split()))[:n]
best = cur = xs[0]
for x in xs[1:]:
    cur = max(x, cur + x)
    best = max(best, cur)
print(best)
""",
    "sample:count-primes": """\
import sys
n = int(sys.stdin.readline())
sieve = bytearray([1]) * (n + 1)
sieve[:2] = bytes(min(2, n + 1))
for i in range(2, int(n ** 0.5) + 1):
    if sieve[i]:
        sieve[i * i :: i] = bytes(len(range(i * i, n + 1, i)))
print(sum(sieve))
""",
    "sample:balanced-brackets": """\
def is_balanced(s: str) -> bool:
    stack, pairs = [], {")": "(", "]": "[", "}": "{"}
    for c in s:
        if c in "([{":
            stack.append(c)
        elif c in pairs and (not stack or stack.pop() != pairs[c]):
            return False
    return not stack
""",
    "sample:run-length-encoding": """\
import itertools
def rle(s: str) -> str:
    return "".join(f"{k}{len(list(g))}" for k, g in itertools.groupby(s))
""",
}


async def test_every_sample_code_problem_is_solved_by_its_reference_solution(pool):
    """The tests and expected outputs are right: a correct program scores correct on every code
    problem of the sample set (stdio ones read stdin), through the same scorer as a model's."""
    from startui.rft.scoring import score_trajectory
    from startui.trajectory import Segment, Trajectory

    code = [p for p in load_sample_problems() if p.kind == "code"]
    assert code, "the sample set has no code problems"
    missing = sorted({p.id for p in code} - REFERENCE_SOLUTIONS.keys())
    assert not missing, f"code problems without a reference solution in this test: {missing}"
    stale = sorted(REFERENCE_SOLUTIONS.keys() - {p.id for p in code})
    assert not stale, f"reference solutions for problems no longer in the sample set: {stale}"
    kinds = set()
    for p in code:
        answer = Segment("answer", f"Here it is.\n```python\n{REFERENCE_SOLUTIONS[p.id]}```")
        traj = Trajectory(problem=p, prompt="", segments=[answer], status="finished")
        r = await score_trajectory(traj, pool)
        assert r.correct is True, (p.id, r.detail)
        assert r.detail["passed"] == r.detail["total"] == len(p.tests), (p.id, r.detail)
        kinds |= {t.get("type", "stdio") for t in p.tests}
    assert kinds == {"stdio", "function"}  # both kinds of test were run


# --- CLI ---------------------------------------------------------------------------------------

def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="startui")
    cli_store.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_import_and_stats(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    f = write_jsonl(tmp_path / "probs.jsonl", [{"key": "k", "prompt": "Hi?", "answer": "1"}])
    code, out, err = run_cli(["import", str(f), "--map", "id=key", "--source", "s",
                              "--db", db], capsys)
    assert code == 0, err
    assert "1 rows — 1 new, 0 updated, 0 unchanged, 0 skipped" in out
    code, out, _ = run_cli(["import", str(f), "--map", "id=key", "--source", "s", "--json",
                            "--db", db], capsys)
    assert json.loads(out)["unchanged"] == 1
    code, out, _ = run_cli(["stats", "--json", "--db", db], capsys)
    stats = json.loads(out)
    assert code == 0 and stats["problems"] == 1
    assert stats["trajectories"] == 0 and stats["segments"] == 0
    code, out, _ = run_cli(["stats", "--db", db], capsys)
    assert "problems      1 (math 1)" in out


def test_cli_errors_exit_codes(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"id": 1}])
    code, _, err = run_cli(["import", str(bad), "--db", db], capsys)
    assert code == 1 and "line 1: no question" in err
    code, _, err = run_cli(["import", str(bad), "--map", "nope=x", "--db", db], capsys)
    assert code == 1 and "unknown field 'nope'" in err
    code, _, err = run_cli(["stats", "--db", "nosuch://x"], capsys)
    assert code == 2 and "no SQLAlchemy dialect" in err


def test_cli_default_db_comes_from_env(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("STARTUI_DB_URL", f"sqlite:///{tmp_path / 'env.sqlite'}")
    code, out, _ = run_cli(["stats", "--json"], capsys)
    assert code == 0 and json.loads(out)["database"].endswith("env.sqlite")
