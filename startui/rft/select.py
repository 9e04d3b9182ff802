"""Hint-RFT over the store: score runs, then select the fine-tuning set (D_seed or D_START).

The paper's recipe (DESIGN.md section 1): run greedy inference and Hint-infer on every problem;
keep problems where greedy is wrong and a hinted trajectory is right, scored by rule, filtered
and modified → D_seed. Later, sample from the fine-tuned START-0, score, filter, modify and keep
at most one trajectory per problem → D_START. Both are :func:`select` with a different
``dataset``.
A third dataset, "steps", is process supervision for a reward model (PRM800K-style step labels):
the trajectories a reviewer accepted and labelled step by step (see :class:`SelectConfig`).

People outrank rules: a trajectory a reviewer rejected is never selected; one a reviewer accepted
is eligible whatever the rules say (the report counts these overrides). When several people
reviewed it in a campaign, their word is, in this order: the adjudicated decision, then the
consensus (all N reviewers decided and agree), then the rules — a trajectory whose reviewers
disagree and that nobody adjudicated yet is neither accepted nor rejected by people
(:mod:`startui.store.consensus` decides the record's status; the report counts each kind).
Every drop is counted under exactly one reason, so ``selected + sum(dropped) == considered`` and
a user can see where their data went.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from startui.answers import SCORER
from startui.bulk import collector_paused
from startui.rft import digest
from startui.rft.filters import FilterConfig, check
from startui.rft.modes import GREEDY, HINTED, mode_of
from startui.rft.scoring import needs_kernel, score_trajectory
from startui.store.digests import DigestRecord
from startui.store.records import Record
from startui.trajectory import Trajectory

if TYPE_CHECKING:
    from startui.infer.kernels import KernelPool
    from startui.store import Store

Dataset = Literal["seed", "start", "steps"]
DATASETS = ("seed", "start", "steps")
DATASET_NAMES = {"seed": "D_seed", "start": "D_START", "steps": "Steps (process supervision)"}
PEOPLE = {"adjudicated": "adjudicated", "consensus": "consensus",
          "disputed": "disputed (left to the rules)"}


# --- scoring a run ---------------------------------------------------------------------------

@dataclass
class ScoringReport:
    considered: int = 0
    scored: int = 0
    correct: int = 0
    wrong: int = 0
    unscorable: int = 0  # no reference answer / no tests
    already_scored: int = 0
    unfinished: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    def summary(self) -> str:
        return (f"scored {self.scored} trajectories: {self.correct} correct, {self.wrong} wrong, "
                f"{self.unscorable} without a reference; {self.already_scored} already scored, "
                f"{self.unfinished} not finished (skipped)")


async def score_run(store: Store, run_ids: Sequence[str], *, rescore: bool = False,
                    concurrency: int = 2, timeout: float = 10.0,
                    kernels: KernelPool | None = None,
                    on_progress: Callable[[ScoringReport], Any] | None = None) -> ScoringReport:
    """Score every finished trajectory of the runs that has no current rule score (``rescore``:
    all of them). Code problems run their tests in fresh kernels, ``concurrency`` at a time."""
    report = ScoringReport()
    todo: list[Trajectory] = []
    for rec in store.iter_records(run_ids):
        report.considered += 1
        if rec.trajectory.status != "finished":
            report.unfinished += 1
        elif rec.score is not None and not rescore:
            report.already_scored += 1
        else:
            todo.append(rec.trajectory)
    own_pool = None
    if kernels is None and any(needs_kernel(t) for t in todo):
        from startui.infer.kernels import KernelPool

        own_pool = kernels = KernelPool(size=max(1, concurrency), timeout=timeout)
        await own_pool.start()
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(traj: Trajectory) -> None:
        async with gate:
            result = await score_trajectory(traj, kernels, timeout=timeout)
            await asyncio.to_thread(store.add_score, traj.id, scorer=SCORER,
                                    correct=result.correct, value=result.value,
                                    detail=result.detail)
        report.scored += 1
        if result.correct is None:
            report.unscorable += 1
        elif result.correct:
            report.correct += 1
        else:
            report.wrong += 1
        if on_progress is not None:
            on_progress(report)

    try:
        # math first and in order (cheap, main thread: math-verify's timeouts work there)
        for traj in todo:
            if not needs_kernel(traj):
                await one(traj)
        await asyncio.gather(*(one(t) for t in todo if needs_kernel(t)))
    finally:
        if own_pool is not None:
            await own_pool.close()
    return report


# --- selection -------------------------------------------------------------------------------

@dataclass
class SelectConfig:
    """How :func:`select` builds a dataset.

    ``dataset``: "seed" (D_seed: problems where greedy is wrong and a hinted trajectory right),
    "start" (D_START: any correct trajectory) or "steps" (process supervision: trajectories a
    reviewer *accepted* that carry at least one step label on their current revision; since a
    person accepted them, the filter rules and the rule score do not drop them, as everywhere
    else, and a wrong answer is welcome: a reward model learns from bad steps too).
    ``per_problem``: at most this many per problem, preferring human-accepted, then rule-correct,
    then shortest; None means the dataset's default: 1 for seed and start (the paper), no cap
    for steps (every labelled trajectory is supervision). ``modes``: trajectory modes that may be
    exported (default: "hinted" for seed, everything but the greedy baseline for start, every
    mode for steps: a labelled greedy baseline is as good supervision as a hinted sample).
    """

    dataset: Dataset = "start"
    per_problem: int | None = None
    require_correct: bool = True
    modes: tuple[str, ...] | None = None
    filters: FilterConfig = field(default_factory=FilterConfig)

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be 'seed' (D_seed), 'start' (D_START) or 'steps' "
                             f"(step labels, for a process reward model), not {self.dataset!r}")
        if self.per_problem is None and self.dataset != "steps":
            self.per_problem = 1
        if self.per_problem is not None and self.per_problem < 1:
            raise ValueError(f"per_problem must be at least 1, got {self.per_problem}")

    def exportable(self, mode: str) -> bool:
        if self.modes is not None:
            return mode in self.modes
        if self.dataset == "steps":
            return True
        return mode == HINTED if self.dataset == "seed" else mode != GREEDY

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "per_problem": self.per_problem,
                "require_correct": self.require_correct,
                "modes": list(self.modes) if self.modes is not None else None,
                "filters": self.filters.to_dict()}


@dataclass(slots=True)
class Candidate:
    """What selection needs of a trajectory; the text itself is not kept (100k fit in memory)."""

    id: str
    problem_id: str
    mode: str
    status: str
    correct: bool | None
    stale: bool
    review: str
    length: int
    broken: list[str]
    labelled: int = 0  # step labels on the current revision
    human: str | None = None  # how people's status came about (Record.human)


@dataclass
class SelectionReport:
    """Where every trajectory went. ``dropped`` counts each dropped trajectory once, under its
    first reason (review, status, the filter rules in order, score, D_seed's problem rule,
    the per-problem cap); ``rule_hits`` counts every rule each trajectory broke."""

    dataset: str
    trajectories: int = 0  # in the runs, baselines included
    considered: int = 0  # of an exportable mode
    selected: int = 0
    problems: int = 0
    problems_selected: int = 0
    by_mode: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    rule_hits: dict[str, int] = field(default_factory=dict)
    overrides: dict[str, int] = field(default_factory=dict)
    seed_problems: dict[str, int] = field(default_factory=dict)
    # considered trajectories whose status several people settled: adjudicated, consensus,
    # disputed (left to the rules)
    people: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: (dict(sorted(v.items())) if isinstance(v, dict) else v)
                for k, v in asdict(self).items()}

    def summary(self) -> str:
        name = DATASET_NAMES.get(self.dataset, self.dataset)
        lines = [f"{name}: {self.selected} of {self.considered} trajectories selected "
                 f"({self.problems_selected} of {self.problems} problems; "
                 f"{self.trajectories} trajectories in the runs)"]
        for reason, n in sorted(self.dropped.items(), key=lambda kv: -kv[1]):
            lines.append(f"  dropped {n:>7}  {reason}")
        lines += ["  " + note for note in self.notes()]
        return "\n".join(lines)

    def notes(self, esc: Callable[[str], str] = str) -> list[str]:
        """What else the selection saw (rule hits, acceptances that kept a trajectory, campaign
        reviews, D_seed's problems), one line each; ``esc`` escapes names for a display."""
        def counts(d: dict[str, int]) -> str:
            return ", ".join(f"{esc(k)} {v}" for k, v in sorted(d.items()))

        out = [f"rule hits: {counts(self.rule_hits)}"] if self.rule_hits else []
        out += [f"kept by a reviewer's acceptance: {n} {esc(what)}"
                for what, n in sorted(self.overrides.items())]
        if self.people:
            out.append(f"reviewed in campaigns: {counts(self.people)}")
        if self.seed_problems:
            out.append(f"problems: {counts(self.seed_problems)}")
        return out


@dataclass
class Selection:
    ids: list[str]  # selected trajectory ids, ordered by (problem id, trajectory id)
    report: SelectionReport
    config: SelectConfig


def candidate(rec: Record, cfg: SelectConfig) -> Candidate:
    """A record as selection sees it, from its text (the exact path)."""
    traj = rec.trajectory
    return Candidate(
        id=traj.id, problem_id=traj.problem.id or "", mode=mode_of(traj), status=traj.status,
        correct=rec.correct, stale=rec.score_stale, review=rec.review_status,
        length=sum(len(s.render()) for s in traj.segments),
        broken=check(traj, cfg.filters) if traj.status == "finished" or (
            rec.review_status == "accepted") else [],
        labelled=len(rec.step_labels), human=rec.human)


def candidate_of(rec: DigestRecord, cfg: SelectConfig,
                 check: Callable[[dict[str, Any], int], list[str]] | None = None) -> Candidate:
    """The same from a trajectory's digest, without its text (``cfg.filters`` must be one the
    digest :func:`~startui.rft.digest.answers`; ``check``: its
    :func:`~startui.rft.digest.checker`, made once for many calls)."""
    d, st = rec.data, rec.standing
    if d is None:
        raise ValueError(f"trajectory {rec.id} has no digest: read it with "
                         "startui.rft.digest.current")
    status, review, score = rec.status, st.review_status, st.score
    return Candidate(  # positional: 100,000 of these per draw
        rec.id, rec.problem_id or "", d["mode"], status,
        None if score is None else score.correct, st.score_stale, review, d["chars"],
        (check or digest.checker(cfg.filters))(d, rec.tokens) if status == "finished" or (
            review == "accepted") else [],
        len(st.step_labels), st.human)


def select(store: Store, run_ids: Sequence[str], cfg: SelectConfig | None = None, *,
           from_text: bool = False) -> Selection:
    """The paper's selection over the runs' trajectories (see the module docstring), from their
    digests (computed on first use, see :mod:`startui.rft.digest`). ``from_text``, or filters
    with an n-gram size or paragraph length the digests did not measure: from every
    trajectory's text instead (exact too, and slow: the whole runs are read)."""
    with collector_paused():  # what is built and dropped in _select is never walked
        return _select(store, run_ids, cfg or SelectConfig(), from_text)


def _select(store: Store, run_ids: Sequence[str], cfg: SelectConfig,
            from_text: bool) -> Selection:
    by_problem: dict[str, list[Candidate]] = defaultdict(list)
    if from_text or not digest.answers(cfg.filters):
        for rec in store.iter_records(run_ids):
            c = candidate(rec, cfg)
            by_problem[c.problem_id].append(c)
    else:
        check = digest.checker(cfg.filters)
        for r in digest.current(store, run_ids):
            c = candidate_of(r, cfg, check)
            by_problem[c.problem_id].append(c)
    return select_candidates(by_problem, cfg)


def _drop_reason(c: Candidate, cfg: SelectConfig) -> str | None:
    if c.review == "rejected":
        return "rejected by a reviewer"
    accepted = c.review == "accepted"
    if cfg.dataset == "steps":
        if not accepted:
            return "steps: not accepted by a reviewer"
        if not c.labelled:
            return "steps: no step labels on its current revision"
    if c.status != "finished" and not (accepted and c.status != "running"):
        return f"not finished ({c.status})"
    if c.broken and not accepted:
        return f"rule: {c.broken[0]}"
    if cfg.require_correct and not accepted:
        if c.correct is None:
            return "not scored since its last edit" if c.stale else "not scored (run `score`)"
        if not c.correct:
            return "wrong answer"
    return None


def select_candidates(by_problem: dict[str, list[Candidate]], cfg: SelectConfig) -> Selection:
    report = SelectionReport(cfg.dataset)
    dropped: Counter[str] = Counter()
    hits: Counter[str] = Counter()
    overrides: Counter[str] = Counter()
    seed: Counter[str] = Counter()
    modes: Counter[str] = Counter()
    people: Counter[str] = Counter()
    chosen: list[tuple[str, str]] = []
    allowed: dict[str, bool] = {}  # mode -> exportable
    for pid in sorted(by_problem):
        cands = by_problem[pid]
        report.problems += 1
        report.trajectories += len(cands)
        pool = []
        for c in cands:
            modes[c.mode] += 1
            ok = allowed.get(c.mode)
            if ok is None:
                ok = allowed[c.mode] = cfg.exportable(c.mode)
            if ok:
                pool.append(c)
                if c.human in PEOPLE:
                    people[PEOPLE[c.human]] += 1
        report.considered += len(pool)
        eligible = []
        for c in pool:
            if c.broken:
                hits.update(c.broken)
            reason = _drop_reason(c, cfg)
            if reason:
                dropped[reason] += 1
                continue
            if c.review == "accepted" and cfg.dataset != "steps":  # steps: acceptance required
                if c.broken:
                    overrides["despite rules (" + ", ".join(c.broken) + ")"] += 1
                if cfg.require_correct and c.correct is not True:
                    overrides["without a correct rule score"] += 1
            eligible.append(c)
        if cfg.dataset == "seed" and eligible:
            greedy = [c for c in cands if c.mode == GREEDY and c.status == "finished"]
            if not greedy:
                verdict = "no greedy baseline"
            elif any(c.correct is None for c in greedy):
                verdict = "greedy baseline not scored"
            elif any(c.correct for c in greedy):
                verdict = "greedy already right"
            else:
                verdict = "greedy wrong, hinted right"
            seed[verdict] += 1
            if verdict != "greedy wrong, hinted right":
                kept = [c for c in eligible if c.review == "accepted"]
                if kept:
                    overrides[f"on problems where {verdict}"] += len(kept)
                for c in eligible:
                    if c.review != "accepted":
                        dropped[f"D_seed: {verdict}"] += 1
                eligible = kept
        eligible.sort(key=lambda c: (c.review != "accepted", c.correct is not True, c.length,
                                     c.id))
        take = eligible[:cfg.per_problem]  # None: no cap
        if len(eligible) > len(take):
            dropped[f"over the per-problem cap ({cfg.per_problem})"] += len(eligible) - len(take)
        if take:
            report.problems_selected += 1
        chosen += [(pid, c.id) for c in take]
    chosen.sort()
    report.selected = len(chosen)
    report.dropped, report.rule_hits = dict(dropped), dict(hits)
    report.overrides, report.seed_problems, report.by_mode = dict(overrides), dict(seed), \
        dict(modes)
    report.people = dict(people)
    return Selection([tid for _, tid in chosen], report, cfg)
