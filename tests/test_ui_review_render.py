"""The Review tab's pure helpers: what a reviewer sees, without a browser."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from startui.trajectory import Problem, Segment, Trajectory
from startui.ui import render
from startui.ui import review_render as rr


def traj() -> Trajectory:
    return Trajectory(
        problem=Problem(question="What is 2 + 2?", answer="4"), prompt="p", status="finished",
        segments=[Segment("think", "Let me compute."), Segment("code", "print(2 + 2)"),
                  Segment("output", "4", "kernel"), Segment("hint", "Check it.", "human"),
                  Segment("answer", "So \\boxed{3}.", meta={"boxed": "3"})])


def item(**kw):
    base = dict(trajectory=traj(), version=2, review_status="pending", answer="3",
                reference="4", extracted_by="boxed", correct=False, reviews=[],
                my_labels={0: 1, 1: 0, 2: -1}, stale=[], revisions=0)
    base.update(kw)
    return SimpleNamespace(**base)


def stale(position=2, stored="4", fresh="5", error=None, code_position=1):
    return SimpleNamespace(position=position, stored=stored, fresh=fresh, error=error,
                           code_position=code_position)


def test_labels_are_shown_on_the_live_tabs_rendering():
    msgs = rr.item_messages(item(stale=[stale()]))
    plain = render.messages(traj())
    assert len(msgs) == len(plain)  # the same messages, marked: one renderer
    assert msgs[1]["metadata"]["title"] == "#0 ✅ +1 · 💭 Thought"  # a collapsible's title
    assert msgs[2]["content"].startswith("`#1 ➖ 0`\n\n```python\nprint(2 + 2)")  # own line
    assert msgs[3]["content"].startswith("`#2 ❌ -1 🕓 stale` **▶ Output**")
    assert msgs[4]["content"].startswith("`#3` **🧑 Hint · from a person**")  # unlabelled
    assert msgs[0] == plain[0]  # the problem is no step


def test_unlabelled_and_zero_are_different():
    marks = rr.segment_marks(traj(), {0: 0, 1: None})
    assert marks[0] == "#0 ➖ 0" and marks[1] == "#1" and marks[4] == "#4"
    choices = rr.segment_choices(traj(), {1: -1})
    assert choices[1] == ("#1 · code ❌ · print(2 + 2)", 1)
    assert choices[0][0] == "#0 · think · Let me compute."
    assert [rr.label_value(c) for c in ("+1", "0", "-1", "−1", "clear", None)] == \
        [1, 0, -1, -1, None, None]
    assert [rr.label_choice(v) for v in (1, 0, -1, None)] == ["+1", "0", "-1", "clear"]
    with pytest.raises(ValueError, match=r"\+1, 0 or -1"):
        rr.label_value("2")


def test_blank_thought_is_kept_when_it_carries_a_label():
    t = traj()
    t.segments.insert(1, Segment("think", "\n"))
    assert len(render.messages(t)) == len(render.messages(t, marks={0: "#0"}))
    assert len(render.messages(t, marks={1: "#1 ✅ +1"})) == len(render.messages(t)) + 1


def test_verdict_panel_puts_the_answer_beside_the_reference():
    panel = rr.verdict_panel(item())
    assert "| `3` | `4` |" in panel
    assert "❌ wrong" in panel and "extracted by *boxed*" in panel
    unscored = rr.verdict_panel(item(correct=None, answer=None, extracted_by=None))
    assert "➖ unscored" in unscored and "no answer extracted" in unscored and "`—`" in unscored
    assert "unscored since the edit" in rr.verdict_panel(item(correct=None, revisions=2))
    assert "✅ correct" in rr.verdict_panel(item(correct=True, answer="a|b"))
    assert "a\\|b" in rr.verdict_panel(item(answer="a|b"))  # a pipe does not break the table


def test_status_and_progress_lines():
    line = rr.item_status(item(stale=[stale(), stale(4)]), editable=False)
    assert "pending" in line and "version 2" in line and "2 stale outputs" in line
    assert "read-only" in line
    assert "queue is empty" in rr.item_status(None)
    reviews = [SimpleNamespace(decision="rejected", reviewer="bob", undone_at=None)]
    assert "last: rejected by bob" in rr.item_status(item(reviews=reviews))
    counts = {"pending": 6, "accepted": 3, "rejected": 1, "skipped": 0, "needs_review": 0,
              "total": 10}
    prog = rr.progress_line("reviewing as **ann**", counts,
                            {"mine": 7, "today": 2, "done": 4, "total": 10})
    assert "you: **2** today / **7** in all" in prog
    assert "**4 / 10** (40%)" in prog and "pending 6" in prog and "accepted 3" in prog


def test_diff_html_is_escaped():
    d = SimpleNamespace(kind="code<b>", change="changed", before="<script>x</script>",
                        after="print('<b>')", position=1, html="")
    out = rr.diff_html([d], "vs <original>")
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert "&lt;original&gt;" in out and "code&lt;b&gt; #1" in out
    assert "no changes" in rr.diff_html([], "t")


def test_diff_html_of_the_librarys_diff_is_escaped():
    edits = pytest.importorskip("startui.review.edits")
    before = traj().segments
    after = [Segment.from_dict(s.to_dict()) for s in before]
    after[1].text = "print('<script>alert(1)</script>')"
    out = rr.diff_html(edits.diff(before, after), "against the original")
    assert "<script>" not in out and "&lt;script&gt;" in out


def test_stale_panel_shows_stored_and_fresh():
    text = rr.stale_panel([stale(error="NameError")])
    assert "#2" in text and "cell #1" in text and "NameError" in text
    assert "```text\n4\n```" in text and "```text\n5\n```" in text
    assert rr.stale_choices([stale()]) == [("#2 (cell #1)", 2)]
    assert rr.stale_panel([]) == "No stale outputs."


def test_filter_controls_become_a_queue_filter():
    f = rr.queue_filter("pending", "wrong", "any", "", "math", "yes", "no", "any", " x ",
                        "shuffled", 7.0)
    assert (f.review_status, f.verdict, f.run_id, f.source, f.kind) == \
        ("pending", "wrong", None, None, "math")
    assert (f.has_tool_calls, f.human_hint, f.ends_in_error) == (True, False, None)
    assert (f.search, f.sort, f.seed) == ("x", "shuffled", 7)
    assert rr.queue_filter("any").review_status is None
    with pytest.raises(ValueError, match="verdict"):
        rr.queue_filter("pending", "maybe")


def test_api_strings_become_labels_and_segments():
    assert rr.parse_labels('{"3": -1, "4": null, "0": "+1"}') == {3: -1, 4: None, 0: 1}
    assert rr.parse_labels([[1, 0], ["2", 1]]) == {1: 0, 2: 1}
    assert rr.parse_labels("") == {}
    with pytest.raises(ValueError, match="JSON"):
        rr.parse_labels("{3: -1")
    with pytest.raises(ValueError, match="position"):
        rr.parse_labels({"3": 5})
    segs = rr.parse_segments('[{"kind": "code", "text": "print(1)"}]')
    assert segs == [Segment("code", "print(1)")]
    with pytest.raises(ValueError, match="kind"):
        rr.parse_segments('[{"text": "x"}]')
    with pytest.raises(ValueError, match="list"):
        rr.parse_segments('{"kind": "code"}')


def test_item_dict_and_deep_links():
    d = rr.item_dict(item(stale=[stale()]))
    assert d["version"] == 2 and d["correct"] is False and d["my_labels"] == \
        {"0": 1, "1": 0, "2": -1}
    assert d["segments"][1] == {"kind": "code", "text": "print(2 + 2)", "source": "model",
                                "meta": {}, "closed": True}
    assert d["stale"][0]["fresh"] == "5"
    assert rr.item_dict(None) is None
    assert rr.deep_link("abc") == "?t=abc"
    assert rr.deep_link("abc", "review") == "?t=abc&tab=review"
    assert rr.deep_link(None, "review") == ""
