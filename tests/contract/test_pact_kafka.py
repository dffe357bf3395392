"""Pact of the Kafka topic `feed.interactions.v1`: what a downstream consumer of interaction
events (consumer `feed-interactions-consumer`) relies on from the producer (provider
`feed-events`: the web service's outbox relay, `adapters.kafka.producer.KafkaEventBus`).

An asynchronous message: the body is the record value, the metadata carries `kafka_topic`,
`key` (the record key) and the record headers (`content-type`, `schema-version`). The example
body is also checked against contracts/feed.interactions.v1.schema.json.

Provider side: the event goes the real way (`domain.interactions.published_form`, an outbox
message, `KafkaEventBus.publish`) to the real test broker; the record read back (value, key,
headers) is what the verifier matches. The record lands on a fresh test topic; `kafka_topic`
reports the topic the service is configured with (`Settings.kafka_topic`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pact import Pact, Verifier, match
from pact.types import Message

from adapters.kafka.producer import KafkaEventBus
from app.settings import Settings
from domain.feed import Algorithm
from domain.interactions import InteractionEvent, InteractionType, published_form
from domain.outbox import OutboxMessage, PendingMessage
from tests.contract.pact_support import (
    CONTRACTS,
    PACTS_DIR,
    ProviderStates,
    interactions_of,
    pacts_for,
    run_verifier,
)
from tests.servers import KafkaBroker, consume_all

pytestmark = [pytest.mark.contract]

CONSUMER = "feed-interactions-consumer"
PROVIDER = "feed-events"
PACT_FILE = PACTS_DIR / f"{CONSUMER}-{PROVIDER}.json"
SCHEMA = json.loads((CONTRACTS / "feed.interactions.v1.schema.json").read_text(encoding="utf-8"))
TOPIC = "feed.interactions.v1"
#: Every recommendation source's name, from the one enum.
ALGORITHM_PATTERN = "^(" + "|".join(algorithm.value for algorithm in Algorithm) + ")$"
CONFIGURED_TOPIC = next(f.default for f in fields(Settings) if f.name == "kafka_topic")
DESCRIPTION = "an accepted interaction event"
STATE = "a viewer's interaction from a feed session was accepted"
VIEWER = "u000096"
RFC3339_UTC = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$"
INTERACTION_TYPES = r"^(view|like|share|comment|skip|complete|hide)$"


def build_pact() -> Pact:
    pact = Pact(CONSUMER, PROVIDER).with_specification("V4")
    (
        pact.upon_receiving(DESCRIPTION, "Async")
        .given(STATE, {"userId": VIEWER})
        .with_body(
            {
                "eventId": match.str("e-7f3a"),
                "userId": match.str(VIEWER),
                "videoId": match.str("v000123"),
                "interactionType": match.regex("like", regex=INTERACTION_TYPES),
                "watchTime": match.int(12_000, min=0, max=86_400_000),
                "timestamp": match.regex("2026-11-24T06:55:00.123000Z", regex=RFC3339_UTC),
                "feedSessionId": match.str("s-1"),
                "algorithm": match.regex("lightfm", regex=ALGORITHM_PATTERN),
            },
            content_type="application/json",
        )
        .with_metadata(
            {
                "kafka_topic": TOPIC,
                "key": VIEWER,
                "content-type": "application/json",
                "schema-version": TOPIC,
            }
        )
    )
    return pact


# --- consumer side -------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsumedInteraction:
    """What the downstream consumer keeps of a record."""

    event_id: str
    user_id: str
    video_id: str
    interaction_type: str
    watch_time_ms: int
    occurred_at: datetime
    feed_session_id: str | None


def decode_record(value: bytes | str, metadata: dict[str, Any]) -> ConsumedInteraction:
    """The consumer's decoding of one record of feed.interactions.v1."""
    assert str(metadata["schema-version"]) == TOPIC
    body = json.loads(value)
    assert str(metadata["key"]) == body["userId"], "the key is the userId"
    return ConsumedInteraction(
        event_id=body["eventId"],
        user_id=body["userId"],
        video_id=body["videoId"],
        interaction_type=InteractionType(body["interactionType"]).value,
        watch_time_ms=int(body["watchTime"]),
        occurred_at=datetime.fromisoformat(body["timestamp"]),
        feed_session_id=body.get("feedSessionId"),
    )


def test_consumer_decodes_the_event_and_the_example_follows_the_schema(tmp_path: Path) -> None:
    pact = build_pact()
    decoded: list[ConsumedInteraction] = []

    def handler(body: str | bytes | None, metadata: dict[str, object]) -> None:
        assert body is not None
        decoded.append(decode_record(body, dict(metadata)))

    pact.verify(handler, "Async")
    assert decoded and decoded[0].user_id == VIEWER
    pact.write_file(tmp_path, overwrite=True)
    written = tmp_path / PACT_FILE.name
    (interaction,) = interactions_of(written)
    jsonschema.validate(interaction["contents"]["content"], SCHEMA)
    PACTS_DIR.mkdir(parents=True, exist_ok=True)
    PACT_FILE.write_text(written.read_text(encoding="utf-8"), encoding="utf-8")


@pytest.mark.parametrize("pact_file", pacts_for(PROVIDER), ids=lambda p: p.name)
def test_every_committed_example_follows_the_schema(pact_file: Path) -> None:
    for interaction in interactions_of(pact_file):
        jsonschema.validate(interaction["contents"]["content"], SCHEMA)


# --- provider side -------------------------------------------------------------------------


def publish_through_the_producer(broker: KafkaBroker, topic: str, user_id: str) -> Any:
    """Publish one accepted event the way the relay does and read its record back."""
    event = InteractionEvent(
        event_id="e-contract-1",
        user_id=user_id,
        video_id="v000123",
        interaction_type=InteractionType.LIKE,
        watch_time_ms=12_000,
        occurred_at=datetime(2026, 11, 24, 6, 55, 0, 123_000, tzinfo=UTC),
        feed_session_id="s-contract",
        algorithm="lightfm",
    )
    now = datetime.now(UTC)
    bus = KafkaEventBus(broker.bootstrap)
    try:
        outcome = bus.publish(
            [PendingMessage(1, OutboxMessage(topic, user_id, published_form(event), now), 0)],
            timeout_s=10.0,
        )
    finally:
        bus.close()
    assert outcome.failed == ()
    (record,) = consume_all(broker.bootstrap, topic, expected=1)
    return record


def producer(
    broker: KafkaBroker, topic: str, tamper: Callable[[dict[str, Any]], None] | None = None
) -> tuple[ProviderStates, Callable[..., Message]]:
    """The state handler and message handler of the provider side; `tamper` breaks the value
    (for the test that a broken provider fails)."""
    viewer: dict[str, str] = {}

    def state(action: str, parameters: dict[str, Any] | None) -> None:
        if action == "setup":
            viewer["userId"] = str((parameters or {})["userId"])

    def message(name: str, metadata: dict[str, Any] | None) -> Message:
        if problem := states.unknown_state_message():
            return {
                "contents": json.dumps({"providerStateProblem": problem}).encode(),
                "metadata": {},
                "content_type": "application/json",
            }
        record = publish_through_the_producer(broker, topic, viewer["userId"])
        value: bytes = record.value
        if tamper is not None:
            body = json.loads(value)
            tamper(body)
            value = json.dumps(body).encode()
        headers = {key: raw.decode("utf-8") for key, raw in record.headers}
        return {
            "contents": value,
            "metadata": {
                "kafka_topic": CONFIGURED_TOPIC,
                "key": record.key.decode("utf-8"),
                **headers,
            },
            "content_type": headers.get("content-type", "application/json"),
        }

    states = ProviderStates({STATE: state})
    return states, message


def verifier(
    broker: KafkaBroker,
    topic: str,
    tamper: Callable[[dict[str, Any]], None] | None = None,
    pact_file: Path = PACT_FILE,
) -> tuple[Verifier, ProviderStates]:
    """Every message of the pact is produced the one way the producer has (the topic carries
    one kind of record); a state the provider does not know fails the verification."""
    states, message = producer(broker, topic, tamper)
    verifier = (
        Verifier(PROVIDER)
        .message_handler(message)
        .state_handler(states.handle, teardown=True)
        .add_source(pact_file)
    )
    return verifier, states


@pytest.mark.parametrize("pact_file", pacts_for(PROVIDER), ids=lambda p: p.name)
def test_provider_the_real_producer_honours_the_pact(
    kafka_broker: KafkaBroker, kafka_topic: str, pact_file: Path
) -> None:
    checked, states = verifier(kafka_broker, kafka_topic, pact_file=pact_file)
    failures = run_verifier(checked)
    assert not states.unknown, f"provider states without a handler: {states.unknown}"
    assert failures is None, failures


def test_a_producer_that_sends_watch_time_as_text_fails_with_the_path_named(
    kafka_broker: KafkaBroker, kafka_topic: str
) -> None:
    def as_text(body: dict[str, Any]) -> None:
        body["watchTime"] = str(body["watchTime"])

    failures = run_verifier(verifier(kafka_broker, kafka_topic, as_text)[0])
    assert failures is not None
    assert "$.watchTime" in failures, failures
    assert "Expected '12000' (String) to be an integer" in failures, failures
