"""Hint-RFT filters and modifications on constructed trajectories, and the paper's selection
(D_seed, D_START) on a small store with known greedy and hinted outcomes."""

from __future__ import annotations

import pytest

from startui.answers import SCORER
from startui.rft.filters import FilterConfig, ModifyConfig, check, modify, normalize_output
from startui.rft.select import SelectConfig, select
from startui.store import Store
from startui.store.repository import NotFoundError
from startui.trajectory import Problem, Segment, Trajectory

HINT = "Wait, I can use Python to check if my approach is correct and refine it, if necessary.\n"


def hinted(answer: str = "42", *, think: str = "Let me think. It is 41.\n\n",
           output: str = "42", error: str | None = None, extra: list[Segment] = ()) -> list:
    return [Segment("think", think),
            Segment("hint", HINT, "auto", {"category": "self-reflection", "round": 1}),
            Segment("code", "print(6 * 7)"),
            Segment("output", output, "kernel", {"error": error} if error else {}),
            *extra,
            Segment("answer", f"So the answer is \\boxed{{{answer}}}.")]


def make(segments, **kw) -> Trajectory:
    return Trajectory(problem=Problem("What is 6*7?", answer="42", id="p"), prompt="",
                      segments=segments, status="finished", **kw)


# --- filters ---------------------------------------------------------------------------------

def test_a_clean_hinted_trajectory_passes_every_rule():
    assert check(make(hinted()), FilterConfig()) == []


def test_repetition_is_caught_by_ngrams_and_by_repeated_paragraphs():
    loop = "I keep computing the same product again and again without getting anywhere new. "
    t = make(hinted(think=loop * 6))
    assert check(t, FilterConfig()) == ["repetition"]
    para = "Let me re-check the multiplication table for six times seven carefully.\n\n"
    t = make(hinted(think=para * 3))
    assert "repetition" in check(t, FilterConfig(max_ngram_repeats=100))
    # varied reasoning of the same length is not repetitive, nor are the repeated round hints
    varied = " ".join(f"Step {i}: {i} times 7 is {i * 7}." for i in range(40))
    rounds = [Segment("hint", HINT, "auto", {"category": "self-reflection", "round": r})
              for r in (1, 2, 3, 4, 5, 6)]
    assert check(make([Segment("think", varied), *rounds, *hinted()]), FilterConfig()) == []
    assert check(t, FilterConfig(disabled=("repetition",), max_ngram_repeats=100)) == []


def test_no_executed_tool_call():
    plain = make([Segment("think", "It is 42."), Segment("answer", "\\boxed{42}")])
    assert check(plain, FilterConfig()) == ["no_tool_call"]
    capped = make([Segment("think", "x"), Segment("code", "print(1)"),
                   Segment("output", "Tool call limit reached", "kernel",
                           {"error": "ToolCallLimit"}), Segment("answer", "\\boxed{42}")])
    assert "no_tool_call" in check(capped, FilterConfig())


def test_an_error_at_the_end_counts_only_when_nothing_after_fixes_it():
    tb = "NameError: name 'y' is not defined"
    broken = make(hinted(output=tb, error="NameError"))
    assert check(broken, FilterConfig()) == ["unresolved_error"]
    fixed = make(hinted(output=tb, error="NameError", extra=[
        Segment("think", "Oops, a typo."), Segment("code", "print(42)"),
        Segment("output", "42", "kernel")]))
    assert check(fixed, FilterConfig()) == []
    timeout = make(hinted(output="TimeoutError: ...", error="Timeout"))
    assert check(timeout, FilterConfig()) == ["unresolved_error"]


def test_length_limits_and_the_tool_call_cap():
    t = make(hinted(think="x" * 500 + "\n\n"))
    assert check(t, FilterConfig(max_chars=300)) == ["too_long"]
    t.tokens = 900
    assert check(t, FilterConfig(max_chars=None, max_tokens=800)) == ["too_long"]
    many = []
    for i in range(4):
        many += [Segment("code", f"print({i})"), Segment("output", str(i), "kernel")]
    t = make([Segment("think", "go"), *many, Segment("answer", "\\boxed{42}")])
    assert check(t, FilterConfig(max_tool_calls=3)) == ["tool_call_cap"]
    assert check(t, FilterConfig(max_tool_calls=4)) == []
    with pytest.raises(ValueError, match="unknown filter rule"):
        FilterConfig(disabled=("vibes",))


# --- modification ----------------------------------------------------------------------------

def test_modifications_are_applied_to_a_copy_and_always_recorded():
    human = Segment("hint", "Check the case n = 0 too.\n\n", "human", {"category": "human"})
    out = "/tmp/startui-work-abc123/data.csv written   \n\n\n\nrows: 3  "
    t = make([*hinted(output=out)[:4], human, *hinted()[4:]])
    m = modify(t, ModifyConfig(strip_human_hints=True, normalize_outputs=True))
    assert [s.kind for s in m.trajectory.segments] == ["think", "hint", "code", "output",
                                                       "answer"]
    assert m.trajectory.segments[3].text == "./data.csv written\n\nrows: 3"
    assert m.index_map == [0, 1, 2, 3, 5]
    assert m.records == [
        {"op": "strip_human_hints", "segments": [4], "chars": len(human.text)},
        {"op": "normalize_outputs", "segments": [3], "max_output_chars": 2000}]
    assert t.segments[4].source == "human" and t.segments[3].text == out  # original untouched
    nothing = modify(make(hinted()), ModifyConfig(normalize_outputs=True))
    assert nothing.records == [{"op": "normalize_outputs", "segments": [],
                                "max_output_chars": 2000}]
    assert modify(make(hinted()), ModifyConfig()).records == []
    long = normalize_output("a" * 50 + "b" * 50, 20)
    assert long.startswith("a" * 10) and long.endswith("b" * 10) and "80 characters cut" in long


# --- selection -------------------------------------------------------------------------------

P = {k: Problem(f"Problem {k}", answer="42", id=f"t:{k}",
                meta={"source": "t", "external_id": k}) for k in "ABCDE"}


def save(store: Store, tid: str, problem: str, mode: str, correct: bool | None, *,
         segments=None, run: str = "r1", status: str = "finished") -> str:
    segs = segments or (hinted() if mode == "hinted" else [
        Segment("think", "Hmm."), Segment("answer", "\\boxed{41}")])
    t = Trajectory(problem=P[problem], prompt="<p>", segments=segs, status=status, id=tid,
                   settings={"run_id": run, "run_name": run, "mode": mode, "backend": "s",
                             "model": "m"})
    store.save_trajectory(t)
    if correct is not None:
        store.add_score(tid, scorer=SCORER, correct=correct)
    return tid


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'sel.sqlite'}")
    yield s
    s.close()


@pytest.fixture
def known(store):
    """A: greedy wrong, two hinted right (short and long)        → D_seed picks the short one
    B: greedy right, hinted right                                 → not in D_seed
    C: greedy wrong, hinted wrong                                 → nothing
    D: no greedy baseline; hinted right                           → not in D_seed
    E: greedy wrong; hinted right but repetitive; one accepted by a reviewer despite it,
       one right and clean but rejected by a reviewer              → the accepted one"""
    loop = "the same thought once more and once more and once more and once more " * 8
    save(store, "a-g", "A", "greedy", False)
    save(store, "a-1", "A", "hinted", True, segments=hinted(
        think=" ".join(f"Idea {i}: try {i} sixes." for i in range(12))))
    save(store, "a-2", "A", "hinted", True)
    save(store, "a-3", "A", "hinted", None, status="cancelled")
    save(store, "b-g", "B", "greedy", True)
    save(store, "b-1", "B", "hinted", True)
    save(store, "c-g", "C", "greedy", False)
    save(store, "c-1", "C", "hinted", False, segments=hinted("41"))
    save(store, "d-1", "D", "hinted", True)
    save(store, "e-g", "E", "greedy", False)
    save(store, "e-1", "E", "hinted", True, segments=hinted(think=loop))
    save(store, "e-2", "E", "hinted", True, segments=hinted(think="Clean and short. "))
    store.add_review("e-1", reviewer="ann", decision="accepted")
    store.add_review("e-2", reviewer="bob", decision="rejected")
    return store


def test_d_seed_keeps_problems_where_greedy_is_wrong_and_a_hinted_trajectory_right(known):
    sel = select(known, ["r1"], SelectConfig(dataset="seed"))
    assert sel.ids == ["a-2", "e-1"]
    r = sel.report
    assert r.trajectories == 12 and r.considered == 8  # greedy baselines are not exportable
    assert r.selected + sum(r.dropped.values()) == r.considered
    assert r.dropped == {"D_seed: greedy already right": 1, "D_seed: no greedy baseline": 1,
                         "not finished (cancelled)": 1, "over the per-problem cap (1)": 1,
                         "rejected by a reviewer": 1, "wrong answer": 1}
    assert r.rule_hits == {"repetition": 1}
    assert r.overrides == {"despite rules (repetition)": 1}
    assert r.seed_problems == {"greedy already right": 1, "greedy wrong, hinted right": 2,
                               "no greedy baseline": 1}
    assert "D_seed: 2 of 8 trajectories selected" in r.summary()


def test_d_start_keeps_at_most_k_per_problem_preferring_accepted_correct_short(known):
    sel = select(known, ["r1"], SelectConfig(dataset="start"))
    assert sel.ids == ["a-2", "b-1", "d-1", "e-1"]
    sel2 = select(known, ["r1"], SelectConfig(dataset="start", per_problem=2))
    assert sel2.ids == ["a-1", "a-2", "b-1", "d-1", "e-1"]
    # without the correctness requirement the wrong one may go, the rejected one never
    loose = select(known, ["r1"], SelectConfig(dataset="start", require_correct=False))
    assert "c-1" in loose.ids and "e-2" not in loose.ids
    # a reviewer's acceptance beats shortness: accept the long one of A
    known.add_review("a-1", reviewer="ann", decision="accepted")
    assert select(known, ["r1"], SelectConfig(dataset="start")).ids[0] == "a-1"


def test_selection_reports_unscored_and_stale_scores(known):
    save(known, "d-2", "D", "hinted", None)
    _, v = known.load_trajectory_versioned("b-1")
    known.update_trajectory_segments("b-1", hinted("43"), expected_version=v, editor="ann")
    sel = select(known, ["r1"], SelectConfig(dataset="start", per_problem=5))
    assert sel.report.dropped["not scored (run `score`)"] == 1
    assert sel.report.dropped["not scored since its last edit"] == 1
    assert "b-1" not in sel.ids


def test_runs_resolve_by_id_or_name_and_unknown_ones_say_what_exists(known):
    assert known.resolve_runs(["r1"]) == ["r1"]
    with pytest.raises(NotFoundError, match="unknown run 'nope'; recent runs: r1"):
        known.resolve_runs(["nope"])
    with pytest.raises(ValueError, match="at least one run"):
        known.resolve_runs([])
