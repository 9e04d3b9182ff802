"""Alembic environment for the trajectory store.

``startui.store.Store`` passes an open connection in ``config.attributes["connection"]`` (so the
upgrade runs in the same transaction, under the same locks, as the app). Run by hand, the URL comes
from ``-x url=...``, else ``STARTUI_DB_URL``, else the app's default database.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from startui.store.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return

    from startui.store import default_url, normalize_url

    url = context.get_x_argument(as_dictionary=True).get("url") or default_url()
    engine = create_engine(normalize_url(url), poolclass=pool.NullPool)
    with engine.connect() as conn:
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; connect to a database")
run_migrations_online()
