"""The feed's viewer state: indexes for a viewer's recent interactions and served pages, and
how each session and page was personalised.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_user_interactions_user_id_occurred_at",
        "user_interactions",
        ["user_id", "occurred_at"],
    )
    op.create_index("ix_feed_cache_user_id_created_at", "feed_cache", ["user_id", "created_at"])
    for table in ("feed_sessions", "feed_cache"):
        op.add_column(
            table,
            sa.Column(
                "personalization", sa.String(16), nullable=False, server_default=sa.text("'none'")
            ),
        )


def downgrade() -> None:
    for table in ("feed_cache", "feed_sessions"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("personalization")
    op.drop_index("ix_feed_cache_user_id_created_at", table_name="feed_cache")
    op.drop_index("ix_user_interactions_user_id_occurred_at", table_name="user_interactions")
