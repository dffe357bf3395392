"""`adapters.sql.json_rows`: PostgreSQL bulk inserts from one JSON parameter, on a real
PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from adapters.sql.engine import make_engine
from adapters.sql.errors import database_errors
from adapters.sql.json_rows import insert_json_rows
from adapters.sql.migrations import upgrade_database
from adapters.sql.tables import outbox, user_interactions

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 24, 6, 55, 0, 123_456, tzinfo=UTC)


@pytest.fixture
def engine(fresh_postgres_url: str) -> Iterator[sa.Engine]:
    upgrade_database(fresh_postgres_url)
    engine = make_engine(fresh_postgres_url)
    yield engine
    engine.dispose()


def message(n: int, created_at: datetime = T0) -> dict[str, object]:
    return {
        "topic": "feed.interactions.v1",
        "key": f"viewer-{n % 7}",
        "payload": {"eventId": f"e{n}", "z": 1, "a": [1.5, None, "é🎬"]},
        "created_at": created_at,
        "attempts": 0,
    }


def test_rows_are_inserted_in_the_order_given_and_round_trip(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        insert_json_rows(connection, outbox, [message(n) for n in range(1_200)])

    with engine.connect() as connection:
        rows = connection.execute(sa.select(outbox).order_by(outbox.c.id)).mappings().all()
    assert [row["payload"]["eventId"] for row in rows] == [f"e{n}" for n in range(1_200)]
    assert list(rows[0]["payload"]) == ["eventId", "z", "a"]  # key order kept (json, not jsonb)
    assert rows[0]["payload"]["a"] == [1.5, None, "é🎬"]
    assert rows[0]["created_at"] == T0


def test_an_offset_is_kept_as_the_same_instant(engine: sa.Engine) -> None:
    india = datetime(2026, 11, 24, 12, 25, 0, 123_456, tzinfo=timezone(timedelta(hours=5.5)))
    with engine.begin() as connection:
        insert_json_rows(connection, outbox, [message(1, created_at=india)])

    with engine.connect() as connection:
        stored = connection.execute(sa.select(outbox.c.created_at)).scalar_one()
    assert stored == T0


def test_conflicts_are_skipped_and_only_inserted_values_returned(engine: sa.Engine) -> None:
    def row(event_id: str, watch_time_ms: int) -> dict[str, object]:
        return {
            "event_id": event_id,
            "user_id": "u1",
            "video_id": "v1",
            "interaction_type": "view",
            "watch_time_ms": watch_time_ms,
            "occurred_at": T0,
            "received_at": T0,
        }

    def insert(*rows: dict[str, object]) -> list[object]:
        with engine.begin() as connection:
            return insert_json_rows(
                connection,
                user_interactions,
                rows,
                skip_conflicts_on="event_id",
                returning="event_id",
            )

    assert insert(row("e1", 1), row("e2", 2), row("e2", 3)) == ["e1", "e2"]
    assert insert(row("e2", 4), row("e3", 5)) == ["e3"]
    with engine.connect() as connection:
        stored = connection.execute(
            sa.select(user_interactions.c.event_id, user_interactions.c.watch_time_ms).order_by(
                user_interactions.c.id
            )
        ).all()
    assert [tuple(r) for r in stored] == [("e1", 1), ("e2", 2), ("e3", 5)]


def test_a_naive_datetime_is_refused_before_anything_is_sent(engine: sa.Engine) -> None:
    naive = message(1, created_at=datetime(2026, 11, 24, 6, 55))
    with pytest.raises(ValueError, match="naive"), database_errors(), engine.begin() as c:
        insert_json_rows(c, outbox, [naive])
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(outbox)).scalar() == 0


def test_nothing_to_insert_sends_nothing(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        assert insert_json_rows(connection, outbox, []) == []
