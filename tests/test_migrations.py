"""Alembic migrations: empty → head, every earlier revision with its data → head (SQLite and
PostgreSQL), downgrade and up again, models == migrations."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from startui import resources
from startui.store import Store, StoreError, migrations
from startui.store.models import Base
from startui.store.queue import QueueFilter
from startui.store.repository import shuffle_key


def revisions_in_order() -> list[str]:
    """Every revision in db/versions, oldest first."""
    return [r.revision for r in reversed(list(migrations.script().walk_revisions()))]


def upgrade_to(url: str, rev: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        command.upgrade(migrations.config(conn), rev)
    engine.dispose()


def schema_diff(url: str) -> list:
    engine = create_engine(url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    engine.dispose()
    return diff


# --- data as each revision stores it ----------------------------------------------------------
#
# One seeding function per revision: plain SQL for the schema AT that revision, frozen like the
# revision itself (never import the models here). The same story every time, so that one set of
# checks reads it back at head:
#   p1  a math problem; r1 a run
#   t1  accepted, version 2 (edited by ann), a human hint, one cell, rule score correct (current),
#       an image on its output, 44 characters of segment text, created at 00:00:01
#   t2  pending, unscored, one cell that ends in an error, 38 characters, created at 00:00:05
# A revision that adds tables or columns seeds them too, and adds a check to EXTRA_CHECKS.

_TS = re.compile(r"TS\((\d+)\)")


def run_sql(conn, *statements: str) -> None:
    """Execute ``statements`` as written, TS(n) becoming 2025-01-01 00:00:n UTC in the dialect's
    own literal (SQLite keeps the naive UTC text SQLAlchemy writes; PostgreSQL gets an offset)."""
    pg = conn.dialect.name == "postgresql"

    def stamp(m: re.Match) -> str:
        sec = int(m.group(1))
        return f"'2025-01-01 00:00:{sec:02d}+00'" if pg else f"'2025-01-01 00:00:{sec:02d}.000000'"

    for sql in statements:
        conn.exec_driver_sql(_TS.sub(stamp, sql))


def seed_0001(conn) -> None:
    run_sql(
        conn,
        "INSERT INTO problems (id, source, external_id, kind, question, answer, tests, meta, "
        "created_at, updated_at) VALUES ('p1', 'local', 'p1', 'math', 'What is 6*7?', '42', NULL, "
        "'{\"level\": 1}', TS(0), TS(0))",
        "INSERT INTO runs (id, name, backend, model, sampling, hint_policy, settings, created_at) "
        "VALUES ('r1', 'first', 'scripted', 'm', '{}', NULL, '{\"backend\": \"scripted\"}', TS(0))",
        "INSERT INTO trajectories (id, problem_id, run_id, parent_id, branch_point, status, "
        "prompt, settings, error, answer, tokens, tool_calls, hints, n_segments, review_status, "
        "reviewed_at, version, worker, created_at, updated_at, finished_at) VALUES "
        "('t1', 'p1', 'r1', NULL, NULL, 'finished', 'P:', '{\"backend\": \"scripted\"}', NULL, "
        "'42', 7, 1, 1, 5, 'accepted', TS(3), 2, NULL, TS(1), TS(3), TS(2)), "
        "('t2', 'p1', NULL, NULL, NULL, 'finished', 'Q:', '{}', NULL, NULL, 3, 1, 0, 2, "
        "'pending', NULL, 1, NULL, TS(5), TS(5), TS(5))",
        "INSERT INTO segments (id, trajectory_id, position, kind, source, text, meta, closed, "
        "created_at) VALUES "
        "(1, 't1', 0, 'think', 'model', 'Think. ', '{}', TRUE, TS(1)), "
        "(2, 't1', 1, 'hint', 'human', 'Try Python.', '{\"category\": \"human\"}', TRUE, TS(1)), "
        "(3, 't1', 2, 'code', 'model', 'print(6*7)', '{}', TRUE, TS(1)), "
        "(4, 't1', 3, 'output', 'kernel', '42', '{\"ms\": 3}', TRUE, TS(1)), "
        "(5, 't1', 4, 'answer', 'model', 'So \\boxed{42}.', '{\"boxed\": \"42\"}', TRUE, TS(2)), "
        "(6, 't2', 0, 'code', 'model', '1/0', '{}', TRUE, TS(5)), "
        "(7, 't2', 1, 'output', 'kernel', 'ZeroDivisionError: division by zero', "
        "'{\"error\": \"ZeroDivisionError\"}', TRUE, TS(5))",
        "INSERT INTO artifacts (segment_id, trajectory_id, key, ordinal, mime, data, created_at) "
        "VALUES (4, 't1', 'images', 0, 'image/png', 'AAAA', TS(1))",
        "INSERT INTO reviews (trajectory_id, reviewer, decision, score, notes, "
        "trajectory_version, created_at, updated_at) VALUES "
        "('t1', 'ann', 'accepted', 1.0, 'ok', 2, TS(3), TS(3))",
        "INSERT INTO revisions (trajectory_id, version, editor, note, segments, created_at) "
        "VALUES ('t1', 2, 'ann', '', '[{\"kind\": \"think\", \"text\": \"Think. \"}]', TS(3))",
        "INSERT INTO scores (trajectory_id, scorer, correct, value, detail, trajectory_version, "
        "created_at) VALUES ('t1', 'rule', TRUE, 1.0, '{}', 2, TS(4))",
    )


def _shuffle(trajectory_id: str) -> int:  # what the app stores from 0002 on
    return int(hashlib.sha1(trajectory_id.encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


def seed_0002(conn) -> None:
    """0002: the queue's columns on trajectories (as the app writes them), review labels, detail
    and undo, re-run checks on revisions, step labels, users, team settings."""
    run_sql(
        conn,
        "INSERT INTO problems (id, source, external_id, kind, question, answer, tests, meta, "
        "created_at, updated_at) VALUES ('p1', 'local', 'p1', 'math', 'What is 6*7?', '42', NULL, "
        "'{\"level\": 1}', TS(0), TS(0))",
        "INSERT INTO runs (id, name, backend, model, sampling, hint_policy, settings, created_at) "
        "VALUES ('r1', 'first', 'scripted', 'm', '{}', NULL, '{\"backend\": \"scripted\"}', TS(0))",
        "INSERT INTO trajectories (id, problem_id, run_id, parent_id, branch_point, status, "
        "prompt, settings, error, answer, tokens, tool_calls, hints, n_segments, review_status, "
        "reviewed_at, version, worker, created_at, updated_at, finished_at, verdict, human_hints, "
        "ends_in_error, length, shuffle) VALUES "
        "('t1', 'p1', 'r1', NULL, NULL, 'finished', 'P:', '{\"backend\": \"scripted\"}', NULL, "
        f"'42', 7, 1, 1, 5, 'accepted', TS(3), 2, NULL, TS(1), TS(3), TS(2), 'correct', 1, FALSE, "
        f"44, {_shuffle('t1')}), "
        "('t2', 'p1', NULL, NULL, NULL, 'finished', 'Q:', '{}', NULL, NULL, 3, 1, 0, 2, "
        f"'pending', NULL, 1, NULL, TS(5), TS(5), TS(5), NULL, 0, TRUE, 38, {_shuffle('t2')})",
        "INSERT INTO segments (id, trajectory_id, position, kind, source, text, meta, closed, "
        "created_at) VALUES "
        "(1, 't1', 0, 'think', 'model', 'Think. ', '{}', TRUE, TS(1)), "
        "(2, 't1', 1, 'hint', 'human', 'Try Python.', '{\"category\": \"human\"}', TRUE, TS(1)), "
        "(3, 't1', 2, 'code', 'model', 'print(6*7)', '{}', TRUE, TS(1)), "
        "(4, 't1', 3, 'output', 'kernel', '42', '{\"ms\": 3}', TRUE, TS(1)), "
        "(5, 't1', 4, 'answer', 'model', 'So \\boxed{42}.', '{\"boxed\": \"42\"}', TRUE, TS(2)), "
        "(6, 't2', 0, 'code', 'model', '1/0', '{}', TRUE, TS(5)), "
        "(7, 't2', 1, 'output', 'kernel', 'ZeroDivisionError: division by zero', "
        "'{\"error\": \"ZeroDivisionError\"}', TRUE, TS(5))",
        "INSERT INTO artifacts (segment_id, trajectory_id, key, ordinal, mime, data, created_at) "
        "VALUES (4, 't1', 'images', 0, 'image/png', 'AAAA', TS(1))",
        "INSERT INTO reviews (trajectory_id, reviewer, decision, score, notes, "
        "trajectory_version, created_at, updated_at, labels, detail, undone_at) VALUES "
        "('t1', 'ann', 'accepted', 1.0, 'ok', 2, TS(3), TS(3), '[\"clean\"]', "
        "'{\"seconds\": 40}', NULL), "
        "('t1', 'bob', 'rejected', NULL, '', 2, TS(6), TS(7), '[]', '{}', TS(7))",
        "INSERT INTO revisions (trajectory_id, version, editor, note, segments, created_at, "
        "checks) VALUES ('t1', 2, 'ann', '', '[{\"kind\": \"think\", \"text\": \"Think. \"}]', "
        "TS(3), '{\"stale\": [3]}')",
        "INSERT INTO scores (trajectory_id, scorer, correct, value, detail, trajectory_version, "
        "created_at) VALUES ('t1', 'rule', TRUE, 1.0, '{}', 2, TS(4))",
        "INSERT INTO step_labels (trajectory_id, trajectory_version, position, label, reviewer, "
        "created_at) VALUES ('t1', 2, 0, 1, 'ann', TS(3)), ('t1', 2, 2, -1, 'ann', TS(3))",
        "INSERT INTO users (name, password_hash, role, created_at) VALUES "
        "('ann', 'scrypt$salt$hash', 'admin', TS(0)), ('bob', NULL, 'reviewer', TS(0))",
        "INSERT INTO app_settings (key, value, updated_by, updated_at) VALUES "
        "('queue.sort', '\"shortest\"', 'ann', TS(0))",
    )


def seed_0003(conn) -> None:
    """0003: everything 0002 stores, plus a review campaign over t1 and t2 (overlap 2, ann and
    bob, ann adjudicates): ann voted on t2 in it (a review with the campaign's id), bob holds a
    lease on t2 that runs until 00:00:20, t1 is untouched."""
    seed_0002(conn)
    campaign = "(SELECT id FROM review_campaigns WHERE name = 'double')"
    run_sql(
        conn,
        "INSERT INTO review_campaigns (name, filter, per_problem, overlap, reviewers, "
        "adjudicator, lease_seconds, status, items, created_by, created_at) VALUES ('double', "
        "'{\"run_id\": \"r1\", \"review_status\": null}', 1, 2, '[\"ann\", \"bob\"]', 'ann', "
        "900, 'open', 2, 'ann', TS(8))",
        "INSERT INTO campaign_items (campaign_id, trajectory_id, position, taken, decided, "
        f"is_open) VALUES ({campaign}, 't1', 0, 0, 0, TRUE), ({campaign}, 't2', 1, 2, 1, FALSE)",
        "INSERT INTO reviews (trajectory_id, reviewer, decision, score, notes, "
        "trajectory_version, created_at, updated_at, labels, detail, undone_at, campaign_id) "
        f"VALUES ('t2', 'ann', 'accepted', 4.0, 'fine', 1, TS(9), TS(9), '[]', '{{}}', NULL, "
        f"{campaign})",
        "INSERT INTO campaign_assignments (campaign_id, item_id, trajectory_id, reviewer, state, "
        "leased_at, expires_at, decided_at, review_id) VALUES "
        f"({campaign}, (SELECT id FROM campaign_items WHERE trajectory_id = 't2'), 't2', 'ann', "
        "'decided', TS(8), TS(20), TS(9), (SELECT id FROM reviews WHERE campaign_id IS NOT NULL)), "
        f"({campaign}, (SELECT id FROM campaign_items WHERE trajectory_id = 't2'), 't2', 'bob', "
        "'leased', TS(10), TS(20), NULL, NULL)",
    )


def seed_0004(conn) -> None:
    """0004: everything 0003 stores, plus the tasks of run r1 (t1 done; t2 claimed by a worker
    whose lease ran out at 00:00:30) and a digest of t1 at its version 2."""
    seed_0003(conn)
    run_sql(
        conn,
        "INSERT INTO run_tasks (trajectory_id, run_id, problem_id, mode, sample, position, state, "
        "worker, lease_until, attempts, updated_at) VALUES "
        "('t1', 'r1', 'p1', 'hinted', 0, 0, 'done', 'h:1:a', NULL, 1, TS(11)), "
        "('t2', 'r1', 'p1', 'hinted', 1, 1, 'claimed', 'h:2:b', TS(30), 1, TS(12))",
        "INSERT INTO trajectory_digests (trajectory_id, version, n_segments, schema, data) "
        "VALUES ('t1', 2, 5, 0, '{}')",
    )


SEED = {"0001": seed_0001, "0002": seed_0002, "0003": seed_0003, "0004": seed_0004}


def check_story(store: Store) -> None:
    """What every seed holds, read back through the Store at head."""
    t, version = store.load_trajectory_versioned("t1")
    assert (t.status, t.prompt, t.tokens, version, t.answer) == ("finished", "P:", 7, 2, "42")
    assert [(s.kind, s.source) for s in t.segments] == [
        ("think", "model"), ("hint", "human"), ("code", "model"), ("output", "kernel"),
        ("answer", "model")]
    assert t.segments[3].meta == {"ms": 3, "images": ["AAAA"]}
    assert t.segments[4].text == "So \\boxed{42}."
    assert t.problem.meta == {"level": 1} and t.problem.answer == "42"
    assert t.created_at == "2025-01-01T00:00:01+00:00"
    t2 = store.load_trajectory("t2")
    assert t2.ends_in_error and t2.answer is None
    [first, *_] = store.list_reviews("t1")
    assert (first.reviewer, first.decision, first.trajectory_version) == ("ann", "accepted", 2)
    assert store.list_revisions("t1")[0].segments[0].text == "Think. "
    assert store.latest_scores("t1")["rule"].correct is True
    st = store.stats()
    assert (st["trajectories"], st["segments"], st["accepted"], st["unreviewed"], st["runs"],
            st["problems"], st["tool_calls"], st["hints"]) == (2, 7, 1, 1, 1, 1, 2, 1)
    # the review queue's filters and orders see the columns 0002 derives (backfilled from older
    # data, written by the app from then on)

    def queue(**f) -> list[str]:
        return [x.id for x in store.queue_page(QueueFilter(review_status=None, **f)).items]

    assert queue() == ["t1", "t2"]  # oldest first
    assert queue(sort="shortest") == ["t2", "t1"]
    assert queue(verdict="correct") == ["t1"] and queue(verdict="unscored") == ["t2"]
    assert queue(human_hint=True) == ["t1"] and queue(ends_in_error=True) == ["t2"]
    assert [x.id for x in store.queue_page(QueueFilter()).items] == ["t2"]  # pending, finished
    with store.read() as s:
        shuffle = dict(s.execute(text("SELECT id, shuffle FROM trajectories")).all())
    assert shuffle == {"t1": shuffle_key("t1"), "t2": shuffle_key("t2")}


def check_0002(store: Store) -> None:
    ann, bob = store.list_reviews("t1")
    assert (ann.labels, ann.detail, ann.undone_at) == (["clean"], {"seconds": 40}, None)
    assert bob.decision == "rejected" and bob.undone_at is not None
    assert store.list_revisions("t1")[0].checks == {"stale": [3]}
    assert store.step_labels("t1") == {"ann": {0: 1, 2: -1}}
    users = {u.name: u for u in store.list_users()}
    assert (users["ann"].role, users["ann"].has_password) == ("admin", True)
    assert (users["bob"].role, users["bob"].has_password) == ("reviewer", False)
    assert store.get_setting("queue.sort") == "shortest"


def check_0003(store: Store) -> None:
    c = store.get_campaign("double")
    assert (c.overlap, c.reviewers, c.adjudicator, c.per_problem, c.items, c.status) == (
        2, ["ann", "bob"], "ann", 1, 2, "open")
    assert c.queue_filter() == QueueFilter(run_id="r1", review_status=None)
    [vote] = [r for r in store.list_reviews("t2") if r.campaign_id == c.id]
    assert (vote.reviewer, vote.decision, vote.score) == ("ann", "accepted", 4.0)
    _, votes = store.campaign_votes("double")
    assert [(v.reviewer, v.decision) for v in votes["t2"]] == [("ann", "accepted")]
    assert votes["t1"] == []
    lease_runs = datetime(2025, 1, 1, 0, 0, 15, tzinfo=UTC)
    assert store.held_campaign_items("double", "bob", now=lease_runs) == ["t2"]
    assert store.held_campaign_items("double", "bob") == []  # it ran out long ago
    p = store.campaign_progress("double", now=lease_runs)
    assert (p.items, p.done, p.started, p.untouched, p.leased) == (2, 0, 1, 1, 1)
    assert p.reviewers["ann"]["decided"] == 1 and p.reviewers["bob"]["leased"] == 1
    assert store.trajectory_summary("t2").review_status == "pending"  # 1 of 2 votes: no word yet


# Data a seed holds only from the revision that added its tables: checked when the walk starts
# at that revision or later.
def check_0004(store: Store) -> None:
    with store.read() as s:
        tasks = s.execute(text("SELECT trajectory_id, state, worker FROM run_tasks "
                               "ORDER BY position")).all()
        digests = s.execute(text("SELECT trajectory_id, version FROM trajectory_digests")).all()
    assert [tuple(t) for t in tasks] == [("t1", "done", "h:1:a"), ("t2", "claimed", "h:2:b")]
    assert [tuple(d) for d in digests] == [("t1", 2)]


EXTRA_CHECKS = {"0002": check_0002, "0003": check_0003, "0004": check_0004}


def _missing_seeds(revisions: list[str]) -> list[str]:
    return [r for r in revisions if r not in SEED]


def _checks_for(rev: str, revisions: list[str]):
    upto = revisions.index(rev)
    return [check_story] + [c for r, c in EXTRA_CHECKS.items() if revisions.index(r) <= upto]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_db(request, tmp_path):
    """A callable giving the URL of a new, empty database each time it is called."""
    if request.param == "sqlite":
        n = iter(range(1000))
        return lambda: f"sqlite:///{tmp_path / f'walk-{next(n)}.sqlite'}"
    url = request.getfixturevalue("pg_url")

    def fresh() -> str:
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
        engine.dispose()
        return url

    return fresh


def test_every_revision_with_data_upgrades_to_head(fresh_db):
    """For each revision R before head: a new database at R, data as R stores it (SEED[R]), then
    up to head; the data must still be there and readable through the Store."""
    revisions = revisions_in_order()
    head = revisions[-1]
    missing = _missing_seeds(revisions[:-1])
    assert not missing, (
        f"no seeding function for revision(s) {', '.join(missing)}: add seed_XXXX (plain SQL for "
        "the schema at that revision) to SEED in tests/test_migrations.py")
    if len(revisions) < 2:
        pytest.skip("only one revision: there is nothing to upgrade from")
    steps = []
    for rev in revisions[:-1]:
        url = fresh_db()
        upgrade_to(url, rev)
        engine = create_engine(url)
        with engine.begin() as conn:
            SEED[rev](conn)
        engine.dispose()
        upgrade_to(url, "head")
        assert schema_diff(url) == [], f"after {rev} -> {head} the schema differs from the models"
        with Store(url) as store:
            for check in _checks_for(rev, revisions):
                check(store)
        steps.append(f"{rev} -> {head}")
    print(f"upgraded with data: {'; '.join(steps)} ({len(steps)} of {len(revisions)} revisions)")
    assert len(steps) == len(revisions) - 1, steps


def test_the_head_revisions_seed_is_what_the_store_reads(fresh_db):
    """The newest revision's seed, checked at head now, so that it is right when the next
    revision makes the walk above start from it."""
    revisions = revisions_in_order()
    head = revisions[-1]
    assert head in SEED, (
        f"no seeding function for the newest revision {head}: add seed_{head} (plain SQL for its "
        "schema) to SEED in tests/test_migrations.py, so the next revision can be tested from it")
    url = fresh_db()
    upgrade_to(url, head)
    engine = create_engine(url)
    with engine.begin() as conn:
        SEED[head](conn)
    engine.dispose()
    with Store(url) as store:
        for check in _checks_for(head, revisions):
            check(store)


def test_empty_database_upgrades_to_head_matching_the_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    with Store(url):
        pass
    assert schema_diff(url) == []
    engine = create_engine(url)
    with engine.connect() as conn:
        assert migrations.current(conn) == set(migrations.script().get_heads())
    engine.dispose()


def test_downgrade_to_base_and_up_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    upgrade_to(url, "head")
    engine = create_engine(url)
    with engine.begin() as conn:
        command.downgrade(migrations.config(conn), "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    upgrade_to(url, "head")
    assert schema_diff(url) == []


def test_database_from_a_newer_startui_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    Store(url).close()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'fffffffff'"))
    engine.dispose()
    with pytest.raises(StoreError, match="revision fffffffff, which this version of startui "
                                         "does not know"):
        Store(url)


def test_tables_without_alembic_version_are_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    with pytest.raises(StoreError, match="no alembic_version table"):
        Store(url)


def test_reopen_is_a_no_op(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    with Store(url) as s:
        assert s.seed_samples() > 0
        before = s.stats()

    def no_upgrade(*args, **kwargs):
        raise AssertionError("a database already at head was migrated again")

    monkeypatch.setattr(migrations.command, "upgrade", no_upgrade)
    with Store(url) as s:
        assert s.stats() == before
    engine = create_engine(url)
    with engine.connect() as conn:
        assert migrations.current(conn) == set(migrations.script().get_heads())
    engine.dispose()


def test_migration_file_is_frozen():
    """Revisions must not import the models: a later model change would rewrite history."""
    for path in (resources.migrations_dir() / "versions").glob("*.py"):
        code = path.read_text()
        assert "from startui" not in code and "import startui" not in code, path


@pytest.mark.postgres
def test_postgres_upgrade_matches_models_and_keeps_json(pg_url):
    with Store(pg_url) as s:
        s.seed_samples()
    assert schema_diff(pg_url) == []
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        tests = conn.execute(text("SELECT tests FROM problems WHERE kind = 'code' LIMIT 1")
                             ).scalar_one()
        kinds = conn.execute(text("SELECT data_type FROM information_schema.columns WHERE "
                                  "table_name = 'segments' AND column_name = 'meta'")).scalar()
    engine.dispose()
    assert isinstance(tests, list) and kinds == "jsonb"
    assert json.dumps(tests)
