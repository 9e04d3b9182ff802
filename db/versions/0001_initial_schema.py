"""Initial schema: problems, runs, trajectories, segments, artifacts, scores, reviews, revisions.

Hand-checked autogenerate output. Types are spelled out here (not imported from
startui.models) so this revision stays what it was when later revisions change the models.

Revision ID: 0001
Revises:
Create Date: 2026-11-24 05:44:08.823803
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "problems",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("tests", JSON, nullable=True),
        sa.Column("meta", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_problems")),
        sa.UniqueConstraint("source", "external_id", name=op.f("uq_problems_source_external_id")),
    )
    op.create_index(op.f("ix_problems_kind"), "problems", ["kind"], unique=False)

    op.create_table(
        "runs",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("backend", sa.String(length=100), nullable=True),
        sa.Column("model", sa.String(length=500), nullable=True),
        sa.Column("sampling", JSON, nullable=False),
        sa.Column("hint_policy", JSON, nullable=True),
        sa.Column("settings", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    op.create_index(op.f("ix_runs_name"), "runs", ["name"], unique=False)

    op.create_table(
        "trajectories",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("problem_id", sa.String(length=255), nullable=False),
        sa.Column("run_id", sa.String(length=100), nullable=True),
        sa.Column("parent_id", sa.String(length=64), nullable=True),
        sa.Column("branch_point", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("settings", JSON, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("tool_calls", sa.Integer(), nullable=False),
        sa.Column("hints", sa.Integer(), nullable=False),
        sa.Column("n_segments", sa.Integer(), nullable=False),
        sa.Column("review_status", sa.String(length=16), nullable=False),
        sa.Column("reviewed_at", TIMESTAMP, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["trajectories.id"],
            name=op.f("fk_trajectories_parent_id_trajectories"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["problem_id"], ["problems.id"], name=op.f("fk_trajectories_problem_id_problems")
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_trajectories_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trajectories")),
    )
    op.create_index(
        op.f("ix_trajectories_created_at"), "trajectories", ["created_at"], unique=False
    )
    op.create_index(op.f("ix_trajectories_parent_id"), "trajectories", ["parent_id"], unique=False)
    op.create_index(
        op.f("ix_trajectories_problem_id_status"),
        "trajectories",
        ["problem_id", "status"],
        unique=False,
    )
    op.create_index(
        "ix_trajectories_queue",
        "trajectories",
        ["status", "review_status", "created_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_trajectories_run_queue",
        "trajectories",
        ["run_id", "status", "review_status", "created_at"],
        unique=False,
    )

    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("trajectory_id", sa.String(length=64), nullable=False),
        sa.Column("reviewer", sa.String(length=200), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("trajectory_version", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["trajectory_id"],
            ["trajectories.id"],
            name=op.f("fk_reviews_trajectory_id_trajectories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
    )
    op.create_index(
        op.f("ix_reviews_reviewer_created_at"), "reviews", ["reviewer", "created_at"], unique=False
    )
    op.create_index(
        op.f("ix_reviews_trajectory_id_created_at"),
        "reviews",
        ["trajectory_id", "created_at"],
        unique=False,
    )

    op.create_table(
        "revisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("trajectory_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("editor", sa.String(length=200), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("segments", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["trajectory_id"],
            ["trajectories.id"],
            name=op.f("fk_revisions_trajectory_id_trajectories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_revisions")),
        sa.UniqueConstraint(
            "trajectory_id", "version", name=op.f("uq_revisions_trajectory_id_version")
        ),
    )
    op.create_table(
        "scores",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("trajectory_id", sa.String(length=64), nullable=False),
        sa.Column("scorer", sa.String(length=100), nullable=False),
        sa.Column("correct", sa.Boolean(), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("detail", JSON, nullable=False),
        sa.Column("trajectory_version", sa.Integer(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["trajectory_id"],
            ["trajectories.id"],
            name=op.f("fk_scores_trajectory_id_trajectories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scores")),
    )
    op.create_index(
        op.f("ix_scores_trajectory_id_scorer_created_at"),
        "scores",
        ["trajectory_id", "scorer", "created_at"],
        unique=False,
    )

    op.create_table(
        "segments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("trajectory_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("meta", JSON, nullable=False),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["trajectory_id"],
            ["trajectories.id"],
            name=op.f("fk_segments_trajectory_id_trajectories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segments")),
        sa.UniqueConstraint(
            "trajectory_id", "position", name=op.f("uq_segments_trajectory_id_position")
        ),
    )
    op.create_table(
        "artifacts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=False),
        sa.Column("trajectory_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("mime", sa.String(length=100), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["segments.id"],
            name=op.f("fk_artifacts_segment_id_segments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["trajectory_id"],
            ["trajectories.id"],
            name=op.f("fk_artifacts_trajectory_id_trajectories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_artifacts")),
    )
    op.create_index(op.f("ix_artifacts_segment_id"), "artifacts", ["segment_id"], unique=False)
    op.create_index(
        op.f("ix_artifacts_trajectory_id"), "artifacts", ["trajectory_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_artifacts_trajectory_id"), table_name="artifacts")
    op.drop_index(op.f("ix_artifacts_segment_id"), table_name="artifacts")

    op.drop_table("artifacts")
    op.drop_table("segments")
    op.drop_index(op.f("ix_scores_trajectory_id_scorer_created_at"), table_name="scores")

    op.drop_table("scores")
    op.drop_table("revisions")
    op.drop_index(op.f("ix_reviews_trajectory_id_created_at"), table_name="reviews")
    op.drop_index(op.f("ix_reviews_reviewer_created_at"), table_name="reviews")

    op.drop_table("reviews")
    op.drop_index("ix_trajectories_run_queue", table_name="trajectories")
    op.drop_index("ix_trajectories_queue", table_name="trajectories")
    op.drop_index(op.f("ix_trajectories_problem_id_status"), table_name="trajectories")
    op.drop_index(op.f("ix_trajectories_parent_id"), table_name="trajectories")
    op.drop_index(op.f("ix_trajectories_created_at"), table_name="trajectories")

    op.drop_table("trajectories")
    op.drop_index(op.f("ix_runs_name"), table_name="runs")

    op.drop_table("runs")
    op.drop_index(op.f("ix_problems_kind"), table_name="problems")

    op.drop_table("problems")
