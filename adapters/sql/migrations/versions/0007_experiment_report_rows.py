"""The nightly experiment readout's rows, in the service's database when no Snowflake account
is configured.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written by hand; kept equal to adapters/sql/tables.py by tests/integration/test_sql_database.py.
ID = sa.String(128)


def upgrade() -> None:
    op.create_table(
        "experiment_report_rows",
        sa.Column("report_date", sa.Date(), nullable=False),
        sa.Column("experiment", ID, nullable=False),
        sa.Column("variant", ID, nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        *(
            sa.Column(name, sa.Double(), nullable=True)
            for name in ("value", "low", "high", "lift", "lift_low", "lift_high")
        ),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "report_date", "experiment", "variant", "metric", name="pk_experiment_report_rows"
        ),
    )


def downgrade() -> None:
    op.drop_table("experiment_report_rows")
