"""The feed's two prepared statements on PostgreSQL: prepared once per connection, and a
connection the server dropped costs at most one failed call, never a stale pool."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from adapters.sql.engine import make_engine
from adapters.sql.migrations import upgrade_database
from adapters.sql.viewer_history import SqlViewerHistory
from domain.errors import DependencyUnavailable
from tests.integration.sql_support import terminate_other_backends

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


def recent(history: SqlViewerHistory) -> object:
    return history.recent("u1", NOW - timedelta(days=30), NOW - timedelta(hours=6), 10, 10)


def statements(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND query LIKE 'EXECUTE feedrec_recent_state%'"
                )
            ).scalar_one()
        )


def test_a_dropped_connection_costs_at_most_one_call_then_the_pool_renews(
    fresh_postgres_url: str,
) -> None:
    upgrade_database(fresh_postgres_url)
    engine = make_engine(fresh_postgres_url)
    history = SqlViewerHistory(engine)
    try:
        assert recent(history) == ([], [])
        assert recent(history) == ([], [])  # the same connection: prepared once, run again
        assert statements(engine) >= 1
        terminate_other_backends(engine)
        outcomes = []
        for _ in range(3):
            try:
                outcomes.append(recent(history))
            except DependencyUnavailable:
                outcomes.append("unavailable")
        assert outcomes.count("unavailable") <= 1
        assert outcomes[-1] == ([], [])  # re-prepared on the new connection
    finally:
        history.close()
        engine.dispose()


def test_the_statement_is_prepared_at_first_use_so_a_young_schema_is_no_obstacle(
    fresh_postgres_url: str,
) -> None:
    engine = make_engine(fresh_postgres_url)
    history = SqlViewerHistory(engine)
    try:
        with pytest.raises(DependencyUnavailable):
            recent(history)  # no tables yet: the PREPARE itself fails, cleanly
        upgrade_database(fresh_postgres_url)
        assert recent(history) == ([], [])
    finally:
        history.close()
        engine.dispose()
