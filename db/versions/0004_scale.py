"""Hint-RFT at scale: the tasks of a batch run, claimed by workers (many processes, many
machines, one PostgreSQL store), and a digest per trajectory (what selection and the Dataset
tab need, computed once from the segments instead of on every read).

``run_tasks``: one row per task of a batch run ``(problem, mode, sample)``, keyed by the task's
deterministic trajectory id. A worker claims a few at a time (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL) by writing its name and a lease; a claim whose lease ran out is free again.

``trajectory_digests``: the text-derived facts of a trajectory at one ``version`` and segment
count (``n_segments``); ``schema`` says which digest format ``data`` holds, so a newer startui
recomputes old ones.

Types are spelled out here, not taken from the models module, as in 0001.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "run_tasks",
        sa.Column("trajectory_id", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=100), nullable=False),
        sa.Column("problem_id", sa.String(length=255), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("sample", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("lease_until", TIMESTAMP, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE",
                                name=op.f("fk_run_tasks_run_id_runs")),
        sa.ForeignKeyConstraint(["problem_id"], ["problems.id"],
                                name=op.f("fk_run_tasks_problem_id_problems")),
        sa.PrimaryKeyConstraint("trajectory_id", name=op.f("pk_run_tasks")),
    )
    op.create_index(op.f("ix_run_tasks_run_id_state_position"), "run_tasks",
                    ["run_id", "state", "position"], unique=False)
    op.create_table(
        "trajectory_digests",
        sa.Column("trajectory_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("n_segments", sa.Integer(), nullable=False),
        sa.Column("schema", sa.Integer(), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.ForeignKeyConstraint(["trajectory_id"], ["trajectories.id"], ondelete="CASCADE",
                                name=op.f("fk_trajectory_digests_trajectory_id_trajectories")),
        sa.PrimaryKeyConstraint("trajectory_id", name=op.f("pk_trajectory_digests")),
    )


def downgrade() -> None:
    op.drop_table("trajectory_digests")
    op.drop_index(op.f("ix_run_tasks_run_id_state_position"), table_name="run_tasks")
    op.drop_table("run_tasks")
