"""Drop the two `user_interactions` indexes no query uses: `(video_id, occurred_at)` and
`(user_id, occurred_at)`. Every accepted event paid for them (two more B-tree inserts and
their WAL); trending reads by `occurred_at` alone, the export and the retrain by `id`.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_user_interactions_user_id_occurred_at", table_name="user_interactions")
    op.drop_index("ix_user_interactions_video_id_occurred_at", table_name="user_interactions")


def downgrade() -> None:
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
