"""Helpers of the PostgreSQL integration tests."""

from __future__ import annotations

import sqlalchemy as sa


def terminate_other_backends(engine: sa.Engine) -> None:
    """End every other connection to the engine's database, as a PostgreSQL restart does to
    the pooled ones (the next use of each finds it broken)."""
    with engine.connect() as killer:
        killer.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        killer.commit()
