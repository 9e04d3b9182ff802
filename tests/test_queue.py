"""The review queue's orders and keyset pages, on SQLite and PostgreSQL: every item once, in a
stable order, whatever the page size."""

from __future__ import annotations

import pytest

from startui.store import Store
from startui.store.queue import QueueFilter
from startui.trajectory import Problem, Segment, Trajectory


def _fill(store: Store, n: int) -> list[str]:
    trajs = [Trajectory(problem=Problem(f"problem {i}"), prompt="p", status="finished",
                        segments=[Segment("think", "t" * (1 + (i * 7) % 13))]) for i in range(n)]
    store.save_trajectories(trajs)
    return [t.id for t in trajs]


def _walk(store: Store, f: QueueFilter, size: int) -> list[str]:
    seen, cursor = [], None
    while True:
        page = store.queue_page(f, after=cursor, limit=size)
        seen += [s.id for s in page.items]
        if page.cursor is None:
            return seen
        cursor = page.cursor


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    url = (f"sqlite:///{tmp_path / 'q.sqlite'}" if request.param == "sqlite"
           else request.getfixturevalue("pg_url"))
    with Store(url) as s:
        yield s


@pytest.mark.parametrize("sort", ["oldest", "shortest", "shuffled"])
def test_every_order_pages_through_everything_once(store, sort):
    ids = _fill(store, 23)
    f = QueueFilter(sort=sort, seed=7)
    whole = _walk(store, f, 100)
    assert sorted(whole) == sorted(ids)
    for size in (1, 4, 10):
        assert _walk(store, f, size) == whole
    if sort == "shortest":
        lengths = [len(store.load_trajectory(t).segments[0].text) for t in whole]
        assert lengths == sorted(lengths)


def test_a_new_seed_is_a_new_shuffle(store):
    _fill(store, 30)
    orders = {tuple(_walk(store, QueueFilter(sort="shuffled", seed=s), 50)) for s in range(4)}
    assert len(orders) == 4
    assert _walk(store, QueueFilter(sort="shuffled", seed=2), 7) == list(
        _walk(store, QueueFilter(sort="shuffled", seed=2), 50))


def test_the_counts_are_what_the_queue_walks_under_every_filter(store):
    """queue_counts joins the problems only for a filter on them; either way its numbers are
    the number of items the (always joined) pages walk."""
    from dataclasses import replace

    from startui.answers import SCORER
    from startui.store.models import REVIEW_STATES

    trajs = [Trajectory(problem=Problem(f"problem {i % 7}", kind="code" if i % 3 else "math",
                                        meta={"source": "a" if i % 2 else "b"}),
                        prompt="p", status="finished" if i % 5 else "error",
                        segments=[Segment("think", f"text {i}")]) for i in range(40)]
    store.save_trajectories(trajs)
    for i, t in enumerate(trajs):
        if i % 4 == 0:
            store.add_review(t.id, reviewer="ann", decision=("accepted", "rejected")[i % 8 // 4])
        if i % 3 == 0 and t.status == "finished":
            store.add_score(t.id, scorer=SCORER, correct=i % 2 == 0)
    for f in (QueueFilter(), QueueFilter(kind="code"), QueueFilter(source="a"),
              QueueFilter(search="problem 3"), QueueFilter(verdict="wrong"),
              QueueFilter(verdict="unscored", kind="math"), QueueFilter(status=None)):
        counts = store.queue_counts(f)
        walked = {st: len(_walk(store, replace(f, review_status=st), 50))
                  for st in REVIEW_STATES}
        assert {st: counts[st] for st in REVIEW_STATES} == walked, f
        assert counts["total"] == sum(walked.values())
        assert counts["total"] > 0, f  # every filter finds some
    assert store.queue_counts(QueueFilter())["total"] == 32  # the finished ones
