"""Trajectory digests: selection and the Dataset tab read each trajectory's text-derived facts
from a digest made once per version instead of from its segments — and must come out exactly
as they did from the text, on a store with everything that changes a selection (edits, stale
scores, reviews, campaigns with consensus, disputes and adjudication, step labels, greedy and
hinted runs, repetitive, erroring, capped and over-long trajectories)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from sqlalchemy import func
from sqlalchemy import select as sql

from startui.answers import SCORER
from startui.review import campaigns, decisions, labels, users
from startui.rft import dashboard, digest
from startui.rft.filters import FilterConfig
from startui.rft.select import SelectConfig, select
from startui.store import Store
from startui.store.models import TrajectoryDigestRow
from startui.store.queue import QueueFilter
from startui.store.standing import Standing
from startui.trajectory import TOOL_LIMIT_ERROR, Problem, Segment, Trajectory

RUN = "mix"
LOOP = "so the sum of the primes below ten is seventeen and we check it once more"


def segs(kind: str, answer: str = "6") -> list[Segment]:
    """The segments of one kind of trajectory (the answer is 6 when right)."""
    think = Segment("think", "Three twos make six, I think. \\boxed{7}\n\nLet me check.")
    hint = Segment("hint", "Wait, I can use Python to check.\n```python\n", "auto",
                   {"category": "self-reflection", "round": 1})
    code, out = Segment("code", "print(2 * 3)"), Segment("output", "6", "kernel")
    done = Segment("answer", f"So \\boxed{{{answer}}}.")
    if kind == "greedy":
        return [Segment("think", "About seven."), Segment("answer", f"So \\boxed{{{answer}}}.")]
    if kind == "repetitive":
        loop = Segment("think", "\n\n".join([LOOP] * 6))
        return [think, hint, code, out, loop, done]
    if kind == "erroring":
        return [think, hint, code, Segment("output", "ZeroDivisionError", "kernel",
                                           {"error": "ZeroDivisionError"}), done]
    if kind == "capped":
        return [think, hint, code, out, Segment("code", "print(1)"),
                Segment("output", "refused", "kernel", {"error": TOOL_LIMIT_ERROR}), done]
    if kind == "no_tool":
        return [think, hint, Segment("think", "No need for code."), done]
    if kind == "long":
        return [think, hint, code, out, Segment("think", "x" * 70_000), done]
    if kind == "stutter":  # a short phrase again and again: only short n-grams see it
        return [Segment("think", "Hmm, wait, let me see. " * 4 + "Six."), hint, code, out, done]
    if kind == "human":
        return [think, Segment("hint", "Run it in Python.", "human"), code, out, done]
    if kind == "two_rounds":
        second = Segment("hint", "Wait, think more deeply.\n```python\n", "auto",
                         {"category": "deeper think", "round": 2})
        return [think, hint, code, out, Segment("think", "Now \\boxed{6}."), second,
                Segment("code", "print(6)"), Segment("output", "6", "kernel"), done]
    return [think, hint, code, out, done]  # "hinted"


def add(store: Store, i: int, kind: str, *, problem: int, answer: str = "6",
        status: str = "finished", correct: bool | None = None, run: str = RUN,
        mode: str | None = None) -> str:
    settings = {"run_id": run, "run_name": run, "hints": {"rounds": 2}}
    if mode or kind == "greedy":
        settings["mode"] = mode or "greedy"
    elif i % 2:  # older trajectories carry no mode: hints decide it
        settings["mode"] = "hinted"
    kind_of = "code" if problem == 9 else "math"
    t = Trajectory(problem=Problem(f"What is 2 * 3? (#{problem})", answer="6", id=f"p{problem}",
                                   kind=kind_of, meta={"source": "mix",
                                                       "external_id": str(problem)}),
                   prompt="p", status=status, segments=segs(kind, answer), id=f"t{i:02d}",
                   settings=settings, tokens=100 * i,
                   created_at=f"2026-02-01T00:00:{i:02d}+00:00")
    store.save_trajectory(t)
    if correct is not None:
        store.add_score(t.id, scorer=SCORER, correct=correct,
                        detail={"answer": answer, "extracted_by": "boxed", "reference": "6"})
    return t.id


def edit(store: Store, tid: str, text: str, who: str = "ann") -> None:
    traj, version = store.load_trajectory_versioned(tid)
    traj.segments[0] = Segment("think", text)
    store.update_trajectory_segments(tid, traj.segments, expected_version=version, editor=who)


def build(store: Store) -> None:
    for name, role in (("root", "admin"), ("ann", "reviewer"), ("bob", "reviewer"),
                       ("cat", "reviewer")):
        users.add_user(store, name, None, role=role)
    i = 0

    def put(kind: str, problem: int, **kw) -> str:
        nonlocal i
        i += 1
        return add(store, i, kind, problem=problem, **kw)

    greedy_right = put("greedy", 0, correct=True)  # a greedy baseline, right only on p0
    for p in range(6):  # ... and hinted samples per problem
        if p:
            put("greedy", p, answer="7", correct=False)
        put("two_rounds" if p % 2 else "hinted", p, correct=True)
    put("hinted", 1, correct=False, answer="7")
    rep = put("repetitive", 2, correct=True)
    put("erroring", 3, correct=True)
    put("capped", 3, correct=True)
    put("no_tool", 4, correct=True)
    long = put("long", 4, correct=True)
    put("human", 5, correct=False, answer="5")
    put("hinted", 5)  # never scored
    stale = put("hinted", 2, correct=True)
    edit(store, stale, "An edited thought. \\boxed{6}")  # its score is stale now
    put("hinted", 6, status="running")
    kept = put("hinted", 6, status="interrupted", correct=True)
    put("hinted", 7, status="error")
    put("stutter", 7, correct=True)
    put("hinted", 9, correct=True)  # a code problem
    put("hinted", 8, correct=True, mode="plain")
    put("greedy", 8, correct=False)
    put("hinted", 0, correct=True, run="other")  # another run
    # people: single decisions (an accepted rule-breaker, an interrupted one, a rejection)
    decisions.decide(store, rep, reviewer="ann", decision="accepted")
    decisions.decide(store, kept, reviewer="ann", decision="accepted")
    decisions.decide(store, long, reviewer="bob", decision="rejected")
    labels.label_steps(store, rep, "ann", {0: 1, 4: -1})
    labels.label_steps(store, kept, "bob", {0: 1})
    # a campaign: consensus, a dispute, an adjudicated dispute; step labels on the way
    c = campaigns.create_campaign(store, "pair", by="root", overlap=2,
                                  reviewers=["ann", "bob", "cat"],
                                  filter=QueueFilter(run_id=RUN, verdict="correct"))
    items = [t for t in sorted(store.campaign_votes("pair")[1]) if t != greedy_right][:3]
    for tid, (a, b) in zip(items, (("accepted", "accepted"), ("accepted", "rejected"),
                                   ("rejected", "accepted")), strict=True):
        decisions.decide(store, tid, reviewer="ann", decision=a, campaign=c)
        decisions.decide(store, tid, reviewer="bob", decision=b, campaign=c)
    campaigns.adjudicate(store, c, items[2], "accept", by="root")
    labels.label_steps(store, items[0], "bob", {0: 1, 1: 0})
    labels.label_steps(store, items[2], "cat", {0: -1})
    edit(store, items[2], "Edited after labelling: \\boxed{6}", who="cat")  # its labels went


CONFIGS = [
    SelectConfig(),
    SelectConfig(dataset="seed"),
    SelectConfig(dataset="steps"),
    SelectConfig(dataset="start", per_problem=2, require_correct=False),
    SelectConfig(filters=FilterConfig(max_chars=400, max_tool_calls=1, max_tokens=1500,
                                      max_ngram_repeats=7, disabled=("no_tool_call",))),
    SelectConfig(dataset="start", modes=("greedy", "plain"),
                 filters=FilterConfig(min_chars=60, max_paragraph_repeats=7)),
]


@pytest.fixture
def store(url):
    with Store(url) as s:
        build(s)
        yield s


def digests(store: Store) -> dict[str, tuple[int, int, int]]:
    with store.read() as s:
        return {r.trajectory_id: (r.version, r.n_segments, r.schema) for r in s.execute(
            sql(TrajectoryDigestRow.trajectory_id, TrajectoryDigestRow.version,
                TrajectoryDigestRow.n_segments, TrajectoryDigestRow.schema))}


def no_text(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on, reading any trajectory's text fails."""
    def refuse(*a, **kw):
        raise AssertionError("read trajectory text")
    for name in ("load_texts", "iter_records", "load_records", "load_trajectory"):
        monkeypatch.setattr(store, name, refuse)


def test_selection_from_digests_is_the_selection_from_text(store, monkeypatch):
    runs = store.resolve_runs([RUN, "other"])
    from_text = {i: select(store, runs, cfg, from_text=True) for i, cfg in enumerate(CONFIGS)}
    assert not digests(store)
    first = select(store, runs, CONFIGS[0])  # computes every digest once, stores them
    assert first.ids == from_text[0].ids and first.report == from_text[0].report
    assert len(digests(store)) == store.count_trajectories()
    no_text(store, monkeypatch)  # a warm selection reads no text
    for i, cfg in enumerate(CONFIGS):
        got = select(store, runs, cfg)
        assert (got.ids, got.report) == (from_text[i].ids, from_text[i].report), cfg
    # the store is varied enough for that to mean something: every rule broke, every kind of
    # people's word and every reason to drop appears
    rep = from_text[0].report
    assert set(rep.rule_hits) == {"repetition", "no_tool_call", "unresolved_error", "too_long",
                                  "tool_call_cap"}
    assert set(rep.people) == {"adjudicated", "consensus", "disputed (left to the rules)"}
    assert {"rejected by a reviewer", "not scored since its last edit", "wrong answer",
            "not scored (run `score`)", "not finished (running)"} <= set(rep.dropped)
    assert rep.overrides and from_text[1].report.seed_problems and from_text[2].ids
    assert len({tuple(s.ids) for s in from_text.values()}) == len(CONFIGS)


def test_filters_a_digest_cannot_answer_are_answered_from_the_text(tmp_path):
    with Store(f"sqlite:///{tmp_path / 'n.sqlite'}") as store:
        build(store)
        runs = store.resolve_runs([RUN])
        cfg = SelectConfig(filters=FilterConfig(ngram=4, max_ngram_repeats=3,
                                                min_paragraph_chars=10))
        assert not digest.answers(cfg.filters)
        got, exact = select(store, runs, cfg), select(store, runs, cfg, from_text=True)
        assert (got.ids, got.report) == (exact.ids, exact.report)
        # shorter n-grams catch repetition the default 12-grams do not
        assert got.report.rule_hits["repetition"] > select(
            store, runs, SelectConfig()).report.rule_hits["repetition"]
        d = dashboard.gather(store, [RUN], select_config=cfg)
        assert d == dashboard.gather(store, [RUN], select_config=cfg, from_text=True)


def test_the_dashboards_from_digests_are_the_dashboards_from_text(store, monkeypatch):
    old = dashboard.gather(store, None, from_text=True)
    old_pair = dashboard.gather(store, [RUN], campaign="pair", from_text=True)
    assert dashboard.gather(store, None) == old  # the first draw digests every trajectory
    no_text(store, monkeypatch)
    assert dashboard.gather(store, None) == old
    assert dashboard.gather(store, [RUN], campaign="pair") == old_pair
    assert dashboard.figures(dashboard.gather(store, None)).keys() == dashboard.figures(
        old).keys()
    # what the figures show came through: the scaling curve's rounds, people's hints, tools
    assert {len(f.rounds) for f in old.facts} >= {0, 3}
    assert {h.source for f in old.facts for h in f.hints} == {"auto", "human"}
    assert any(h.used_tool and not h.error_free for f in old.facts for h in f.hints)
    assert old.selection.selected and old.funnel["exported"] == old.selection.selected


def test_a_changed_trajectory_or_answer_or_format_is_digested_again(tmp_path, monkeypatch):
    with Store(f"sqlite:///{tmp_path / 's.sqlite'}") as store:
        build(store)
        runs = store.resolve_runs([RUN])
        dashboard.gather(store, [RUN])
        before = digests(store)
        tid = "t02"  # a hinted trajectory with hint rounds, correct
        edit(store, tid, "Rethought: \\boxed{6}\n\n" + "\n\n".join([LOOP] * 6))
        with store.read() as s:  # its digest is stale now, not deleted
            assert s.get(TrajectoryDigestRow, tid).version == before[tid][0]
        exact = select(store, runs, from_text=True)
        got = select(store, runs)
        assert (got.ids, got.report) == (exact.ids, exact.report)
        after = digests(store)
        assert after[tid][0] == before[tid][0] + 1
        assert {k: v for k, v in after.items() if k != tid} == {
            k: v for k, v in before.items() if k != tid}  # nothing else was recomputed
        # the problem's reference answer changed: the curve re-matches the stored answers
        store.upsert_problems([Problem("What is 2 * 3? (#1)", answer="7", id="p1",
                                       meta={"source": "mix", "external_id": "1"})])
        assert dashboard.gather(store, [RUN]) == dashboard.gather(store, [RUN], from_text=True)
        # a new digest format recomputes them all
        monkeypatch.setattr(digest, "SCHEMA", digest.SCHEMA + 1)
        select(store, runs)
        assert {v[2] for v in digests(store).values()} == {digest.SCHEMA}
        store.delete_trajectory(tid)  # a deleted trajectory takes its digest along
        assert tid not in digests(store)


def test_standing_without_text_is_the_records_standing(store):
    """The people-and-scorer half of a record, read in bulk for the digests, says what the
    record (read with the text) says, trajectory by trajectory."""
    runs = store.resolve_runs([RUN, "other"])
    recs = {r.trajectory.id: r for r in store.iter_records(runs)}
    lite = store.digest_records(runs, schema=digest.SCHEMA)
    assert [r.id for r in lite] == list(recs)
    def said(x):  # a score's detail is left out of bulk reads: selection needs none
        return {f.name: getattr(x, f.name) if f.name != "score" else (
            None if x.score is None else (x.score.correct, x.score.value))
            for f in dataclasses.fields(Standing)}

    for r in lite:
        rec = recs[r.id]
        assert said(r.standing) == said(rec), r.id
        assert (r.version, r.status, r.run_id, r.problem_id, r.tokens) == (
            rec.version, rec.trajectory.status, rec.run_id, rec.trajectory.problem.id,
            rec.trajectory.tokens)
    assert {r.standing.human for r in lite} == {None, "reviewer", "consensus", "disputed",
                                                "adjudicated"}
    assert any(r.standing.score_stale for r in lite) and any(r.standing.step_labels
                                                             for r in lite)


def test_keep_current_digests_finished_trajectories_now(tmp_path):
    with Store(f"sqlite:///{tmp_path / 'k.sqlite'}") as store:
        tid = add(store, 1, "hinted", problem=0, correct=True)
        assert digest.keep_current(store, [tid, "nope"]) == 1
        traj, version = store.load_trajectory_versioned(tid)
        assert digests(store) == {tid: (version, len(traj.segments), digest.SCHEMA)}
        with store.read() as s:
            data = s.get(TrajectoryDigestRow, tid).data
        assert data == digest.digest(traj)
        assert json.loads(data["hints"]) == [["self-reflection", "auto", True, True]]
        with store.read() as s:
            assert s.scalar(sql(func.count()).select_from(TrajectoryDigestRow)) == 1


async def test_a_batch_digests_what_it_finishes(tmp_path):
    from bench.standins import rft_backend, rft_problems
    from startui.rft.generate import Batch, BatchConfig

    with Store(f"sqlite:///{tmp_path / 'b.sqlite'}") as store:
        problems = rft_problems(3)
        store.upsert_problems(problems)
        cfg = BatchConfig(run="g", samples=0, greedy_baseline=True, concurrency=2)
        report = await Batch(store, rft_backend(), None, cfg).run(problems)
        assert report.finished == 3
        made = digests(store)  # before anything read them: the batch made them
        assert len(made) == 3
        for tid, (version, n, schema) in made.items():
            traj, now = store.load_trajectory_versioned(tid)
            assert (version, n, schema) == (now, len(traj.segments), digest.SCHEMA)
