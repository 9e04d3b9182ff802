"""Alembic migrations: empty → head, first revision with data → head, models == migrations."""

from __future__ import annotations

import json

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from startui import resources
from startui.store import Store, StoreError, migrations
from startui.store.models import Base
from tests.test_store import pg_url  # noqa: F401 - fixture

FIRST = "0001"


def revisions_in_order() -> list[str]:
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


# Data as revision 0001 stores it, written with plain SQL so it does not depend on the models.
ROWS = [
    "INSERT INTO problems (id, source, external_id, kind, question, answer, tests, meta, "
    "created_at, updated_at) VALUES ('p1', 'local', 'p1', 'math', 'What is 6*7?', '42', NULL, "
    "'{\"level\": 1}', '2025-01-01 00:00:00.000000', '2025-01-01 00:00:00.000000')",
    "INSERT INTO runs (id, name, backend, model, sampling, hint_policy, settings, created_at) "
    "VALUES ('r1', 'first', 'scripted', 'm', '{}', NULL, '{\"backend\": \"scripted\"}', "
    "'2025-01-01 00:00:00.000000')",
    "INSERT INTO trajectories (id, problem_id, run_id, parent_id, branch_point, status, prompt, "
    "settings, error, answer, tokens, tool_calls, hints, n_segments, review_status, reviewed_at, "
    "version, worker, created_at, updated_at, finished_at) VALUES ('t1', 'p1', 'r1', NULL, NULL, "
    "'finished', 'P:', '{\"backend\": \"scripted\"}', NULL, '42', 7, 1, 0, 3, 'accepted', NULL, "
    "2, NULL, '2025-01-01 00:00:01.000000', '2025-01-01 00:00:02.000000', NULL)",
    "INSERT INTO segments (id, trajectory_id, position, kind, source, text, meta, closed, "
    "created_at) VALUES (1, 't1', 0, 'think', 'model', 'Think. ', '{}', 1, "
    "'2025-01-01 00:00:01.000000'), (2, 't1', 1, 'code', 'model', 'print(6*7)', '{}', 1, "
    "'2025-01-01 00:00:01.000000'), (3, 't1', 2, 'output', 'kernel', '42', '{\"ms\": 3}', 1, "
    "'2025-01-01 00:00:01.000000')",
    "INSERT INTO artifacts (segment_id, trajectory_id, key, ordinal, mime, data, created_at) "
    "VALUES (3, 't1', 'images', 0, 'image/png', 'AAAA', '2025-01-01 00:00:01.000000')",
    "INSERT INTO reviews (trajectory_id, reviewer, decision, score, notes, trajectory_version, "
    "created_at, updated_at) VALUES ('t1', 'ann', 'accepted', 1.0, 'ok', 2, "
    "'2025-01-01 00:00:03.000000', '2025-01-01 00:00:03.000000')",
    "INSERT INTO revisions (trajectory_id, version, editor, note, segments, created_at) VALUES "
    "('t1', 2, 'ann', '', '[{\"kind\": \"think\", \"text\": \"Think. \"}]', "
    "'2025-01-01 00:00:03.000000')",
    "INSERT INTO scores (trajectory_id, scorer, correct, value, detail, trajectory_version, "
    "created_at) VALUES ('t1', 'math-verify', 1, 1.0, '{}', 2, '2025-01-01 00:00:03.000000')",
]


def test_empty_database_upgrades_to_head_matching_the_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    with Store(url):
        pass
    assert schema_diff(url) == []
    engine = create_engine(url)
    with engine.connect() as conn:
        assert migrations.current(conn) == set(migrations.script().get_heads())
    engine.dispose()


def test_first_revision_with_data_upgrades_to_head(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    upgrade_to(url, FIRST)
    engine = create_engine(url)
    with engine.begin() as conn:
        for sql in ROWS:
            conn.execute(text(sql))
    engine.dispose()
    # walk every later revision one step at a time, then open it the way the app does
    for rev in revisions_in_order()[1:]:
        upgrade_to(url, rev)
    with Store(url) as store:
        t, version = store.load_trajectory_versioned("t1")
        assert (t.status, t.prompt, t.tokens, version) == ("finished", "P:", 7, 2)
        assert [s.kind for s in t.segments] == ["think", "code", "output"]
        assert t.segments[2].meta == {"ms": 3, "images": ["AAAA"]}
        assert t.problem.meta == {"level": 1} and t.problem.answer == "42"
        assert t.created_at == "2025-01-01T00:00:01+00:00"
        assert store.list_reviews("t1")[0].decision == "accepted"
        assert store.list_revisions("t1")[0].segments[0].text == "Think. "
        assert store.latest_scores("t1")["math-verify"].correct is True
        st = store.stats()
        assert (st["trajectories"], st["segments"], st["accepted"], st["runs"]) == (1, 3, 1, 1)


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


def test_reopen_is_a_no_op(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.sqlite'}"
    with Store(url) as s:
        s.seed_samples()
    with Store(url) as s:
        assert s.stats()["problems"] == 20


def test_migration_file_is_frozen():
    """Revisions must not import the models: a later model change would rewrite history."""
    for path in (resources.migrations_dir() / "versions").glob("*.py"):
        code = path.read_text()
        assert "from startui" not in code and "import startui" not in code, path


@pytest.mark.postgres
def test_postgres_upgrade_matches_models_and_keeps_json(pg_url):  # noqa: F811
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
