"""A backlog drains at five times the arrival rate or more (issue #18: after a 60 s broker outage
at 300 events/s, a backlog of 18,000): the relay as built for the `relay` process, real
PostgreSQL, a real broker, a backlog planted in the outbox."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from adapters.null_observability import NullMetrics
from adapters.sql.migrations import upgrade_database
from adapters.sql.tables import outbox
from app.composition.relay import RelayOverrides, build_relay
from app.settings import Settings
from tests.servers import KafkaBroker, PostgresServer, consume_all

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ARRIVAL_PER_S = 300
BACKLOG = 12_000


def test_a_backlog_drains_at_five_times_the_arrival_rate(
    postgres_server: PostgresServer, kafka_broker: KafkaBroker, kafka_topic: str
) -> None:
    with postgres_server.fresh_database("drain") as url:
        upgrade_database(url)
        engine = sa.create_engine(url)
        now = datetime.now(UTC)
        with engine.begin() as connection:  # about the size of a real event's payload
            connection.execute(
                sa.insert(outbox),
                [
                    {
                        "topic": kafka_topic,
                        "key": f"u{i % 300}",
                        "payload": {"eventId": f"e{i}", "userId": f"u{i % 300}", "pad": "x" * 200},
                        "created_at": now,
                    }
                    for i in range(BACKLOG)
                ],
            )
        engine.dispose()
        settings = Settings(database_url=url, kafka_bootstrap_servers=kafka_broker.bootstrap)
        composition = build_relay(settings, RelayOverrides(metrics=NullMetrics()))
        relay = composition.relay
        assert relay is not None
        try:
            relay.relay_once()  # the producer's connection is made once, not per drain
            started, sent = time.perf_counter(), 0
            while (result := relay.relay_once()).read:
                sent += result.sent
            rate = sent / (time.perf_counter() - started)
        finally:
            composition.close()

        assert rate >= 5 * ARRIVAL_PER_S, f"{rate:.0f} events/s"
        records = consume_all(kafka_broker.bootstrap, kafka_topic, expected=BACKLOG, timeout=60)
        assert len({record.value for record in records}) == BACKLOG
