"""The hint library and its policies."""

from __future__ import annotations

import json

import pytest

from startui.infer.hints import MATH_HINTS, ROUND_HINTS, Hint, HintLibrary, HintPolicy
from startui.trajectory import Problem


def test_the_papers_six_math_hints_open_a_python_block():
    assert [h.category for h in MATH_HINTS] == [
        "complex calculations", "self-reflection", "check logic", "alternative method",
        "general", "deeper think"]
    assert all(h.opens_code for h in MATH_HINTS)


def test_free_text_hints_open_code_only_with_a_trailing_fence():
    assert Hint.parse("Check it.\n```python").opens_code
    assert Hint.parse("Check it.\n```python").text == "Check it."
    assert not Hint.parse("Think about parity.").opens_code
    for hint in MATH_HINTS:  # what the UI's hint picker inserts parses back to the same hint
        assert Hint.parse(hint.written, hint.category) == hint


def test_rounds_escalate_and_code_problems_get_the_debug_hint_with_their_tests():
    policy = HintPolicy(rounds=3)
    math = Problem("1+1?")
    assert [policy.round_hint(i, math) for i in range(4)] == [*ROUND_HINTS, ROUND_HINTS[-1]]
    code = Problem("Echo the input.", kind="code",
                   tests=[{"type": "stdio", "input": "5\n", "output": "5\n"}])
    debug = policy.round_hint(0, code)
    assert debug.category == "debug" and "{testcase}" not in debug.text
    assert '"5\\n"' in debug.text  # the sample test is embedded in the hint


def test_conjunction_insertion_is_seeded_and_respects_categories():
    a = HintPolicy(conjunction_p=0.5, seed=3)
    b = HintPolicy(conjunction_p=0.5, seed=3)
    assert [a.insert_at_conjunction() for _ in range(50)] == \
           [b.insert_at_conjunction() for _ in range(50)]
    only = HintPolicy(conjunction_p=1.0, categories=("general",), seed=1)
    assert {only.conjunction_hint().category for _ in range(20)} == {"general"}
    with pytest.raises(ValueError, match="probability"):
        HintPolicy(conjunction_p=1.5)


def test_user_hints_come_from_json_or_text_files(tmp_path):
    lib = HintLibrary()
    j = tmp_path / "hints.json"
    j.write_text(json.dumps([
        {"category": "units", "text": "Let me check the units with Python.\n```python"},
        {"category": "final", "text": "Let me verify the final answer once more.", "use": "round"},
    ]))
    lib.add_file(j)
    assert lib.by_category("units").opens_code
    assert lib.rounds[-1].text == "Let me verify the final answer once more."
    t = tmp_path / "hints.txt"
    t.write_text("Try a smaller case.\n\nDraw it.\n")
    lib.add_file(t)
    assert [h.text for h in lib.math[-2:]] == ["Try a smaller case.", "Draw it."]
    bad = tmp_path / "bad.json"
    bad.write_text('[{"category": "x"}]')
    with pytest.raises(ValueError, match="needs a 'text'"):
        lib.add_file(bad)
    with pytest.raises(ValueError, match="cannot read"):
        lib.add_file(tmp_path / "missing.json")
