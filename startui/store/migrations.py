"""Schema migrations: Alembic revisions live in ``db/versions`` (package data when installed);
this runs them from the app.

The app upgrades on open (``Store``), so a user never runs Alembic by hand; ``db/alembic.ini`` is
there for developers (``alembic -c db/alembic.ini revision --autogenerate -m ...``).
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect

from startui import resources
from startui.store.repository import StoreError

# Any constant; serializes concurrent upgrades of one PostgreSQL database (two app replicas).
_PG_LOCK = 0x57A27


def config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.migrations_dir()))
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def script() -> ScriptDirectory:
    return ScriptDirectory.from_config(config())


def current(conn: Connection) -> set[str]:
    return set(MigrationContext.configure(conn).get_current_heads())


def upgrade(engine: Engine, revision: str = "head", *, shown: str = "the database") -> None:
    """Upgrade to ``revision`` in one transaction (all of it or none of it, where the database
    has transactional DDL, as SQLite and PostgreSQL do)."""
    scripts = script()
    heads = set(scripts.get_heads())
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK})")
        have = current(conn)
        unknown = [r for r in have if not _known(scripts, r)]
        if unknown:
            raise StoreError(
                f"{shown} is at schema revision {', '.join(unknown)}, which this version of "
                "startui does not know: it was written by a newer startui. Upgrade startui, or "
                "point STARTUI_DB_URL / --db at another database.")
        if revision == "head" and have == heads:
            return
        if not have and inspect(conn).has_table("trajectories"):
            raise StoreError(
                f"{shown} has startui tables but no alembic_version table, so its schema "
                "revision is unknown. If it matches the current models, record that with "
                "`alembic -c db/alembic.ini -x url=URL stamp head`; otherwise use a new database.")
        command.upgrade(config(conn), revision)


def _known(scripts: ScriptDirectory, rev: str) -> bool:
    try:
        return scripts.get_revision(rev) is not None
    except Exception:  # noqa: BLE001 - alembic raises several kinds for unknown ids
        return False
