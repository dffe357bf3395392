"""A feed session's candidates are stored out of line without compression.

A pool of 100 candidates is about 7 KB of JSON, over PostgreSQL's 2 KB TOAST threshold, so by
default (`EXTENDED`) every new feed session ran pglz over it. Video ids and scores barely
compress, and the attempt cost the server 0.23 against 0.12 ms per recorded first page
(`EXTERNAL`: moved out of line as it is). Sessions live for hours; the disk is cheaper than the
CPU on the feed's hottest write. No effect on SQLite or on rows already written.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE feed_sessions ALTER COLUMN candidates SET STORAGE EXTERNAL")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE feed_sessions ALTER COLUMN candidates SET STORAGE EXTENDED")
