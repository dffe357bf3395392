"""Feed sessions (what a session's first page decided) and leases (named expiring locks).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written by hand; kept equal to adapters/sql/tables.py by tests/integration/test_sql_database.py.
# Only whole tables and indexes are created or dropped, so SQLite needs no batch mode here.
ID = sa.String(128)
UTC_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "feed_sessions",
        sa.Column("feed_session_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("fallback_reason", sa.String(32), nullable=True),
        sa.Column("model_version", ID, nullable=True),
        sa.Column("experiment_variant_id", ID, nullable=True),
        sa.Column("candidates", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("feed_session_id", name="pk_feed_sessions"),
    )
    op.create_index("ix_feed_sessions_created_at", "feed_sessions", ["created_at"])

    op.create_table(
        "leases",
        sa.Column("name", ID, nullable=False),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("expires_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_leases"),
    )


def downgrade() -> None:
    op.drop_table("leases")
    op.drop_index("ix_feed_sessions_created_at", table_name="feed_sessions")
    op.drop_table("feed_sessions")
