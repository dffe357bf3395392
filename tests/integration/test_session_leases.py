"""`PgSessionLeases` on a real PostgreSQL: a lease lives as long as its holder's connection, so
a dead holder's lease is free at once, and a holder that lost its connection knows it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from adapters.sql.leases import PgSessionLeases
from domain.errors import DependencyUnavailable

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 1, tzinfo=UTC)
TTL = timedelta(seconds=30)
RELAY = "outbox-relay"


@pytest.fixture
def engines(fresh_postgres_url: str) -> Iterator[tuple[sa.Engine, sa.Engine]]:
    # Two engines: two relay processes.
    pair = (sa.create_engine(fresh_postgres_url), sa.create_engine(fresh_postgres_url))
    yield pair
    for engine in pair:
        engine.dispose()


def test_one_holder_at_a_time_and_a_release_frees_it(
    engines: tuple[sa.Engine, sa.Engine],
) -> None:
    a, b = PgSessionLeases(engines[0]), PgSessionLeases(engines[1])
    assert a.acquire(RELAY, "a", NOW, TTL)
    assert a.acquire(RELAY, "a", NOW + TTL * 10, TTL)  # no expiry: held while connected
    assert not b.acquire(RELAY, "b", NOW + TTL * 10, TTL)
    a.release(RELAY, "a")
    assert b.acquire(RELAY, "b", NOW, TTL)
    assert not a.acquire(RELAY, "a", NOW, TTL)


def test_a_holder_whose_connection_dies_loses_the_lease_at_once(
    engines: tuple[sa.Engine, sa.Engine], fresh_postgres_url: str
) -> None:
    a, b = PgSessionLeases(engines[0]), PgSessionLeases(engines[1])
    assert a.acquire(RELAY, "a", NOW, TTL)
    admin = sa.create_engine(fresh_postgres_url, poolclass=NullPool)
    try:
        with admin.connect() as connection:  # what a killed holder's closed socket does
            connection.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks"
                    " WHERE locktype = 'advisory' AND pid <> pg_backend_pid()"
                )
            )
    finally:
        admin.dispose()
    assert b.acquire(RELAY, "b", NOW, TTL)
    with pytest.raises(DependencyUnavailable):
        a.acquire(RELAY, "a", NOW, TTL)  # it learns on its next check, and stops
    assert not a.acquire(RELAY, "a", NOW, TTL)
