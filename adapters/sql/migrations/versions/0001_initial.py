"""Initial schema: user_interactions, feed_cache, outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written by hand; kept equal to adapters/sql/tables.py by tests/integration/test_sql_database.py.
ID = sa.String(128)
SURROGATE_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "user_interactions",
        sa.Column("id", SURROGATE_KEY, primary_key=True, autoincrement=True),
        sa.Column("event_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("video_id", ID, nullable=False),
        sa.Column("interaction_type", sa.String(16), nullable=False),
        sa.Column("watch_time_ms", sa.Integer(), nullable=False),
        sa.Column("occurred_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("received_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("feed_session_id", ID, nullable=True),
        sa.Column("algorithm", sa.String(16), nullable=True),
        sa.Column("experiment_variant_id", ID, nullable=True),
        sa.Column("recommendation_score", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_user_interactions"),
        sa.UniqueConstraint("event_id", name="uq_user_interactions_event_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_user_interactions_occurred_at", "user_interactions", ["occurred_at"])
    op.create_index(
        "ix_user_interactions_video_id_occurred_at",
        "user_interactions",
        ["video_id", "occurred_at"],
    )
    op.create_index(
        "ix_user_interactions_user_id_occurred_at",
        "user_interactions",
        ["user_id", "occurred_at"],
    )

    op.create_table(
        "feed_cache",
        sa.Column("id", SURROGATE_KEY, primary_key=True, autoincrement=True),
        sa.Column("feed_session_id", ID, nullable=False),
        sa.Column("page_number", sa.Integer(), nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("fallback_reason", sa.String(32), nullable=True),
        sa.Column("model_version", ID, nullable=True),
        sa.Column("experiment_variant_id", ID, nullable=True),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_feed_cache"),
        sa.UniqueConstraint(
            "feed_session_id", "page_number", name="uq_feed_cache_feed_session_id_page_number"
        ),
    )

    op.create_table(
        "outbox",
        sa.Column("id", SURROGATE_KEY, primary_key=True, autoincrement=True),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("sent_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["id"],
        postgresql_where=sa.text("sent_at IS NULL"),
        sqlite_where=sa.text("sent_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_pending", table_name="outbox")
    op.drop_table("outbox")
    op.drop_table("feed_cache")
    op.drop_index("ix_user_interactions_user_id_occurred_at", table_name="user_interactions")
    op.drop_index("ix_user_interactions_video_id_occurred_at", table_name="user_interactions")
    op.drop_index("ix_user_interactions_occurred_at", table_name="user_interactions")
    op.drop_table("user_interactions")
