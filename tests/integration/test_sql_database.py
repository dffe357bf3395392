"""The SQL adapter against real databases: schema, failures, health, bulk loading and the
SQLite-specific choices (UTC storage, write locking). The repository behaviour itself is
pinned by tests/contract/test_repository_contract.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from adapters.sql.bulk import bulk_insert_interactions
from adapters.sql.engine import make_engine
from adapters.sql.health import DatabaseHealth
from adapters.sql.migrations import upgrade_database
from adapters.sql.tables import metadata
from adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from domain.errors import Conflict, DependencyUnavailable
from domain.interactions import InteractionEvent, InteractionType, StoredInteraction
from tests.servers import free_port

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 24, 6, 55, 0, 123_456, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'feedrec.db'}"
    url: str = request.getfixturevalue("fresh_postgres_url")
    return url


@pytest.fixture
def migrated_engine(database_url: str) -> Iterator[sa.Engine]:
    upgrade_database(database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[sa.Engine]:
    url = f"sqlite:///{tmp_path / 'feedrec.db'}"
    upgrade_database(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def unreachable_url() -> str:
    """PostgreSQL on a loopback port nothing listens on: connections are refused at once."""
    return f"postgresql+psycopg2://feedrec:secret@127.0.0.1:{free_port()}/feedrec"


def interaction(n: int, occurred_at: datetime = T0) -> StoredInteraction:
    event = InteractionEvent(
        event_id=f"e{n}",
        user_id=f"viewer-{n % 100}",
        video_id=f"video-{n % 1000}",
        interaction_type=InteractionType.VIEW,
        watch_time_ms=n % 60_000,
        occurred_at=occurred_at,
    )
    return StoredInteraction(event, T0, None)


def test_migrations_create_exactly_the_declared_schema(database_url: str) -> None:
    upgrade_database(database_url)
    upgrade_database(database_url)  # at head already: nothing to do, nothing breaks

    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
            assert context.get_current_revision() == "0001"
    finally:
        engine.dispose()


def test_an_unreachable_database_is_dependency_unavailable(unreachable_url: str) -> None:
    engine = make_engine(unreachable_url)
    try:
        with pytest.raises(DependencyUnavailable) as raised, SqlUnitOfWorkFactory(engine)():
            pass
        assert raised.value.component == "database"
        assert isinstance(raised.value.__cause__, sa.exc.OperationalError)

        health = DatabaseHealth(engine).check()
        assert (health.ok, DatabaseHealth.name, DatabaseHealth.critical) == (
            False,
            "database",
            True,
        )
        assert "refused" in health.detail
        assert "secret" not in health.detail
    finally:
        engine.dispose()

    with pytest.raises(DependencyUnavailable):
        upgrade_database(unreachable_url)


def test_a_connection_lost_inside_a_unit_of_work_is_dependency_unavailable(
    fresh_postgres_url: str,
) -> None:
    upgrade_database(fresh_postgres_url)
    engine = make_engine(fresh_postgres_url)
    new_uow = SqlUnitOfWorkFactory(engine)
    try:
        with pytest.raises(DependencyUnavailable), new_uow() as uow:
            uow.interactions.add([interaction(1)])
            with engine.connect() as killer:
                killer.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )
                killer.commit()
            uow.interactions.count()

        # the pool replaces the dead connection: the next unit of work just works
        with new_uow() as uow:
            assert uow.interactions.count() == 0
    finally:
        engine.dispose()


def test_database_health_is_ok_on_a_live_database(migrated_engine: sa.Engine) -> None:
    assert DatabaseHealth(migrated_engine).check().ok


def test_the_health_check_does_not_queue_behind_a_sqlite_writer(
    sqlite_engine: sa.Engine,
) -> None:
    with SqlUnitOfWorkFactory(sqlite_engine)() as uow:  # holds the write lock
        uow.interactions.add([interaction(1)])
        started = time.monotonic()
        assert DatabaseHealth(sqlite_engine).check().ok
        assert time.monotonic() - started < 1.0


def test_concurrent_sqlite_writers_wait_for_each_other_instead_of_failing(
    sqlite_engine: sa.Engine,
) -> None:
    new_uow = SqlUnitOfWorkFactory(sqlite_engine)
    failures: list[BaseException] = []
    first_has_read = threading.Event()

    def ingest(n: int, pause_s: float) -> None:
        try:
            with new_uow() as uow:
                uow.interactions.get_by_event_ids([f"e{n}"])  # read, then write: ingestion
                first_has_read.set()
                time.sleep(pause_s)
                uow.interactions.add([interaction(n)])
                uow.commit()
        except BaseException as err:
            failures.append(err)

    slow = threading.Thread(target=ingest, args=(1, 0.3))
    slow.start()
    first_has_read.wait(5)
    ingest(2, 0.0)
    slow.join(10)

    assert failures == []
    with new_uow() as uow:
        assert uow.interactions.count() == 2


def test_sqlite_keeps_timestamps_as_utc_text_that_sorts_in_time_order(
    sqlite_engine: sa.Engine,
) -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    with SqlUnitOfWorkFactory(sqlite_engine)() as uow:
        uow.interactions.add(
            [
                interaction(1, datetime(2026, 11, 24, 12, 25, 0, 5, tzinfo=india)),
                interaction(2, datetime(2026, 11, 24, 6, 56, tzinfo=UTC)),
            ]
        )
        uow.commit()

    with sqlite_engine.connect() as connection:
        raw = connection.exec_driver_sql(
            "SELECT occurred_at FROM user_interactions ORDER BY occurred_at"
        ).all()
    assert [row[0] for row in raw] == ["2026-11-24 06:55:00.000005", "2026-11-24 06:56:00.000000"]


def test_a_naive_datetime_is_refused_as_a_programming_error(sqlite_engine: sa.Engine) -> None:
    naive = interaction(1, datetime(2026, 11, 24, 6, 55))  # naive on purpose

    with pytest.raises(ValueError, match="naive"), SqlUnitOfWorkFactory(sqlite_engine)() as uow:
        uow.interactions.add([naive])


def test_bulk_insert_loads_rows_the_repository_reads_back(migrated_engine: sa.Engine) -> None:
    rows = [interaction(n, T0 - timedelta(microseconds=n)) for n in range(25_000)]

    inserted = bulk_insert_interactions(migrated_engine, iter(rows), batch_size=10_000)

    assert inserted == 25_000
    with SqlUnitOfWorkFactory(migrated_engine)() as uow:
        assert uow.interactions.count() == 25_000
        assert uow.interactions.get_by_event_ids(["e24999"]) == {"e24999": rows[24_999]}


def test_bulk_insert_with_a_repeated_event_id_inserts_nothing(migrated_engine: sa.Engine) -> None:
    rows = [interaction(1), interaction(2), interaction(1)]

    with pytest.raises(Conflict):
        bulk_insert_interactions(migrated_engine, rows, batch_size=2)

    with SqlUnitOfWorkFactory(migrated_engine)() as uow:
        assert uow.interactions.count() == 0
