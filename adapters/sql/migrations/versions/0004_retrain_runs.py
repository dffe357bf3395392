"""The nightly retrain's embedded run log: one row per run.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written by hand; kept equal to adapters/sql/tables.py by tests/integration/test_sql_database.py.
ID = sa.String(128)
UTC_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "retrain_runs",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("started_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("finished_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("failed_stage", sa.String(16), nullable=True),
        sa.Column("rows_exported", sa.BigInteger(), nullable=False),
        sa.Column("rows_trained", sa.BigInteger(), nullable=False),
        sa.Column("model_version", ID, nullable=True),
        sa.Column("serving_version", ID, nullable=True),
        sa.Column("candidate_metrics", sa.JSON(), nullable=True),
        sa.Column("serving_metrics", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("recorded_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("run_id", name="pk_retrain_runs"),
    )
    op.create_index("ix_retrain_runs_started_at", "retrain_runs", ["started_at"])
    op.create_index("ix_retrain_runs_status", "retrain_runs", ["status"])


def downgrade() -> None:
    op.drop_index("ix_retrain_runs_status", table_name="retrain_runs")
    op.drop_index("ix_retrain_runs_started_at", table_name="retrain_runs")
    op.drop_table("retrain_runs")
