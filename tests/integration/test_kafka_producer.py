"""The Kafka adapters against a real broker: the records `KafkaEventBus` writes, what it does
while the broker is down, topic provisioning and the health probe."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from adapters.kafka.admin import ensure_topic
from adapters.kafka.health import KafkaHealth
from adapters.kafka.producer import SCHEMA_VERSION, KafkaEventBus
from domain.errors import DependencyUnavailable
from domain.interactions import InteractionEvent, InteractionType, published_form
from domain.outbox import OutboxMessage, PendingMessage
from tests.servers import KafkaBroker, consume_all, free_port, unique_topic

pytestmark = pytest.mark.integration

SCHEMA = json.loads(
    (
        Path(__file__).resolve().parents[2] / "contracts" / "feed.interactions.v1.schema.json"
    ).read_text()
)
VALIDATOR = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)


def pending(topic: str, user: str, number: int, message_id: int) -> PendingMessage:
    event = InteractionEvent(
        event_id=f"{user}-{number}",
        user_id=user,
        video_id=f"v{number}",
        interaction_type=InteractionType.LIKE,
        watch_time_ms=1_000 * number,
        occurred_at=datetime(2026, 11, 24, 10, 0, number % 60, tzinfo=UTC),
        feed_session_id="s-1",
        algorithm="lightfm",
    )
    return PendingMessage(
        message_id, OutboxMessage(topic, user, published_form(event), datetime.now(UTC)), 0
    )


@pytest.fixture
def bus(kafka_broker: KafkaBroker) -> Iterator[KafkaEventBus]:
    adapter = KafkaEventBus(kafka_broker.bootstrap, linger_ms=2, connect_timeout_s=1.0)
    yield adapter
    adapter.close()


def test_records_carry_the_user_as_key_a_schema_valid_value_and_the_headers(
    bus: KafkaEventBus, kafka_broker: KafkaBroker, kafka_topic: str
) -> None:
    messages = [
        pending(kafka_topic, f"ü{n % 3}", n, message_id=n + 1) for n in range(30)
    ]  # non-ASCII keys

    outcome = bus.publish(messages, timeout_s=10.0)

    assert sorted(outcome.acknowledged) == [m.id for m in messages] and outcome.failed == ()
    records = consume_all(kafka_broker.bootstrap, kafka_topic, expected=len(messages))
    by_key: dict[str, list[str]] = {}
    for record in records:
        assert record.key is not None and record.value is not None
        value: dict[str, Any] = json.loads(record.value.decode("utf-8"))
        assert list(VALIDATOR.iter_errors(value)) == []
        assert record.key.decode("utf-8") == value["userId"]
        assert b" " not in record.value  # compact JSON
        assert dict(record.headers) == {
            "content-type": b"application/json",
            "schema-version": SCHEMA_VERSION.encode(),
        }
        by_key.setdefault(value["userId"], []).append(value["eventId"])
    for user, event_ids in by_key.items():  # one partition per key, in the order sent
        assert event_ids == [
            m.message.payload["eventId"] for m in messages if m.message.key == user
        ]


def test_a_broker_that_is_down_fails_the_publish_in_time_and_the_next_one_recovers(
    kafka_broker: KafkaBroker, kafka_topic: str
) -> None:
    bus = KafkaEventBus(kafka_broker.bootstrap, linger_ms=2, connect_timeout_s=1.0)
    try:
        assert bus.publish([pending(kafka_topic, "u1", 0, 1)], 10.0).acknowledged == (1,)
        kafka_broker.stop()
        try:
            started = time.monotonic()
            outcome = bus.publish([pending(kafka_topic, "u1", n, n + 1) for n in (1, 2)], 2.0)
            elapsed = time.monotonic() - started
            assert outcome.acknowledged == () and sorted(outcome.failed) == [2, 3]
            assert elapsed < 4.0
            # a fresh producer cannot even bootstrap: still an outcome, not an exception
            assert bus.publish([pending(kafka_topic, "u1", 3, 4)], 2.0).failed == (4,)
        finally:
            kafka_broker.start()
        outcome = bus.publish([pending(kafka_topic, "u1", n, n + 1) for n in (1, 2, 3)], 15.0)
        assert sorted(outcome.acknowledged) == [2, 3, 4]
    finally:
        bus.close()
    first_copies = list(
        dict.fromkeys(
            json.loads(r.value or b"{}")["eventId"]
            for r in consume_all(kafka_broker.bootstrap, kafka_topic)
        )
    )
    assert first_copies == ["u1-0", "u1-1", "u1-2", "u1-3"]


def test_nothing_listening_is_a_failed_outcome_never_an_exception() -> None:
    bus = KafkaEventBus(f"127.0.0.1:{free_port()}", connect_timeout_s=0.3)
    try:
        outcome = bus.publish([pending("t", "u1", 0, 7)], 1.0)
    finally:
        bus.close()
    assert outcome.acknowledged == () and outcome.failed == (7,)


def test_ensure_topic_creates_a_missing_topic_once(kafka_broker: KafkaBroker) -> None:
    topic = unique_topic("provisioned")
    created = ensure_topic(kafka_broker.bootstrap, topic, partitions=4, replication_factor=1)
    again = ensure_topic(kafka_broker.bootstrap, topic, partitions=6, replication_factor=1)
    assert (created.created, created.partitions) == (True, 4)
    assert (again.created, again.partitions) == (False, 4)  # never repartitioned


def test_ensure_topic_without_a_broker_is_dependency_unavailable() -> None:
    with pytest.raises(DependencyUnavailable) as raised:
        ensure_topic(f"127.0.0.1:{free_port()}", "t", 1, 1, timeout_s=0.5)
    assert raised.value.component == "kafka"


def test_the_health_probe_tells_a_broker_from_a_closed_port(kafka_broker: KafkaBroker) -> None:
    up = KafkaHealth(kafka_broker.bootstrap).check()
    down = KafkaHealth(f"127.0.0.1:{free_port()}").check()
    assert up.ok, up.detail
    assert not down.ok and "ConnectionRefused" in down.detail
    assert KafkaHealth.critical is False and KafkaHealth.name == "kafka"
