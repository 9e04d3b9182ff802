"""Review: users, step labels, team settings; review labels, undo and re-run checks; the queue's
filter columns on trajectories (rule verdict, human hints, ends in an error, length, shuffle key),
backfilled from the data already stored.

Types are spelled out here, not taken from the models module, as in 0001.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 08:40:00
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 1000


def upgrade() -> None:
    with op.batch_alter_table("trajectories") as b:
        b.add_column(sa.Column("verdict", sa.String(length=8), nullable=True))
        b.add_column(sa.Column("human_hints", sa.Integer(), nullable=False,
                               server_default="0"))
        b.add_column(sa.Column("ends_in_error", sa.Boolean(), nullable=False,
                               server_default=sa.false()))
        b.add_column(sa.Column("length", sa.Integer(), nullable=False, server_default="0"))
        b.add_column(sa.Column("shuffle", sa.Integer(), nullable=False, server_default="0"))
        b.create_index("ix_trajectories_queue_length",
                       ["status", "review_status", "length", "id"], unique=False)
    with op.batch_alter_table("reviews") as b:
        b.add_column(sa.Column("labels", JSON, nullable=False, server_default="[]"))
        b.add_column(sa.Column("detail", JSON, nullable=False, server_default="{}"))
        b.add_column(sa.Column("undone_at", TIMESTAMP, nullable=True))
    with op.batch_alter_table("revisions") as b:
        b.add_column(sa.Column("checks", JSON, nullable=True))

    op.create_table(
        "step_labels",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("trajectory_id", sa.String(length=64), nullable=False),
        sa.Column("trajectory_version", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("label", sa.Integer(), nullable=False),
        sa.Column("reviewer", sa.String(length=200), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["trajectory_id"], ["trajectories.id"], ondelete="CASCADE",
                                name=op.f("fk_step_labels_trajectory_id_trajectories")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_step_labels")),
        sa.UniqueConstraint("trajectory_id", "trajectory_version", "reviewer", "position",
                            name=op.f("uq_step_labels_trajectory_id_trajectory_version_"
                                      "reviewer_position")),
    )
    op.create_index(op.f("ix_step_labels_trajectory_id_trajectory_version"), "step_labels",
                    ["trajectory_id", "trajectory_version"], unique=False)
    op.create_table(
        "users",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=300), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_users")),
    )
    op.create_table(
        "app_settings",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("value", JSON, nullable=True),
        sa.Column("updated_by", sa.String(length=200), nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_app_settings")),
    )
    _backfill()


def _backfill() -> None:
    """The new trajectory columns, from what is stored: the same values derived() computes."""
    conn = op.get_bind()
    t = sa.table("trajectories", sa.column("id"), sa.column("version"), sa.column("verdict"),
                 sa.column("human_hints"), sa.column("ends_in_error"), sa.column("length"),
                 sa.column("shuffle"))
    seg = sa.table("segments", sa.column("trajectory_id"), sa.column("position"),
                   sa.column("kind"), sa.column("source"), sa.column("text"), sa.column("meta",
                                                                                       JSON))
    sc = sa.table("scores", sa.column("id"), sa.column("trajectory_id"), sa.column("scorer"),
                  sa.column("correct"), sa.column("trajectory_version"), sa.column("created_at"))
    versions = dict(conn.execute(sa.select(t.c.id, t.c.version)).all())
    if not versions:
        return
    values: dict[str, dict] = {
        tid: {"human_hints": 0, "ends_in_error": False, "length": 0, "verdict": None,
              "shuffle": int(hashlib.sha1(tid.encode()).hexdigest()[:8], 16) & 0x7FFFFFFF}
        for tid in versions}
    last_output: dict[str, bool] = {}
    for r in conn.execute(sa.select(seg.c.trajectory_id, seg.c.kind, seg.c.source, seg.c.text,
                                    seg.c.meta).order_by(seg.c.trajectory_id, seg.c.position)):
        v = values.get(r.trajectory_id)
        if v is None:
            continue
        v["length"] += len(r.text or "")
        if r.kind == "hint" and r.source == "human":
            v["human_hints"] += 1
        meta = r.meta or {}
        if r.kind == "output" and r.source == "kernel" and meta.get("error") != "ToolCallLimit":
            last_output[r.trajectory_id] = bool(meta.get("error"))
    for tid, err in last_output.items():
        values[tid]["ends_in_error"] = err
    for r in conn.execute(sa.select(sc.c.trajectory_id, sc.c.correct, sc.c.trajectory_version)
                          .where(sc.c.scorer == "rule").order_by(sc.c.created_at, sc.c.id)):
        if r.trajectory_id in values:  # the newest score wins; one for an older version is stale
            current = r.trajectory_version in (None, versions[r.trajectory_id])
            values[r.trajectory_id]["verdict"] = (
                None if not current or r.correct is None else "correct" if r.correct else "wrong")
    stmt = (sa.update(t).where(t.c.id == sa.bindparam("tid"))
            .values(verdict=sa.bindparam("v_verdict"), human_hints=sa.bindparam("v_hh"),
                    ends_in_error=sa.bindparam("v_err"), length=sa.bindparam("v_len"),
                    shuffle=sa.bindparam("v_shuffle")))
    rows = [{"tid": tid, "v_verdict": v["verdict"], "v_hh": v["human_hints"],
             "v_err": v["ends_in_error"], "v_len": v["length"], "v_shuffle": v["shuffle"]}
            for tid, v in values.items()]
    for i in range(0, len(rows), _BATCH):
        conn.execute(stmt, rows[i:i + _BATCH])


def downgrade() -> None:
    op.drop_table("app_settings")
    op.drop_table("users")
    op.drop_index(op.f("ix_step_labels_trajectory_id_trajectory_version"),
                  table_name="step_labels")
    op.drop_table("step_labels")
    with op.batch_alter_table("revisions") as b:
        b.drop_column("checks")
    with op.batch_alter_table("reviews") as b:
        b.drop_column("undone_at")
        b.drop_column("detail")
        b.drop_column("labels")
    with op.batch_alter_table("trajectories") as b:
        b.drop_index("ix_trajectories_queue_length")
        for col in ("shuffle", "length", "ends_in_error", "human_hints", "verdict"):
            b.drop_column(col)
