"""Rule-based scoring: answer extraction, math equivalence (math-verify) on a table of tricky
cases written for this project, and code tests run in a fresh, real kernel."""

from __future__ import annotations

import asyncio

import pytest

from startui.answers import SCORER, answers_match, extract_answer, extract_boxed
from startui.rft.scoring import (
    final_answer,
    final_code,
    score_code,
    score_math,
    score_trajectory,
)
from startui.rft.select import score_run
from startui.store import Store
from startui.trajectory import Problem, Segment, Trajectory

# (model's answer, reference, equal?) — each row is a way graders go wrong.
EQUIVALENCES = [
    ("1/2", "0.5", True),
    ("\\frac{1}{2}", "0.5", True),
    ("\\dfrac{1}{2}", "1/2", True),
    ("0.50", "\\frac12", True),
    ("50\\%", "0.5", True),
    ("50%", "\\frac{1}{2}", True),
    ("\\{1, 2\\}", "\\{2, 1\\}", True),
    ("\\{1,2,3\\}", "\\{3,1,2\\}", True),
    ("[0, 1)", "[0,1)", True),
    ("(-\\infty, 2]", "(-\\infty,2]", True),
    ("2\\sqrt{2}", "\\sqrt{8}", True),
    ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", True),
    ("x^2+2x+1", "(x+1)^2", True),
    ("(a-b)(a+b)", "a^2-b^2", True),
    ("76127.0", "76127", True),
    ("1{,}000", "1000", True),
    ("10^{3}", "1000", True),
    ("x = 3", "3", True),
    ("\\text{(B)}", "B", True),
    ("-\\frac{3}{4}", "-0.75", True),
    ("\\pi/2", "\\frac{\\pi}{2}", True),
    ("\\sin(\\pi/6)", "1/2", True),
    ("\\binom{5}{2}", "10", True),
    ("Yes", "yes", True),
    # must NOT match
    ("0.333", "\\frac{1}{3}", False),
    ("2", "-2", False),
    ("[0, 1)", "(0, 1]", False),
    ("x^2+1", "(x+1)^2", False),
    ("\\{1, 2\\}", "\\{1, 2, 3\\}", False),
    ("3.14159", "\\pi", False),
    ("\\sqrt{2}", "2", False),
    ("12", "21", False),
    ("(1, 2)", "(2, 1)", False),  # an ordered pair is not a set
    ("", "0", False),
]


@pytest.mark.parametrize(("predicted", "reference", "equal"), EQUIVALENCES)
def test_equivalence_table(predicted, reference, equal):
    assert answers_match(predicted, reference) is equal


@pytest.mark.parametrize(("text", "expected"), [
    ("so \\boxed{1} then \\boxed{\\frac{2}{3}}", ("\\frac{2}{3}", "boxed")),
    ("nested \\boxed{\\{1, \\{2\\}\\}} ok", ("\\{1, \\{2\\}\\}", "boxed")),
    ("Therefore, the final answer is 42.", ("42", "phrase")),
    ("The answer is: $\\frac{1}{2}$", ("\\frac{1}{2}", "phrase")),
    ("Answer: 3.5.", ("3.5", "phrase")),
    ("first 7 apples, then 12 pears", ("12", "last_number")),
    ("a total of 1,024 ways", ("1,024", "last_number")),
    ("no numbers here", (None, None)),
])
def test_answer_extraction_falls_back_in_order(text, expected):
    assert extract_answer(text) == expected


def test_extract_boxed_keeps_its_behaviour():
    assert extract_boxed("\\boxed{a} and \\fbox{b}") == "b"
    assert extract_boxed("\\boxed{unclosed") is None
    assert extract_boxed("none") is None


def traj(segments, *, answer="42", kind="math", tests=None) -> Trajectory:
    return Trajectory(problem=Problem("q", answer=answer, kind=kind, tests=tests, id="p"),
                      prompt="", segments=segments, status="finished")


def test_math_score_uses_the_answer_then_fallbacks_and_says_how():
    t = traj([Segment("think", "Maybe \\boxed{41}."), Segment("answer", "So \\boxed{42}.")])
    r = score_math(t)
    assert r.correct is True and r.value == 1.0
    assert r.detail["answer"] == "42" and r.detail["extracted_by"] == "boxed"
    t = traj([Segment("think", "thinking"), Segment("answer", "The final answer is 42.")])
    assert score_math(t).correct and score_math(t).detail["extracted_by"] == "phrase"
    # kernel output never counts as the model's answer
    t = traj([Segment("think", "I got 40"), Segment("output", "42", "kernel")])
    assert final_answer(t) == ("40", "last_number") and score_math(t).correct is False
    t = traj([Segment("think", "no idea")])
    assert score_math(t).correct is False and score_math(t).detail["reason"]
    t = traj([Segment("answer", "\\boxed{1}")], answer=None)
    assert score_math(t).correct is None  # unscorable, not wrong


def test_final_code_prefers_the_answer_block_then_the_last_cell():
    cells = [Segment("code", "x = 1"), Segment("output", "", "kernel"),
             Segment("code", "print(2)"), Segment("output", "2", "kernel")]
    assert final_code(traj(cells)) == "print(2)"
    ans = Segment("answer", "Final:\n```python\nprint(int(input()) * 2)\n```\nDone.")
    assert final_code(traj([*cells, ans])) == "print(int(input()) * 2)"
    assert final_code(traj([Segment("think", "no code")])) is None


STDIO = [{"type": "stdio", "input": "3 4\n", "output": "7\n"},
         {"type": "stdio", "input": "10 -2\n", "output": "8"}]


def code_traj(program: str, tests) -> Trajectory:
    return traj([Segment("think", "Here is my solution."),
                 Segment("answer", f"```python\n{program}\n```")], kind="code", tests=tests,
                answer=None)


async def test_stdio_tests_run_in_a_fresh_kernel(pool):
    good = code_traj("a, b = map(int, input().split())\nprint(a + b)", STDIO)
    r = await score_code(good, pool, timeout=5)
    assert r.correct is True and r.detail["passed"] == 2 and r.value == 1.0
    via_stdin = code_traj("import sys\nprint(sum(map(int, sys.stdin.read().split())))", STDIO)
    assert (await score_code(via_stdin, pool, timeout=5)).correct is True
    wrong = code_traj("a, b = map(int, input().split())\nprint(a * b)", STDIO)
    r = await score_code(wrong, pool, timeout=5)
    assert r.correct is False and r.detail["passed"] == 0
    assert r.detail["failures"][0]["got"].strip() == "12"


async def test_state_from_the_trajectorys_own_kernel_does_not_leak_into_scoring(pool):
    # the model defined `table` in an earlier cell; the submitted program relies on it
    t = traj([Segment("code", "table = {7: 7, 8: 8}"), Segment("output", "", "kernel"),
              Segment("answer", "```python\na, b = map(int, input().split())\n"
                                "print(table[a + b])\n```")], kind="code", tests=STDIO[:1])
    r = await score_code(t, pool, timeout=5)
    assert r.correct is False
    assert "NameError" in r.detail["failures"][0]["error"]


async def test_function_tests_call_the_function_or_a_solution_method(pool):
    tests = [{"type": "function", "fn_name": "twice", "args": [[1, 2]], "expected": [2, 4]},
             {"type": "function", "fn_name": "twice", "args": [[]], "expected": []}]
    plain = code_traj("def twice(xs):\n    return [2 * x for x in xs]", tests)
    leet = code_traj("class Solution:\n    def twice(self, xs):\n        return [x + x for x in "
                     "xs]", tests)
    missing = code_traj("def thrice(xs):\n    return xs", tests)
    r1, r2, r3 = [await score_code(t, pool, timeout=5) for t in (plain, leet, missing)]
    assert r1.correct and r2.correct
    assert r3.correct is False and "no function 'twice'" in r3.detail["failures"][0]["error"]


async def test_a_hanging_program_fails_its_test_within_the_timeout(pool):
    tests = [{"type": "stdio", "input": "", "output": "1"}]
    t = code_traj("while True:\n    pass", tests)
    r = await score_code(t, pool, timeout=1)
    assert r.correct is False and r.detail["failures"][0]["error"] == "Timeout"


async def test_score_trajectory_needs_tests_and_a_pool_for_code():
    t = code_traj("print(1)", None)
    assert (await score_trajectory(t)).correct is None
    with pytest.raises(ValueError, match="kernel pool"):
        await score_trajectory(code_traj("print(1)", STDIO))


async def test_scores_are_stored_per_trajectory_and_recomputable(tmp_path, pool):
    store = Store(f"sqlite:///{tmp_path / 's.sqlite'}")
    try:
        settings = {"run_id": "r", "backend": "scripted", "model": "m"}
        right = traj([Segment("answer", "\\boxed{42}")])
        wrong = traj([Segment("answer", "\\boxed{41}")])
        code = code_traj("print(sum(map(int, input().split())))", STDIO)
        code.problem.id = "c"
        for t in (right, wrong, code):
            t.settings = dict(settings)
            store.save_trajectory(t)
        first = await score_run(store, ["r"], kernels=pool)
        assert (first.scored, first.correct, first.wrong) == (3, 2, 1)
        assert store.latest_scores(right.id)[SCORER].correct is True
        again = await score_run(store, ["r"], kernels=pool)
        assert again.scored == 0 and again.already_scored == 3
        # an edit makes the old score stale: it is scored again, the rest is not
        _, version = store.load_trajectory_versioned(wrong.id)
        store.update_trajectory_segments(wrong.id, [Segment("answer", "\\boxed{42}")],
                                         expected_version=version, editor="ann")
        after_edit = await score_run(store, ["r"], kernels=pool)
        assert after_edit.scored == 1 and after_edit.correct == 1
        everything = await asyncio.wait_for(score_run(store, ["r"], rescore=True, kernels=pool),
                                            60)
        assert everything.scored == 3 and everything.correct == 3
    finally:
        store.close()
