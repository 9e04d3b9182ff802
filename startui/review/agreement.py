"""How much a campaign's reviewers agree: per pair of reviewers and overall.

- **Decisions** (accept / reject; skips and "needs review" are not ratings): raw agreement,
  Cohen's kappa per pair and, overall, Light's kappa (the mean of the pairwise kappas, which is
  Cohen's kappa when there are two reviewers), and Krippendorff's alpha (nominal).
- **Scores** (1–5): Krippendorff's alpha, ordinal.
- **Step labels** (+1 / 0 / −1 per (trajectory, revision, step)): Krippendorff's alpha, nominal
  by default or interval.

Cohen's kappa is computed from its formula, κ = (p_o − p_e) / (1 − p_e), with p_e from each
reviewer's own marginals; alpha comes from the maintained ``krippendorff`` package, which handles
missing ratings (a reviewer who did not see an item). A coefficient that cannot be computed is
``None`` with the reason: no item rated by two reviewers, or no variation at all (everyone gave
the same single value: agreement is perfect but chance agreement is too, so κ and α are 0/0).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from itertools import combinations
from typing import Any

import krippendorff
import numpy as np

from startui.review.campaigns import Campaign, get_campaign

DECISION_CODES = {"accepted": 1, "rejected": 0}
SCORES = (1, 2, 3, 4, 5)
STEP_LABELS = (-1, 0, 1)
STEP_LEVELS = ("nominal", "interval")


@dataclass
class Measure:
    """One coefficient: its value, or None and why."""

    value: float | None
    reason: str | None = None
    items: int = 0  # units rated by at least two reviewers (for a pair: by both)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.value:.3f}" if self.value is not None else f"n/a ({self.reason})"


def cohen_kappa(a: Sequence[Hashable | None], b: Sequence[Hashable | None]) -> Measure:
    """Cohen's kappa of two raters over the same units (None: that rater did not rate it)."""
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    n = len(pairs)
    if not n:
        return Measure(None, "no item rated by both")
    p_o = sum(x == y for x, y in pairs) / n
    ca, cb = Counter(x for x, _ in pairs), Counter(y for _, y in pairs)
    p_e = sum(ca[c] * cb[c] for c in ca.keys() | cb.keys()) / (n * n)
    if p_e >= 1:
        return Measure(None, "both gave every item the same single value: kappa is undefined "
                             f"(observed agreement {p_o:.0%})", n)
    return Measure((p_o - p_e) / (1 - p_e), None, n)


def krippendorff_alpha(units: Mapping[Hashable, Mapping[str, float]], *,
                       level: str = "nominal",
                       domain: Sequence[float] | None = None) -> Measure:
    """Krippendorff's alpha over ``{unit: {rater: value}}`` (missing ratings allowed), at
    ``level`` (nominal, ordinal, interval, ratio), through the ``krippendorff`` package."""
    pairable = {u: r for u, r in units.items() if len(r) >= 2}
    if not pairable:
        return Measure(None, "no item rated by two reviewers")
    values = {v for r in pairable.values() for v in r.values()}
    if len(values) < 2:
        return Measure(None, "every rating is the same value: no variation, alpha is undefined "
                             "(observed agreement 100%)", len(pairable))
    raters = sorted({name for r in pairable.values() for name in r})
    index = {name: i for i, name in enumerate(raters)}
    data = np.full((len(raters), len(pairable)), np.nan)
    for j, ratings in enumerate(pairable.values()):
        for name, v in ratings.items():
            data[index[name], j] = v
    dom = sorted(set(domain) | values) if domain is not None else None
    value = float(krippendorff.alpha(reliability_data=data, level_of_measurement=level,
                                     value_domain=dom))
    if np.isnan(value):
        return Measure(None, "alpha is undefined for these ratings", len(pairable))
    return Measure(value, None, len(pairable))


def raw_agreement(units: Mapping[Hashable, Mapping[str, Hashable]]) -> Measure:
    """The share of agreeing pairs of ratings among all pairs of ratings on the same unit."""
    agree = total = items = 0
    for ratings in units.values():
        vals = list(ratings.values())
        if len(vals) < 2:
            continue
        items += 1
        for x, y in combinations(vals, 2):
            total += 1
            agree += x == y
    if not total:
        return Measure(None, "no item rated by two reviewers")
    return Measure(agree / total, None, items)


@dataclass
class PairAgreement:
    a: str
    b: str
    items: int  # items both decided (accept or reject)
    agreement: Measure
    kappa: Measure
    alpha: Measure  # decisions, nominal
    score_alpha: Measure  # ordinal
    steps_alpha: Measure


@dataclass
class AgreementReport:
    campaign: str | None
    reviewers: list[str]
    items: int  # items with a decision from at least two reviewers
    agreement: Measure  # raw, decisions
    kappa: Measure  # Light's kappa (mean pairwise Cohen's); Cohen's with two reviewers
    alpha: Measure  # decisions, nominal
    score_alpha: Measure  # ordinal
    steps_alpha: Measure
    steps_level: str = "nominal"
    pairs: list[PairAgreement] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def pair(self, a: str, b: str) -> PairAgreement:
        for p in self.pairs:
            if {p.a, p.b} == {a, b}:
                return p
        raise KeyError(f"no pair {a}, {b}")

    def summary(self) -> str:
        lines = [f"agreement in {self.campaign or 'these reviews'}: {len(self.reviewers)} "
                 f"reviewers, {self.items} items decided by two or more",
                 f"  decisions: raw {self.agreement} · kappa (Light's) {self.kappa} · "
                 f"alpha {self.alpha}",
                 f"  scores (1-5): alpha ordinal {self.score_alpha}",
                 f"  step labels: alpha {self.steps_level} {self.steps_alpha}"]
        if self.pairs:
            lines.append("  pair                      items  agree   kappa   alpha  score-a  "
                         "steps-a")
        for p in self.pairs:
            def f(m: Measure) -> str:
                return f"{m.value:7.3f}" if m.value is not None else "    n/a"
            lines.append(f"  {p.a + ' / ' + p.b:<24} {p.items:>6} {f(p.agreement)} "
                         f"{f(p.kappa)} {f(p.alpha)}  {f(p.score_alpha)}  {f(p.steps_alpha)}")
        return "\n".join(lines)


def _by_rater(units: Mapping[Hashable, Mapping[str, Any]]) -> dict[str, dict[Hashable, Any]]:
    out: dict[str, dict[Hashable, Any]] = defaultdict(dict)
    for u, ratings in units.items():
        for name, v in ratings.items():
            out[name][u] = v
    return out


def _pair_units(by: Mapping[str, Mapping[Hashable, Any]], a: str, b: str,
                ) -> dict[Hashable, dict[str, Any]]:
    ra, rb = by.get(a, {}), by.get(b, {})
    return {u: {a: ra[u], b: rb[u]} for u in ra.keys() & rb.keys()}


def agreement(decisions: Mapping[Hashable, Mapping[str, str]], *,
              scores: Mapping[Hashable, Mapping[str, float]] | None = None,
              steps: Mapping[Hashable, Mapping[str, int]] | None = None,
              reviewers: Iterable[str] | None = None, steps_level: str = "nominal",
              campaign: str | None = None, per_pair: bool = True) -> AgreementReport:
    """The report from ``{item: {reviewer: decision}}`` (decisions other than accepted and
    rejected are left out), ``{item: {reviewer: score}}`` and ``{(item, version, step):
    {reviewer: label}}``. ``per_pair=False`` leaves out the per-pair breakdown (``pairs``; the
    pairwise kappas behind Light's kappa are still computed): what agreement over time needs."""
    if steps_level not in STEP_LEVELS:
        raise ValueError(f"step labels are compared as {' or '.join(STEP_LEVELS)}, not "
                         f"{steps_level!r}")
    coded = {u: {r: DECISION_CODES[d] for r, d in rs.items() if d in DECISION_CODES}
             for u, rs in decisions.items()}
    scores = {u: {r: float(v) for r, v in rs.items() if v is not None}
              for u, rs in (scores or {}).items()}
    steps = {u: {r: int(v) for r, v in rs.items()} for u, rs in (steps or {}).items()}
    names = sorted(set(reviewers or ()) | {r for src in (coded, scores, steps)
                                           for rs in src.values() for r in rs})
    by_d, by_s, by_l = _by_rater(coded), _by_rater(scores), _by_rater(steps)
    pairs = []
    kappas: list[tuple[Measure, int]] = []  # (Cohen's kappa, items in common) per pair
    for a, b in combinations(names, 2):
        shared = _pair_units(by_d, a, b)
        if shared:
            order = sorted(shared, key=str)
            kappa = cohen_kappa([shared[u][a] for u in order], [shared[u][b] for u in order])
        else:
            kappa = Measure(None, f"{a} and {b} decided no item in common")
        kappas.append((kappa, len(shared)))
        if not per_pair:
            continue
        pair_scores, pair_steps = _pair_units(by_s, a, b), _pair_units(by_l, a, b)
        pairs.append(PairAgreement(
            a=a, b=b, items=len(shared), agreement=raw_agreement(shared), kappa=kappa,
            alpha=krippendorff_alpha(shared, level="nominal", domain=(0, 1)),
            score_alpha=_none_if_empty(pair_scores, f"{a} and {b} scored no item in common",
                                       level="ordinal", domain=SCORES),
            steps_alpha=_none_if_empty(pair_steps, f"{a} and {b} labelled no step in common",
                                       level=steps_level, domain=STEP_LABELS)))
    defined = [k for k, _ in kappas if k.value is not None]
    if defined:
        light = Measure(float(np.mean([k.value for k in defined])), None,
                        sum(1 for rs in coded.values() if len(rs) >= 2))
    elif any(n for _, n in kappas):
        light = Measure(None, "no pair's kappa is defined: "
                        + next(k.reason for k, n in kappas if n),
                        sum(1 for rs in coded.values() if len(rs) >= 2))
    else:
        light = Measure(None, "no item decided by two reviewers")
    return AgreementReport(
        campaign=campaign, reviewers=names,
        items=sum(1 for rs in coded.values() if len(rs) >= 2),
        agreement=raw_agreement(coded), kappa=light,
        alpha=krippendorff_alpha(coded, level="nominal", domain=(0, 1)),
        score_alpha=krippendorff_alpha(scores, level="ordinal", domain=SCORES),
        steps_alpha=krippendorff_alpha(steps, level=steps_level, domain=STEP_LABELS),
        steps_level=steps_level, pairs=pairs)


def _none_if_empty(units: Mapping[Hashable, Mapping[str, float]], reason: str, **kw: Any,
                   ) -> Measure:
    return krippendorff_alpha(units, **kw) if units else Measure(None, reason)


def campaign_agreement(store: Any, campaign: Campaign | str | int, *,
                       steps_level: str = "nominal") -> AgreementReport:
    """Agreement among a campaign's reviewers, from their latest vote on each item (scores from
    their latest scored vote) and their step labels on the campaign's items."""
    c = get_campaign(store, campaign)
    decisions: dict[str, dict[str, str]] = defaultdict(dict)
    scores: dict[str, dict[str, float]] = defaultdict(dict)
    for tid, reviewer, decision, score in store.campaign_ratings(c.id):
        decisions[tid][reviewer] = decision
        if score is not None:
            scores[tid][reviewer] = score
    steps: dict[tuple[str, int, int], dict[str, int]] = defaultdict(dict)
    for tid, version, position, reviewer, label in store.campaign_step_labels(c.id):
        steps[(tid, version, position)][reviewer] = label
    return agreement(decisions, scores=scores, steps=steps, reviewers=c.reviewers,
                     steps_level=steps_level, campaign=c.name)
