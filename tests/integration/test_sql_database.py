"""The SQL adapter against real databases: schema, failures, health, bulk loading, query plans,
lease races and the SQLite-specific choices (UTC storage, write locking). The behaviour of
each port itself is pinned by the suites in tests/contract/."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from adapters.sql.activity import SqlActivityReader
from adapters.sql.bulk import bulk_insert_interactions
from adapters.sql.engine import make_engine
from adapters.sql.health import DatabaseHealth
from adapters.sql.leases import SqlLeases
from adapters.sql.migrations import alembic_config, upgrade_database
from adapters.sql.session_recorder import SqlFeedSessionRecorder
from adapters.sql.tables import feed_sessions, leases, metadata
from adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from domain.errors import Conflict, DependencyUnavailable
from domain.feed import Algorithm, FeedPage, FeedSession, ItemSource, ScoredVideo
from domain.interactions import InteractionEvent, InteractionType, StoredInteraction
from tests.contract.test_feed_session_contract import first_page
from tests.integration.sql_support import terminate_other_backends
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
            assert context.get_current_revision() == "0009"
            if connection.dialect.name == "postgresql":
                # 0008: a session's candidates are stored as they are, never compressed.
                storage = connection.exec_driver_sql(
                    "SELECT attstorage FROM pg_attribute"
                    " WHERE attrelid = 'feed_sessions'::regclass AND attname = 'candidates'"
                ).scalar_one()
                assert storage == "e"
    finally:
        engine.dispose()


def test_the_newest_migration_downgrades_and_upgrades_again(database_url: str) -> None:
    upgrade_database(database_url)

    command.downgrade(alembic_config(database_url), "0001")

    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            tables = set(sa.inspect(connection).get_table_names())
        assert {"feed_sessions", "leases"}.isdisjoint(tables)
        assert {"user_interactions", "feed_cache", "outbox"} <= tables

        upgrade_database(database_url)

        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
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
            terminate_other_backends(engine)
            uow.interactions.count()

        # the pool replaces the dead connection: the next unit of work just works
        with new_uow() as uow:
            assert uow.interactions.count() == 0
    finally:
        engine.dispose()


def test_an_idle_pooled_connection_the_server_dropped_is_replaced_unnoticed(
    fresh_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    upgrade_database(fresh_postgres_url)
    engine = make_engine(fresh_postgres_url)
    killer = sa.create_engine(fresh_postgres_url, poolclass=sa.pool.NullPool)
    new_uow = SqlUnitOfWorkFactory(engine)
    try:
        with new_uow() as uow:  # one connection, back in the pool
            uow.interactions.count()
        terminate_other_backends(killer)
        monkeypatch.setattr("adapters.sql.engine.PING_AFTER_IDLE_S", 0.0)  # it is idle now

        with new_uow() as uow:
            assert uow.interactions.count() == 0
    finally:
        killer.dispose()
        engine.dispose()


def test_a_busy_pooled_connection_the_server_dropped_fails_once_then_the_pool_renews(
    fresh_postgres_url: str,
) -> None:
    """Connections used within PING_AFTER_IDLE_S are not pinged: the one request that meets
    the dead connection gets DependencyUnavailable, and the pool drops every older one."""
    upgrade_database(fresh_postgres_url)
    engine = make_engine(fresh_postgres_url)
    killer = sa.create_engine(fresh_postgres_url, poolclass=sa.pool.NullPool)
    new_uow = SqlUnitOfWorkFactory(engine)
    try:
        with new_uow() as first, new_uow() as second:  # two pooled connections
            first.interactions.count()
            second.interactions.count()
        terminate_other_backends(killer)

        with pytest.raises(DependencyUnavailable), new_uow() as uow:
            uow.interactions.count()
        with new_uow() as uow:
            assert uow.interactions.count() == 0
    finally:
        killer.dispose()
        engine.dispose()


def test_only_the_session_recorders_connections_commit_asynchronously(
    fresh_postgres_url: str,
) -> None:
    """Feed sessions may lose their last fraction of a second in a server crash; interactions
    and the outbox (the unit of work's connections) never."""
    engine = make_engine(fresh_postgres_url)
    recorder = SqlFeedSessionRecorder(engine)
    try:
        assert recorder._autocommit is not None
        with recorder._autocommit.connect() as connection:
            assert connection.exec_driver_sql("SHOW synchronous_commit").scalar() == "off"
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
    finally:
        recorder.close()
        engine.dispose()


def test_a_pool_is_stored_by_column_and_a_pool_stored_by_item_still_reads(
    migrated_engine: sa.Engine,
) -> None:
    """Sessions recorded before the pool was stored column by column stay readable: their next
    pages are cut from the same candidates, scores and sources."""
    pool = (
        ScoredVideo("v1", 0.75, ItemSource.MODEL),
        ScoredVideo("ビデオ-2", 0.5, ItemSource.EXPLORATION),
        ScoredVideo("v3", 0.25),
    )
    new = FeedSession("s-new", "viewer-1", Algorithm.LIGHTFM, None, "m1", None, pool, T0)
    SqlFeedSessionRecorder(migrated_engine).record_new(new, first_page(new, 1))
    by_item = [
        {"videoId": "v1", "score": 0.75, "source": "model"},
        {"videoId": "ビデオ-2", "score": 0.5, "source": "exploration"},
        {"videoId": "v3", "score": 0.25},
    ]
    with migrated_engine.begin() as connection:
        stored = connection.execute(
            sa.select(feed_sessions.c.candidates).where(feed_sessions.c.feed_session_id == "s-new")
        ).scalar_one()
        connection.execute(
            sa.insert(feed_sessions),
            {
                "feed_session_id": "s-old",
                "user_id": "viewer-1",
                "algorithm": "lightfm",
                "candidates": by_item,
                "created_at": T0,
                "personalization": "model",
            },
        )
    assert stored == {
        "videoId": ["v1", "ビデオ-2", "v3"],
        "score": [0.75, 0.5, 0.25],
        "source": ["model", "exploration", None],
    }
    with SqlUnitOfWorkFactory(migrated_engine)() as uow:
        for session_id in ("s-new", "s-old"):
            got = uow.feed_sessions.get(session_id)
            assert got is not None and got.candidates == pool


def test_the_session_recorder_reports_an_unreachable_database(unreachable_url: str) -> None:
    engine = make_engine(unreachable_url)
    recorder = SqlFeedSessionRecorder(engine)
    new = FeedSession("s1", "viewer-1", Algorithm.LIGHTFM, None, "v1", None, (), T0)
    page = FeedPage("s1", 1, "viewer-1", Algorithm.LIGHTFM, None, "v1", None, (), T0)
    try:
        with pytest.raises(DependencyUnavailable) as raised:
            recorder.record_new(new, page)
        assert raised.value.component == "database"
    finally:
        recorder.close()
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


def test_activity_is_read_through_the_index_on_occurred_at(migrated_engine: sa.Engine) -> None:
    # a fortnight of history, one interaction every two minutes; trending reads one day of it
    end = T0
    history = (interaction(n, end - timedelta(minutes=2 * n)) for n in range(10_080))
    bulk_insert_interactions(migrated_engine, history)
    sent: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "GROUP BY" in statement:
            sent.append((statement, parameters))  # exactly what the driver was given

    sa.event.listen(migrated_engine, "before_cursor_execute", capture)
    try:
        activity = SqlActivityReader(migrated_engine).activity_between(end - timedelta(days=1), end)
    finally:
        sa.event.remove(migrated_engine, "before_cursor_execute", capture)
    assert sum(a.events for a in activity) == 720

    ((statement, parameters),) = sent
    sqlite = migrated_engine.dialect.name == "sqlite"
    with migrated_engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE")
        explain = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
        plan = connection.exec_driver_sql(explain + statement, parameters).all()
    lines = [str(row[-1]) for row in plan]
    text = "\n".join(lines)
    assert "ix_user_interactions_occurred_at" in text, text
    if sqlite:
        assert any(line.startswith("SEARCH user_interactions USING INDEX") for line in lines), text
    else:
        assert "Seq Scan" not in text, text


def _wait_for_lock_waiters(engine: sa.Engine, expected: int) -> None:
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            if connection.execute(query).scalar_one() >= expected:
                return
        time.sleep(0.02)
    raise AssertionError(f"{expected} sessions never queued for a lock")


@pytest.mark.parametrize("taken_before", [True, False], ids=["expired", "never-taken"])
def test_of_two_postgresql_sessions_racing_for_a_free_lease_exactly_one_wins(
    fresh_postgres_url: str, taken_before: bool
) -> None:
    # A third session holds the contested row back until both racers are queued behind it, so
    # they really meet on the same row: the expired lease's row (both UPDATEs wait for its
    # lock) or a not-yet-committed insert of the name (both INSERTs wait on the primary key).
    upgrade_database(fresh_postgres_url)
    engine = make_engine(fresh_postgres_url)
    try:
        racing = SqlLeases(engine)
        name, now = "nightly-retrain", T0 + timedelta(minutes=5)
        if taken_before:
            assert racing.acquire(name, "crashed-worker", T0, timedelta(seconds=30))
        won: dict[str, bool] = {}

        def take(holder: str) -> None:
            won[holder] = racing.acquire(name, holder, now, timedelta(seconds=30))

        with engine.connect() as blocker:
            if taken_before:
                blocker.execute(sa.select(leases).where(leases.c.name == name).with_for_update())
            else:
                blocker.execute(sa.insert(leases).values(name=name, holder="x", expires_at=T0))
            threads = [threading.Thread(target=take, args=(h,)) for h in ("w-1", "w-2")]
            for thread in threads:
                thread.start()
            _wait_for_lock_waiters(engine, 2)
            blocker.rollback()
        for thread in threads:
            thread.join(10)

        assert sorted(won.values()) == [False, True]
        (winner,) = (holder for holder, ok in won.items() if ok)
        with engine.connect() as connection:
            stored = connection.execute(sa.select(leases.c.holder, leases.c.expires_at)).all()
        assert [tuple(row) for row in stored] == [(winner, now + timedelta(seconds=30))]
    finally:
        engine.dispose()
