"""Review campaigns: a campaign (a queue filter, at most k per problem, an overlap of N reviewers,
the assigned reviewers and an optional adjudicator), its items with their slot counters, the
reviewers' leases and decisions on them; ``reviews.campaign_id`` names the campaign a decision
was made in. Also an index for the review queue's counts under a rule-verdict filter.

Types are spelled out here, not taken from the models module, as in 0001.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 09:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_trajectories_queue_verdict", "trajectories",
                    ["status", "verdict", "review_status"], unique=False)
    op.create_table(
        "review_campaigns",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("filter", JSON, nullable=False),
        sa.Column("per_problem", sa.Integer(), nullable=True),
        sa.Column("overlap", sa.Integer(), nullable=False),
        sa.Column("reviewers", JSON, nullable=False),
        sa.Column("adjudicator", sa.String(length=200), nullable=True),
        sa.Column("lease_seconds", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_campaigns")),
        sa.UniqueConstraint("name", name=op.f("uq_review_campaigns_name")),
    )
    op.create_table(
        "campaign_items",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("trajectory_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("taken", sa.Integer(), nullable=False),
        sa.Column("decided", sa.Integer(), nullable=False),
        sa.Column("is_open", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["review_campaigns.id"], ondelete="CASCADE",
                                name=op.f("fk_campaign_items_campaign_id_review_campaigns")),
        sa.ForeignKeyConstraint(["trajectory_id"], ["trajectories.id"], ondelete="CASCADE",
                                name=op.f("fk_campaign_items_trajectory_id_trajectories")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_items")),
        sa.UniqueConstraint("campaign_id", "trajectory_id",
                            name=op.f("uq_campaign_items_campaign_id_trajectory_id")),
    )
    op.create_index(op.f("ix_campaign_items_campaign_id_is_open_position"), "campaign_items",
                    ["campaign_id", "is_open", "position"], unique=False)
    op.create_index(op.f("ix_campaign_items_trajectory_id"), "campaign_items",
                    ["trajectory_id"], unique=False)
    with op.batch_alter_table("reviews") as b:
        b.add_column(sa.Column("campaign_id", sa.Integer(), nullable=True))
        b.create_foreign_key(op.f("fk_reviews_campaign_id_review_campaigns"), "review_campaigns",
                             ["campaign_id"], ["id"], ondelete="SET NULL")
        b.create_index(op.f("ix_reviews_campaign_id_trajectory_id"),
                       ["campaign_id", "trajectory_id"], unique=False)
    op.create_table(
        "campaign_assignments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("trajectory_id", sa.String(length=64), nullable=False),
        sa.Column("reviewer", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("leased_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("decided_at", TIMESTAMP, nullable=True),
        sa.Column("review_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["review_campaigns.id"], ondelete="CASCADE",
                                name=op.f("fk_campaign_assignments_campaign_id_review_campaigns")),
        sa.ForeignKeyConstraint(["item_id"], ["campaign_items.id"], ondelete="CASCADE",
                                name=op.f("fk_campaign_assignments_item_id_campaign_items")),
        sa.ForeignKeyConstraint(["review_id"], ["reviews.id"], ondelete="SET NULL",
                                name=op.f("fk_campaign_assignments_review_id_reviews")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_assignments")),
        sa.UniqueConstraint("item_id", "reviewer",
                            name=op.f("uq_campaign_assignments_item_id_reviewer")),
    )
    op.create_index(op.f("ix_campaign_assignments_campaign_id_state_expires_at"),
                    "campaign_assignments", ["campaign_id", "state", "expires_at"], unique=False)
    op.create_index(op.f("ix_campaign_assignments_campaign_id_reviewer_state"),
                    "campaign_assignments", ["campaign_id", "reviewer", "state"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_trajectories_queue_verdict", table_name="trajectories")
    op.drop_index(op.f("ix_campaign_assignments_campaign_id_reviewer_state"),
                  table_name="campaign_assignments")
    op.drop_index(op.f("ix_campaign_assignments_campaign_id_state_expires_at"),
                  table_name="campaign_assignments")
    op.drop_table("campaign_assignments")
    with op.batch_alter_table("reviews") as b:
        b.drop_index(op.f("ix_reviews_campaign_id_trajectory_id"))
        b.drop_constraint(op.f("fk_reviews_campaign_id_review_campaigns"), type_="foreignkey")
        b.drop_column("campaign_id")
    op.drop_index(op.f("ix_campaign_items_trajectory_id"), table_name="campaign_items")
    op.drop_index(op.f("ix_campaign_items_campaign_id_is_open_position"),
                  table_name="campaign_items")
    op.drop_table("campaign_items")
    op.drop_table("review_campaigns")
