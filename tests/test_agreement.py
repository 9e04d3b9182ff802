"""Agreement between a campaign's reviewers, checked against numbers worked out by hand (the
working is in the comments), the degenerate cases, and once end to end through a real store."""

from __future__ import annotations

import pytest

from startui.review import agreement, campaigns, decisions, labels, users
from startui.review.agreement import (
    SCORES,
    STEP_LABELS,
    Measure,
    cohen_kappa,
    krippendorff_alpha,
    raw_agreement,
)
from startui.store import Store
from startui.store.queue import QueueFilter
from tests.test_review import make

# Ten items, two reviewers (A = accepted, R = rejected):
#   ann  A A A A A A R R R R
#   bob  A A A A A R A R R R
# They agree on items 1-5 (A) and 8-10 (R): p_o = 8/10 = 0.8.
# Marginals: ann A 6/10, R 4/10; bob A 6/10 (items 1-5 and 7), R 4/10.
# p_e = 0.6*0.6 + 0.4*0.4 = 0.52, so Cohen's kappa = (0.8 - 0.52) / (1 - 0.52) = 0.28/0.48 = 7/12.
# Krippendorff's alpha (nominal): n = 20 pairable values; coincidences o_AA = 2*5 = 10,
# o_RR = 2*3 = 6, o_AR = o_RA = 2, so n_A = 12, n_R = 8;
# alpha = 1 - (n-1) * (o_AR + o_RA) / (n_A*n_R + n_R*n_A) = 1 - 19*4/192 = 29/48.
ANN = "AAAAAARRRR"
BOB = "AAAAARARRR"
WORD = {"A": "accepted", "R": "rejected"}


def case_one() -> dict[int, dict[str, str]]:
    return {i: {"ann": WORD[a], "bob": WORD[b]}
            for i, (a, b) in enumerate(zip(ANN, BOB, strict=True))}


def test_cohen_kappa_and_nominal_alpha_by_hand():
    kappa = cohen_kappa(list(ANN), list(BOB))
    assert kappa.value == pytest.approx(7 / 12) and kappa.items == 10
    report = agreement.agreement(case_one())
    assert report.kappa.value == pytest.approx(7 / 12)  # two reviewers: Light's = Cohen's
    assert report.alpha.value == pytest.approx(29 / 48)
    assert report.agreement.value == pytest.approx(0.8)
    pair = report.pair("ann", "bob")
    assert (pair.items, pair.kappa.value) == (10, pytest.approx(7 / 12))
    assert pair.alpha.value == pytest.approx(29 / 48)


def test_lights_kappa_is_the_mean_of_the_pairs():
    # cat decides exactly as ann: kappa(ann, cat) = 1, kappa(bob, cat) = kappa(bob, ann) = 7/12;
    # Light's kappa = (7/12 + 1 + 7/12) / 3 = 13/18.
    data = {i: {**d, "cat": d["ann"]} for i, d in case_one().items()}
    report = agreement.agreement(data)
    assert report.pair("ann", "cat").kappa.value == pytest.approx(1.0)
    assert report.pair("bob", "cat").kappa.value == pytest.approx(7 / 12)
    assert report.kappa.value == pytest.approx(13 / 18)


def test_ordinal_alpha_on_scores_by_hand():
    # u1 (1, 2), u2 (3, 3), u3 (4, 5): n_1 = n_2 = n_4 = n_5 = 1, n_3 = 2, n = 6.
    # Ordinal distance d(c, k) = (sum of n_g for g from c to k - (n_c + n_k)/2)^2:
    #   d(1,2) = (2-1)^2 = 1, d(4,5) = 1, and over all pairs c < k the sum of n_c*n_k*d(c,k) is
    #   1 + 2*6.25 + 16 + 25 + 2*2.25 + 9 + 16 + 2*2.25 + 2*6.25 + 1 = 102 (204 ordered).
    # Observed: o_12 = o_21 = o_45 = o_54 = 1, each at distance 1: 4.
    # alpha = 1 - (n-1) * 4 / 204 = 1 - 20/204 = 46/51.
    units = {"u1": {"ann": 1, "bob": 2}, "u2": {"ann": 3, "bob": 3}, "u3": {"ann": 4, "bob": 5}}
    got = krippendorff_alpha(units, level="ordinal", domain=SCORES)
    assert got.value == pytest.approx(46 / 51) and got.items == 3


STEPS = {  # (trajectory, version, step) -> {reviewer: label}
    ("t", 1, 0): {"ann": 1, "bob": 1, "cat": 1},
    ("t", 1, 1): {"ann": -1, "bob": -1},
    ("t", 1, 2): {"ann": 1, "bob": 0, "cat": 1},
    ("t", 1, 3): {"ann": 0},  # one rating: not pairable, left out
}


def test_step_label_alpha_nominal_and_interval_by_hand():
    # Pairable units: s0 (m=3), s1 (m=2), s2 (m=3); n = 8. Coincidences (each ordered pair of
    # ratings in a unit weighs 1/(m-1)): s0 gives o_(1,1) = 6/2 = 3; s1 gives o_(-1,-1) = 2;
    # s2 = (1, 0, 1) gives o_(1,0) = o_(0,1) = 2*(1/2) = 1 and o_(1,1) = 1.
    # So n_1 = 5, n_0 = 1, n_-1 = 2 and the disagreeing coincidences are o_(1,0) + o_(0,1) = 2.
    # Nominal: expected = 2*(5*1 + 5*2 + 1*2) = 34; alpha = 1 - 7*2/34 = 10/17.
    # Interval (d = (c-k)^2): observed 1 + 1 = 2; expected 2*(5*1*1 + 5*2*4 + 1*2*1) = 94;
    # alpha = 1 - 7*2/94 = 40/47.
    nominal = krippendorff_alpha(STEPS, level="nominal", domain=STEP_LABELS)
    interval = krippendorff_alpha(STEPS, level="interval", domain=STEP_LABELS)
    assert nominal.value == pytest.approx(10 / 17) and nominal.items == 3
    assert interval.value == pytest.approx(40 / 47)
    report = agreement.agreement({}, steps=STEPS, steps_level="interval")
    assert report.steps_alpha.value == pytest.approx(40 / 47)
    with pytest.raises(ValueError, match="nominal or interval"):
        agreement.agreement({}, steps=STEPS, steps_level="ratio")


def test_perfect_agreement_with_variation_is_one():
    data = {1: {"ann": "accepted", "bob": "accepted"}, 2: {"ann": "rejected", "bob": "rejected"}}
    report = agreement.agreement(data)
    assert report.kappa.value == pytest.approx(1.0) and report.alpha.value == pytest.approx(1.0)


def test_everyone_giving_one_value_is_undefined_and_says_so():
    # p_e = 1 and the expected disagreement is 0: kappa and alpha are 0/0
    data = {i: {"ann": "accepted", "bob": "accepted"} for i in range(5)}
    report = agreement.agreement(data)
    assert report.agreement.value == 1.0
    assert report.kappa.value is None and "same single value" in report.kappa.reason
    assert report.alpha.value is None and "no variation" in report.alpha.reason
    assert report.pair("ann", "bob").kappa.reason.startswith("both gave every item the same")
    assert "observed agreement 100%" in str(report.alpha)


def test_no_overlap_is_none_with_a_reason():
    data = {1: {"ann": "accepted"}, 2: {"bob": "rejected"}, 3: {"cat": "accepted"}}
    report = agreement.agreement(data, scores={1: {"ann": 5}, 2: {"bob": 1}})
    assert report.items == 0
    for m in (report.kappa, report.alpha, report.agreement, report.score_alpha,
              report.steps_alpha):
        assert m.value is None and m.reason, m
    pair = report.pair("ann", "bob")
    assert pair.items == 0 and pair.kappa.reason == "ann and bob decided no item in common"
    assert pair.score_alpha.reason == "ann and bob scored no item in common"
    assert cohen_kappa([None, "A"], ["A", None]) == Measure(None, "no item rated by both")
    assert raw_agreement({}).value is None


def test_skips_and_needs_review_are_not_ratings():
    data = {1: {"ann": "accepted", "bob": "skipped"}, 2: {"ann": "needs_review",
                                                         "bob": "rejected"}}
    assert agreement.agreement(data).items == 0


# --- from a campaign in a store ----------------------------------------------------------------

@pytest.fixture
def store(tmp_path):
    with Store(f"sqlite:///{tmp_path / 'agreement.sqlite'}") as s:
        users.add_user(s, "root", "pw", role="admin")
        for name in ("ann", "bob"):
            users.add_user(s, name, "pw")
        yield s


def test_campaign_agreement_reads_the_latest_votes_scores_and_step_labels(store):
    ids = [make(store, i) for i in range(10)]
    c = campaigns.create_campaign(store, "pair", by="root", reviewers=["ann", "bob"],
                                  filter=QueueFilter(run_id="r1"))
    for tid, a, b in zip(ids, ANN, BOB, strict=True):
        decisions.decide(store, tid, reviewer="ann", decision=WORD[a], campaign=c)
        decisions.decide(store, tid, reviewer="bob", decision=WORD[b], campaign=c)
    # scores on the first three items, as in the ordinal case above
    for tid, (sa, sb) in zip(ids[:3], [(1, 2), (3, 3), (4, 5)], strict=True):
        decisions.decide(store, tid, reviewer="ann", decision=WORD[ANN[ids.index(tid)]],
                         score=sa, campaign=c)  # a re-vote: the latest counts
        decisions.decide(store, tid, reviewer="bob", decision=WORD[BOB[ids.index(tid)]],
                         score=sb, campaign=c)
    labels.label_steps(store, ids[0], "ann", {0: 1, 1: -1, 2: 1})
    labels.label_steps(store, ids[0], "bob", {0: 1, 1: -1, 2: 0})
    campaigns.adjudicate(store, c, ids[5], "accept", by="root")  # not a rating
    report = agreement.campaign_agreement(store, "pair")
    assert report.campaign == "pair" and report.reviewers == ["ann", "bob"]
    assert report.kappa.value == pytest.approx(7 / 12)
    assert report.alpha.value == pytest.approx(29 / 48)
    assert report.score_alpha.value == pytest.approx(46 / 51)
    # steps: (1,1), (-1,-1), (1,0): n = 6, n_1 = 3, n_-1 = 2, n_0 = 1; disagreeing o = 2;
    # expected 2*(3*2 + 3*1 + 2*1) = 22; alpha = 1 - 5*2/22 = 6/11
    assert report.steps_alpha.value == pytest.approx(6 / 11)
    as_json = report.to_dict()
    assert as_json["pairs"][0]["kappa"]["value"] == pytest.approx(7 / 12)
    assert "kappa (Light's) 0.583" in report.summary()
