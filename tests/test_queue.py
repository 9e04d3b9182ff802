"""The review queue's orders and keyset pages, on SQLite and PostgreSQL: every item once, in a
stable order, whatever the page size."""

from __future__ import annotations

import pytest

from startui.store import Store
from startui.store.queue import QueueFilter
from startui.trajectory import Problem, Segment, Trajectory
from tests.test_store import pg_url  # noqa: F401 - fixture


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
