"""The dashboards of the Dataset tab and ``python -m startui report``: the store's read methods
behind them (funnel counts, review throughput per reviewer per day, a campaign's votes in time,
problem sources) on SQLite and PostgreSQL, and the pure tables and figures drawn from them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from startui.answers import SCORER
from startui.cli import main
from startui.review import agreement, campaigns, decisions, labels, users
from startui.rft import analytics, dashboard
from startui.rft.select import SelectConfig, select
from startui.store import Store
from startui.store.models import ReviewRow, StepLabelRow
from startui.store.queue import QueueFilter
from startui.trajectory import Problem, Segment, Trajectory

RUN = "seed-1"


def make(i: int, mode: str, *, correct: bool, human: bool = False, run: str = RUN,
         kind: str = "math") -> Trajectory:
    """A finished trajectory of problem ``p{i}`` (answer 6): greedy answers without a tool, a
    hinted one after an automatic (or a person's) hint and a code cell."""
    answer = "6" if correct else "7"
    if mode == "greedy":
        segs = [Segment("think", f"Problem {i}: about seven."),
                Segment("answer", f"So \\boxed{{{answer}}}.")]
    else:
        hint = (Segment("hint", "Wait, check it with Python.\n```python\n", "human") if human
                else Segment("hint", "Wait, I can use Python to check.\n```python\n", "auto",
                             {"category": "self-reflection", "round": 1}))
        segs = [Segment("think", f"Problem {i}: about seven. \\boxed{{7}}"), hint,
                Segment("code", "print(2 * 3)"), Segment("output", "6", "kernel"),
                Segment("answer", f"The kernel says 6: \\boxed{{{answer}}}.")]
    return Trajectory(
        problem=Problem(f"What is 2 * 3? (#{i})", answer="6", id=f"p{i}", kind=kind,
                        meta={"source": "dash", "external_id": str(i)}),
        prompt="p", status="finished", segments=segs,
        settings={"run_id": run, "run_name": run, "mode": mode, "hints": {"rounds": 1}},
        created_at=f"2026-01-01T00:00:{i * 3 + (mode == 'hinted') + human:02d}+00:00")


def seed(store: Store, n: int = 4) -> dict[str, list[str]]:
    """``n`` problems, each with a wrong greedy baseline and a right hinted trajectory; the last
    one also a wrong trajectory steered by a person's hint. Every one rule-scored."""
    ids: dict[str, list[str]] = {"greedy": [], "hinted": [], "human": []}
    for i in range(n):
        for key, t in (("greedy", make(i, "greedy", correct=False)),
                       ("hinted", make(i, "hinted", correct=True))) + (
                (("human", make(i, "hinted", correct=False, human=True)),) if i == n - 1
                else ()):
            store.save_trajectory(t)
            store.add_score(t.id, scorer=SCORER, correct=key == "hinted",
                            detail={"answer": "6" if key == "hinted" else "7",
                                    "extracted_by": "boxed", "reference": "6"})
            ids[key].append(t.id)
    return ids


def team(store: Store) -> None:
    for name, role in (("root", "admin"), ("ann", "reviewer"), ("bob", "reviewer"),
                       ("vic", "viewer")):
        users.add_user(store, name, None, role=role)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    url = (f"sqlite:///{tmp_path / 'dash.sqlite'}" if request.param == "sqlite"
           else request.getfixturevalue("pg_url"))
    with Store(url) as s:
        yield s


def backdate(store: Store, reviewer: str, days: int) -> None:
    """Move a reviewer's decisions ``days`` into the past (throughput and agreement by day)."""
    when = datetime.now(UTC) - timedelta(days=days)
    store.write(lambda s: s.execute(update(ReviewRow).where(ReviewRow.reviewer == reviewer)
                                    .values(created_at=when)))


def test_funnel_throughput_and_sources_from_the_store(store):
    ids = seed(store)
    other = make(9, "hinted", correct=True, run="other")
    store.save_trajectory(other)
    assert store.funnel_counts([RUN]) == {
        "generated": 9, "finished": 9, "scored": 9, "correct": 4, "reviewed": 0, "accepted": 0,
        "rejected": 0}
    assert store.funnel_counts()["generated"] == 10  # every run
    assert store.funnel_counts()["scored"] == 9  # the other run's is unscored
    team(store)
    decisions.decide(store, ids["hinted"][0], reviewer="ann", decision="accepted")
    decisions.decide(store, ids["greedy"][0], reviewer="ann", decision="rejected")
    decisions.decide(store, ids["hinted"][1], reviewer="bob", decision="accepted")
    decisions.decide(store, ids["hinted"][2], reviewer="bob", decision="skipped")
    decisions.decide(store, other.id, reviewer="bob", decision="accepted")
    decisions.undo(store, "bob")  # undone: not counted
    backdate(store, "ann", 2)
    counts = store.funnel_counts([RUN])
    assert (counts["reviewed"], counts["accepted"], counts["rejected"]) == (3, 2, 1)
    today = datetime.now(UTC).date().isoformat()
    before = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
    assert store.review_throughput([RUN]) == [
        {"reviewer": "ann", "day": before, "decisions": 2},
        {"reviewer": "bob", "day": today, "decisions": 2}]
    assert dashboard.throughput_table(store.review_throughput()) == [
        {"reviewer": "ann", "decisions": 2, "days": 1, "per_day": 2.0},
        {"reviewer": "bob", "decisions": 2, "days": 1, "per_day": 2.0}]
    store.upsert_problems([Problem("Sort a list.", id="c1", kind="code",
                                   meta={"source": "code-set", "external_id": "1"})])
    sources = {s["source"]: s for s in store.problem_sources()}
    assert sources["code-set"] == {"source": "code-set", "problems": 1, "by_kind": {"code": 1}}
    assert sum(s["problems"] for s in sources.values()) == store.stats()["problems"]


def test_a_campaigns_funnel_and_agreement_as_it_grew(store):
    ids = seed(store)
    team(store)
    c = campaigns.create_campaign(store, "double", by="root", overlap=2, reviewers=["ann", "bob"],
                                  filter=QueueFilter(run_id=RUN, verdict="correct"))
    assert c.items == 4
    votes = {"ann": ["accepted", "accepted", "rejected"], "bob": ["accepted", "rejected",
                                                                  "rejected"]}
    for who, said in votes.items():
        for decision in said:
            tid = campaigns.next_item(store, "double", who)
            decisions.decide(store, tid, reviewer=who, decision=decision, campaign="double",
                             score=5 if decision == "accepted" else 2)
    times = store.campaign_rating_times("double")
    assert [(r[1], r[2]) for r in times] == [(w, d) for w, ds in votes.items() for d in ds]
    assert all(r[4].tzinfo is not None for r in times)
    counts = store.funnel_counts([RUN], campaign="double")
    assert (counts["generated"], counts["reviewed"], counts["accepted"]) == (4, 2, 1)
    # bob reviewed a day later than ann: agreement exists from his day on
    backdate(store, "ann", 1)
    rows = dashboard.agreement_timeline("double", store.campaign_rating_times("double"),
                                        c.reviewers)
    assert [r["items"] for r in rows] == [0, 3]
    final = agreement.campaign_agreement(store, "double")
    assert rows[-1]["kappa"] == pytest.approx(final.kappa.value)
    assert rows[-1]["alpha"] == pytest.approx(final.alpha.value)
    assert rows[-1]["score_alpha"] == pytest.approx(final.score_alpha.value)
    assert rows[0]["kappa"] is None  # one reviewer: nothing to agree on yet
    d = dashboard.gather(store, [RUN], campaign="double")
    assert {f.id for f in d.facts} == set(ids["hinted"])
    assert d.funnel["generated"] == 4 and d.agreement == rows
    assert [r["reviewer"] for r in d.throughput] == ["ann", "bob"]
    # "exported" is the export's own selection, restricted to the campaign's items
    chosen = select(store, [RUN], SelectConfig()).ids
    assert d.funnel["exported"] == len(set(chosen) & set(ids["hinted"]))


def test_the_report_of_a_campaign_has_its_agreement(tmp_path):
    with Store(f"sqlite:///{tmp_path / 'c.sqlite'}") as store:
        seed(store)
        team(store)
        campaigns.create_campaign(store, "pair", by="root", overlap=2, reviewers=["ann", "bob"],
                                  filter=QueueFilter(run_id=RUN))
        for who in ("ann", "bob"):
            decisions.decide(store, campaigns.next_item(store, "pair", who), reviewer=who,
                             decision="accepted", campaign="pair")
        page = tmp_path / "pair.html"
        assert main(["report", RUN, "--campaign", "pair", "--html", str(page),
                     "--db", store.url]) == 0
        assert main(["report", RUN, "--campaign", "nope", "--html", str(page),
                     "--db", store.url]) == 1
    html = page.read_text()
    assert 'id="fig-agreement"' in html and "Agreement over time" in html
    assert "<td>pair</td>" in html  # the table behind the figure


def test_gather_draws_the_reports_figures(tmp_path):
    with Store(f"sqlite:///{tmp_path / 'r.sqlite'}") as store:
        seed(store)
        d = dashboard.gather(store)  # every run
        assert d.runs and d.funnel["generated"] == 9
        assert d.funnel["exported"] == len(select(store, [RUN], SelectConfig()).ids) == 4
        assert d.selection.selected == 4
        figs = dashboard.figures(d)
        assert list(figs) == ["funnel", "scaling", "categories", "modes", "sources", "lengths",
                              "throughput", "agreement"]
        assert list(figs["funnel"].data[0].x) == [9, 9, 0, 0, 4]
        page = tmp_path / "report.html"
        assert main(["report", RUN, "--html", str(page), "--db", store.url]) == 0
    html = page.read_text()
    for fig in figs:  # every figure of the tab is in the report (agreement: with campaigns)
        assert (f'id="fig-{fig}"' in html) == (fig != "agreement")
    assert "From generated to exported" in html and "Human vs automatic hints" in html


def test_pure_tables_of_hint_sources_and_lengths():
    def fact(i, *, correct, hints=(), mode="hinted", chars=100):
        return analytics.Facts(id=str(i), run="r", mode=mode, kind="math", correct=correct,
                               hints=[analytics.HintFact("c", s, True, ok) for s, ok in hints],
                               chars=chars)

    data = [fact(1, correct=True, hints=[("auto", True)]),
            fact(2, correct=False, hints=[("auto", False), ("human", True)], chars=300),
            fact(3, correct=None, mode="greedy", chars=50),
            fact(4, correct=True, hints=[("human", True)], chars=200)]
    rows = {r["source"]: r for r in analytics.source_table(data)}
    assert (rows["auto"]["hints"], rows["auto"]["error_free_rate"]) == (2, 0.5)
    assert (rows["human"]["trajectories"], rows["human"]["correct_rate"]) == (2, 0.5)
    assert (rows["none"]["trajectories"], rows["none"]["scored"]) == (1, 0)
    assert rows["none"]["tool_use_rate"] is None
    lengths = {(r["mode"], r["verdict"]): r for r in analytics.length_table(data)}
    assert lengths[("hinted", "correct")]["chars_max"] == 200
    assert lengths[("greedy", "unscored")]["trajectories"] == 1
    assert len(analytics.lengths_figure(data).data) == 3
    assert len(analytics.sources_figure(data).data) == 3
    assert dashboard.funnel_table({"generated": 0})[0]["share"] is None
    assert dashboard.agreement_timeline("c", []) == []
    assert len(dashboard.agreement_figure([]).data) == 0


def test_agreement_over_time_has_the_step_labels_alpha(tmp_path):
    with Store(f"sqlite:///{tmp_path / 's.sqlite'}") as store:
        seed(store)
        team(store)
        campaigns.create_campaign(store, "steps", by="root", overlap=2, reviewers=["ann", "bob"],
                                  filter=QueueFilter(run_id=RUN, verdict="correct"))
        items = sorted(store.campaign_votes("steps")[1])[:2]
        for who, marks in (("ann", {0: 1, 1: 1, 2: -1}), ("bob", {0: 1, 1: -1, 2: -1})):
            for tid in items:
                labels.label_steps(store, tid, who, marks)
        when = datetime.now(UTC) - timedelta(days=1)  # ann labelled a day before bob
        store.write(lambda s: s.execute(update(StepLabelRow).where(StepLabelRow.reviewer == "ann")
                                        .values(created_at=when)))
        rows = dashboard.gather(store, [RUN], campaign="steps").agreement
        assert [r["day"] for r in rows] == [when.date().isoformat(),
                                            datetime.now(UTC).date().isoformat()]
        assert rows[0]["steps_alpha"] is None  # one labeller: nothing to agree on yet
        final = agreement.campaign_agreement(store, "steps").steps_alpha.value
        assert final is not None and rows[-1]["steps_alpha"] == pytest.approx(final)
        assert rows[-1]["kappa"] is None  # nobody decided: only the labels moved the curve
        names = [t.name for t in dashboard.agreement_figure(rows).data]
        assert "steps: step-label alpha" in names
