"""Rule-based scoring, the first step of Hint-RFT: is a trajectory's final answer right?

Math: the final answer is the last ``\\boxed{}`` (falling back on "the final answer is X", then on
the last number), compared with the reference by `math-verify` — a maintained comparer that knows
fractions, decimals, percentages, LaTeX, sets, intervals and symbolic expressions, so that
``\\frac{1}{2}``, ``0.5`` and ``1/2`` agree and ``(x+1)^2`` equals ``x^2+2x+1``. Code: the final
program runs against the problem's tests in a fresh kernel (never the one that wrote it: its state
could make a wrong program look right), each test under a timeout.

Everything here is a pure function of a trajectory and its problem, so scores are re-computable at
any time (``python -m startui score --run NAME``).
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from startui.answers import ScoreResult, answers_match

if TYPE_CHECKING:
    from startui.infer.kernels import Kernel, KernelPool
    from startui.trajectory import Trajectory

DEFAULT_TEST_TIMEOUT = 10.0  # seconds per test, as competitive-programming judges allow
_CODE_BLOCK = re.compile(r"```(?:python3?|py)[ \t]*\n(.*?)\n?```", re.DOTALL)
_RESULT_MARK = "__STARTUI_TEST__"


def _model_text(traj: Trajectory) -> str:
    return "".join(s.text for s in traj.segments
                   if s.source == "model" and s.kind in ("think", "answer"))


def final_answer(traj: Trajectory) -> tuple[str | None, str | None]:
    """The trajectory's final answer and how it was found (see Trajectory.final_answer)."""
    return traj.final_answer()


def score_math(traj: Trajectory) -> ScoreResult:
    reference = traj.problem.answer
    answer, how = final_answer(traj)
    detail: dict[str, Any] = {"method": "answer", "answer": answer, "extracted_by": how,
                              "reference": reference}
    if reference is None:
        detail["reason"] = "the problem has no reference answer"
        return ScoreResult(None, None, detail)
    if answer is None:
        detail["reason"] = "no final answer found"
        return ScoreResult(False, 0.0, detail)
    ok = answers_match(answer, reference)
    return ScoreResult(ok, 1.0 if ok else 0.0, detail)


# --- code ------------------------------------------------------------------------------------

def final_code(traj: Trajectory) -> str | None:
    """The program a code trajectory submits: the last python block of its answer segment, else
    the last code cell it ran (the paper's code answers end with the solution in a block)."""
    for s in reversed(traj.segments):
        if s.kind == "answer":
            blocks = _CODE_BLOCK.findall(s.text)
            if blocks:
                return blocks[-1]
            break
    blocks = _CODE_BLOCK.findall(_model_text(traj))
    cells = [s.text for s in traj.segments if s.kind == "code" and s.closed]
    if blocks and not cells:
        return blocks[-1]
    return cells[-1] if cells else None


# Defined once in the scoring kernel; each test is then one cell that prints one marker line.
_HARNESS = r'''
import contextlib as _sc, io as _sio, json as _sjson, sys as _ssys

def _startui_same(got, expected):
    if got == expected:
        return True
    if isinstance(got, float) or isinstance(expected, float):
        try:
            return abs(float(got) - float(expected)) <= 1e-6 * max(1.0, abs(float(expected)))
        except (TypeError, ValueError):
            return False
    if isinstance(got, (list, tuple)) and isinstance(expected, (list, tuple)):
        return len(got) == len(expected) and all(map(_startui_same, got, expected))
    return False

def _startui_same_text(got, expected):
    a = [ln.rstrip() for ln in got.strip().splitlines()]
    b = [ln.rstrip() for ln in expected.strip().splitlines()]
    if a == b:
        return True
    ta, tb = got.split(), expected.split()
    if len(ta) != len(tb):
        return False
    for x, y in zip(ta, tb):
        if x != y:
            try:
                if abs(float(x) - float(y)) > 1e-6 * max(1.0, abs(float(y))):
                    return False
            except ValueError:
                return False
    return True

def _startui_test(code, test):
    out, err = _sio.StringIO(), _sio.StringIO()
    data = test.get("input", "") if test["type"] == "stdio" else ""
    stdin = _sio.TextIOWrapper(_sio.BytesIO(str(data).encode()), encoding="utf-8")
    def _input(prompt=""):
        line = stdin.readline()
        if not line:
            raise EOFError("EOF when reading a line")
        return line.rstrip("\n")
    env = {"__name__": "__main__", "input": _input}
    res = {"passed": False}
    saved = _ssys.stdin
    _ssys.stdin = stdin
    try:
        with _sc.redirect_stdout(out), _sc.redirect_stderr(err):
            try:
                exec(compile(code, "<solution>", "exec"), env)
            except SystemExit:
                pass
            if test["type"] == "function":
                fn = env.get(test["fn_name"])
                if fn is None and isinstance(env.get("Solution"), type):
                    fn = getattr(env["Solution"](), test["fn_name"], None)
                if fn is None:
                    raise NameError(f"the code defines no function {test['fn_name']!r}")
                got = fn(*test.get("args", []))
    except Exception as e:
        res["error"] = f"{type(e).__name__}: {e}"[:300]
    finally:
        _ssys.stdin = saved
    if "error" not in res:
        if test["type"] == "function":
            expected = test.get("expected")
            ok = _startui_same(got, expected)
            if not ok and isinstance(expected, str) and not isinstance(got, str):
                try:
                    ok = _startui_same(got, _sjson.loads(expected))
                except ValueError:
                    pass
            res["passed"] = bool(ok)
            res["got"] = repr(got)[:200]
        else:
            res["passed"] = _startui_same_text(out.getvalue(), str(test.get("output", "")))
            res["got"] = out.getvalue()[:200]
    print("__STARTUI_TEST__" + _sjson.dumps(res))
'''


@dataclass
class TestOutcome:
    passed: bool
    error: str | None = None
    got: str | None = None


async def run_tests(code: str, tests: list[dict[str, Any]], kernel: Kernel, *,
                    timeout: float = DEFAULT_TEST_TIMEOUT) -> list[TestOutcome]:
    """Run ``code`` against each test in ``kernel`` (stdin fed through a patched ``sys.stdin`` and
    ``input``; function tests call ``fn_name``, also as a ``Solution`` method). A test that times
    out or kills the kernel fails; the others still run."""
    setup = await kernel.execute(_HARNESS, timeout=30)
    if setup.error:
        raise RuntimeError(f"the scoring harness failed to load: {setup.text[-300:]}")
    outcomes = []
    for test in tests:
        cell = f"_startui_test({code!r}, __import__('json').loads({json.dumps(test)!r}))"
        result = await kernel.execute(cell, timeout=timeout)
        if result.error in ("Timeout", "KernelDied"):
            outcomes.append(TestOutcome(False, result.error))
            if result.error == "KernelDied" or "restarted" in result.text:
                await kernel.execute(_HARNESS, timeout=30)  # fresh state: load it again
            continue
        line = next((ln for ln in result.text.splitlines() if ln.startswith(_RESULT_MARK)), None)
        if line is None:
            outcomes.append(TestOutcome(False, (result.error or "no verdict") + ": "
                                        + result.text[-200:]))
            continue
        verdict = json.loads(line[len(_RESULT_MARK):])
        outcomes.append(TestOutcome(bool(verdict.get("passed")), verdict.get("error"),
                                    verdict.get("got")))
    return outcomes


async def score_code(traj: Trajectory, kernels: KernelPool, *,
                     timeout: float = DEFAULT_TEST_TIMEOUT) -> ScoreResult:
    tests = traj.problem.tests or []
    code = final_code(traj)
    detail: dict[str, Any] = {"method": "tests", "total": len(tests)}
    if not tests:
        detail["reason"] = "the problem has no tests"
        return ScoreResult(None, None, detail)
    if code is None:
        detail.update(passed=0, reason="no final code found")
        return ScoreResult(False, 0.0, detail)
    kernel = await kernels.acquire()  # a fresh kernel: the pool never hands one out twice
    try:
        outcomes = await run_tests(code, tests, kernel, timeout=timeout)
    finally:
        await asyncio.shield(kernels.release(kernel))
    passed = sum(o.passed for o in outcomes)
    failures = [{"test": i, "error": o.error, "got": o.got}
                for i, o in enumerate(outcomes) if not o.passed][:3]
    detail.update(passed=passed, failures=failures, code_chars=len(code))
    return ScoreResult(passed == len(tests), passed / len(tests), detail)


def needs_kernel(traj: Trajectory) -> bool:
    return traj.problem.kind == "code" and bool(traj.problem.tests)


async def score_trajectory(traj: Trajectory, kernels: KernelPool | None = None, *,
                           timeout: float = DEFAULT_TEST_TIMEOUT) -> ScoreResult:
    """The rule score of one trajectory (math: final answer; code: tests in a fresh kernel)."""
    if traj.problem.kind == "code":
        if not traj.problem.tests:
            return ScoreResult(None, None, {"method": "tests", "total": 0,
                                            "reason": "the problem has no tests"})
        if kernels is None:
            raise ValueError("scoring a code problem needs a kernel pool to run its tests")
        return await score_code(traj, kernels, timeout=timeout)
    return score_math(traj)
