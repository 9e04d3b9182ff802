"""Benchmark of review campaigns (issue 12) on a store of 100,000 trajectories.

    python bench/bench_campaign.py                 # 100,000 trajectories (a few minutes)
    python bench/bench_campaign.py --n 10000       # quick run
    python bench/bench_campaign.py --url postgresql+psycopg://...   # another database (emptied!)

The store is built on the bulk path (``Store.save_trajectories`` over bench_store.py's synthetic
generator; ``--segments`` 4 per trajectory by default: a campaign never reads segment text, and
the build is five times quicker than bench_store.py's 20), with 20 reviewers and an admin.

1. **Agreement.** Campaign "agree": the finished trajectories, at most one per problem (~10,000
   of 100,000), overlap 2 over the 20 reviewers; every item decided by two of them (accept or
   reject, ~85% agreeing, a 1–5 score) and a tenth of the items labelled step by step by both,
   all written in bulk (reviews with the campaign's id, assignments, item counters) — the state
   ``decide`` leaves, without taking 20,000 round trips to make it. Timed:
   ``campaign_agreement`` (pairwise Cohen's kappa for 190 pairs, Krippendorff's alpha on
   decisions, scores and step labels, overall and per pair). Baseline, same run: reading the same
   rows raw (the campaign's reviews and step labels, plain SELECTs, no objects).

2. **Hand-out.** Campaign "pull": at most two trajectories per problem (~20,000), overlap 2, the
   same 20 reviewers; its first half already done (bulk, as above), so each pull seeks past
   thousands of full items. 8 reviewers in 8 threads on one Store (the app's case: one process,
   one writer) each pull and decide ``--pulls`` times; every ``next_item`` is timed (the decide
   is timed apart). Goal: p95 < 100 ms. Baseline, same run, same 8 threads: a plain primary-key
   read of one trajectory row.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, insert, select, text, update

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_store import pct, synthetic  # noqa: E402

from startui.review import agreement, campaigns, decisions, users  # noqa: E402
from startui.store import Store  # noqa: E402
from startui.store.models import (  # noqa: E402
    CampaignAssignmentRow,
    CampaignItemRow,
    ReviewRow,
    StepLabelRow,
    TrajectoryRow,
)
from startui.store.queue import QueueFilter  # noqa: E402

REVIEWERS = [f"r{i:02d}" for i in range(20)]


def build(store: Store, n: int, n_segments: int) -> float:
    t = time.perf_counter()
    gen = synthetic(n, n_segments)
    done = 0
    while batch := [tr for _, tr in zip(range(2000), gen, strict=False)]:
        done += store.save_trajectories(batch, batch_size=2000)
        if done % 20000 == 0:
            print(f"  inserted {done:,}", file=sys.stderr)
    store.write(lambda s: s.execute(text("ANALYZE")))
    users.add_user(store, "root", None, role="admin")
    for r in REVIEWERS:
        users.add_user(store, r, None)
    return time.perf_counter() - t


def fill(store: Store, name: str, *, upto: float = 1.0, steps_every: int = 10,
         seed: int = 0) -> int:
    """Decide the first ``upto`` of a campaign's items by two reviewers each, in bulk: what
    ``decide`` writes (reviews with the campaign id, decided assignments, item counters),
    ~85% agreeing, a score each, step labels by both on every ``steps_every``-th item."""
    c = campaigns.get_campaign(store, name)
    rng = random.Random(seed)
    now = datetime.now(UTC)
    with store.read() as s:
        items = s.execute(select(CampaignItemRow.id, CampaignItemRow.trajectory_id,
                                 TrajectoryRow.version)
                          .join(TrajectoryRow, TrajectoryRow.id == CampaignItemRow.trajectory_id)
                          .where(CampaignItemRow.campaign_id == c.id)
                          .order_by(CampaignItemRow.position)).all()
    items = items[:int(len(items) * upto)]

    def write(chunk: list) -> None:
        def go(s) -> None:
            reviews, labels = [], []
            for item_id, tid, version in chunk:
                pair = rng.sample(REVIEWERS, 2)
                first = rng.random() < 0.7
                agree = rng.random() < 0.85
                score = rng.randint(3, 5) if first else rng.randint(1, 3)
                for k, who in enumerate(pair):
                    accept = first if (k == 0 or agree) else not first
                    reviews.append({
                        "trajectory_id": tid, "reviewer": who,
                        "decision": "accepted" if accept else "rejected",
                        "score": float(max(1, min(5, score + rng.choice((-1, 0, 0, 1))))),
                        "notes": "", "trajectory_version": version, "labels": [],
                        "detail": {}, "created_at": now, "updated_at": now,
                        "campaign_id": c.id})
                    if steps_every and item_id % steps_every == 0:
                        labels += [{"trajectory_id": tid, "trajectory_version": version,
                                    "position": p, "reviewer": who, "created_at": now,
                                    "label": rng.choice((1, 1, 1, 0, -1))} for p in range(3)]
            s.execute(insert(ReviewRow), reviews)
            if labels:
                s.execute(insert(StepLabelRow), labels)
            ids = {(r["trajectory_id"], r["reviewer"]): None for r in reviews}
            got = s.execute(select(ReviewRow.id, ReviewRow.trajectory_id, ReviewRow.reviewer)
                            .where(ReviewRow.campaign_id == c.id,
                                   ReviewRow.trajectory_id.in_([t for _, t, _ in chunk])))
            for rid, tid, who in got:
                ids[(tid, who)] = rid
            by_tid = {tid: item_id for item_id, tid, _ in chunk}
            s.execute(insert(CampaignAssignmentRow), [
                {"campaign_id": c.id, "item_id": by_tid[tid], "trajectory_id": tid,
                 "reviewer": who, "state": "decided", "leased_at": now, "expires_at": now,
                 "decided_at": now, "review_id": rid} for (tid, who), rid in ids.items()])
            s.execute(update(CampaignItemRow)
                      .where(CampaignItemRow.id.in_([i for i, _, _ in chunk]))
                      .values(taken=2, decided=2, is_open=False)
                      .execution_options(synchronize_session=False))

        store.write(go)

    for i in range(0, len(items), 1000):
        write(items[i:i + 1000])
    store.write(lambda s: s.execute(text("ANALYZE")))
    return len(items)


def time_agreement(store: Store, name: str, repeat: int) -> tuple[list[float], list[float],
                                                                   agreement.AgreementReport]:
    c = campaigns.get_campaign(store, name)

    def raw() -> int:
        with store.read() as s:
            rows = s.execute(select(ReviewRow.trajectory_id, ReviewRow.reviewer,
                                    ReviewRow.decision, ReviewRow.score, ReviewRow.detail)
                             .where(ReviewRow.campaign_id == c.id,
                                    ReviewRow.undone_at.is_(None))).all()
            labels = s.execute(select(StepLabelRow.trajectory_id, StepLabelRow.position,
                                      StepLabelRow.reviewer, StepLabelRow.label)
                               .join(CampaignItemRow, CampaignItemRow.trajectory_id
                                     == StepLabelRow.trajectory_id)
                               .where(CampaignItemRow.campaign_id == c.id)).all()
        return len(rows) + len(labels)

    ours, base, report = [], [], None
    raw()
    agreement.campaign_agreement(store, name)  # warm
    for _ in range(repeat):
        t = time.perf_counter()
        raw()
        base.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        report = agreement.campaign_agreement(store, name)
        ours.append((time.perf_counter() - t) * 1000)
    return ours, base, report


def time_handout(store: Store, name: str, threads: int, pulls: int,
                 ) -> tuple[list[float], list[float], list[float], int]:
    """``threads`` reviewers at once, each pulling and deciding ``pulls`` times."""
    pulled: list[float] = []
    decided: list[float] = []
    handed: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def reviewer(who: str) -> None:
        rng = random.Random(who)
        mine_p, mine_d, mine = [], [], []
        try:
            start.wait()
            for _ in range(pulls):
                t = time.perf_counter()
                tid = campaigns.next_item(store, name, who)
                mine_p.append((time.perf_counter() - t) * 1000)
                if tid is None:
                    break
                mine.append(tid)
                t = time.perf_counter()
                decisions.decide(store, tid, reviewer=who, campaign=name,
                                 decision=rng.choice(("accepted", "rejected")))
                mine_d.append((time.perf_counter() - t) * 1000)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
        with lock:
            pulled.extend(mine_p)
            decided.extend(mine_d)
            handed.extend(f"{who}:{tid}" for tid in mine)

    ts = [threading.Thread(target=reviewer, args=(w,)) for w in REVIEWERS[:threads]]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]
    if len(handed) != len(set(handed)):
        raise SystemExit("a reviewer was handed the same item twice")
    # baseline: the same threads, a plain primary-key read of one trajectory row each time
    with store.read() as s:
        ids = list(s.scalars(select(TrajectoryRow.id).limit(5000)))
    base: list[float] = []
    start = threading.Barrier(threads)

    def reader(k: int) -> None:
        rng = random.Random(k)
        mine = []
        start.wait()
        for _ in range(pulls):
            tid = rng.choice(ids)
            t = time.perf_counter()
            with store.read() as s:
                s.execute(select(TrajectoryRow.__table__).where(TrajectoryRow.id == tid)).one()
            mine.append((time.perf_counter() - t) * 1000)
        with lock:
            base.extend(mine)

    ts = [threading.Thread(target=reader, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return pulled, decided, base, len(handed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="trajectories (default 100,000)")
    ap.add_argument("--segments", type=int, default=4, help="segments per trajectory")
    ap.add_argument("--url", help="database URL (default: a new SQLite file in a temp dir); "
                                  "its startui tables must be empty")
    ap.add_argument("--threads", type=int, default=8, help="reviewers pulling at once")
    ap.add_argument("--pulls", type=int, default=150, help="pulls per reviewer")
    ap.add_argument("--repeat", type=int, default=5, help="timed agreement runs")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench_campaign_"))
    url = args.url or f"sqlite:///{tmp / 'bench.sqlite'}"
    store = Store(url)
    print(f"store: {store!r}; {args.n:,} trajectories x {args.segments} segments",
          file=sys.stderr)
    built = build(store, args.n, args.segments)
    finished = QueueFilter(review_status=None)

    t = time.perf_counter()
    agree = campaigns.create_campaign(store, "agree", by="root", filter=finished, per_problem=1,
                                      overlap=2, reviewers=REVIEWERS)
    made_agree = time.perf_counter() - t
    n_agree = fill(store, "agree")
    with store.read() as s:
        n_reviews = s.scalar(select(func.count()).select_from(ReviewRow)
                             .where(ReviewRow.campaign_id == agree.id))
        n_labels = s.scalar(select(func.count()).select_from(StepLabelRow))
    ours, base, report = time_agreement(store, "agree", args.repeat)

    t = time.perf_counter()
    pull = campaigns.create_campaign(store, "pull", by="root", filter=finished, per_problem=2,
                                     overlap=2, reviewers=REVIEWERS)
    made_pull = time.perf_counter() - t
    prefilled = fill(store, "pull", upto=0.5, steps_every=0, seed=1)
    pulled, decided, pk, handed = time_handout(store, "pull", args.threads, args.pulls)
    progress = campaigns.progress(store, "pull")
    where = (f"SQLite file {(tmp / 'bench.sqlite').stat().st_size / 2**20:,.0f} MiB"
             if not args.url else store._engine.dialect.name)
    store.close()

    a50, b50 = statistics.median(ours), statistics.median(base)
    p50, p95, k50, k95 = (statistics.median(pulled), pct(pulled, 95), statistics.median(pk),
                          pct(pk, 95))
    print(f"\n## Campaigns benchmark: {args.n:,} trajectories x {args.segments} segments, "
          f"{where} (built in {built:.0f} s)\n")
    print(f"- campaign \"agree\": {agree.items:,} items (finished, one per problem), made in "
          f"{made_agree * 1000:.0f} ms; {n_agree:,} decided by two of 20 reviewers in bulk "
          f"({n_reviews:,} reviews, {n_labels:,} step labels)")
    print(f"- agreement (`campaign_agreement`: 190 pairs, kappa + alpha on decisions, scores, "
          f"steps): p50 {a50:.0f} ms over {args.repeat} runs; baseline raw read of the same "
          f"rows {b50:.0f} ms; ratio {a50 / b50:.1f}x")
    print(f"  kappa (Light's) {report.kappa} · alpha decisions {report.alpha} · scores "
          f"{report.score_alpha} · steps {report.steps_alpha}")
    print(f"- campaign \"pull\": {pull.items:,} items (two per problem), made in "
          f"{made_pull * 1000:.0f} ms, first {prefilled:,} already done")
    print(f"- hand-out, {args.threads} reviewers at once on one Store, {len(pulled):,} "
          f"`next_item` calls ({handed:,} items handed and decided): p50 {p50:.1f} ms, "
          f"p95 {p95:.1f} ms (goal p95 < 100 ms: {'OK' if p95 < 100 else 'MISSED'}); "
          f"decide p50 {statistics.median(decided):.1f} ms, p95 {pct(decided, 95):.1f} ms")
    print(f"  baseline, same {args.threads} threads: primary-key read of one trajectory row "
          f"p50 {k50:.2f} ms, p95 {k95:.2f} ms; ratio p50 {p50 / k50:.0f}x, p95 "
          f"{p95 / k95:.0f}x")
    print(f"  after: {progress.done:,} of {progress.items:,} done, {progress.started:,} "
          f"started, {progress.leased} leased")


if __name__ == "__main__":
    main()
