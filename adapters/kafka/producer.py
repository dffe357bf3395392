"""Implements `ports.event_bus.EventBus` with kafka-python's idempotent producer.

Records: key = the message key (the userId) in UTF-8, value = compact UTF-8 JSON of the payload,
headers `content-type: application/json` and `schema-version: feed.interactions.v1` (the JSON
Schema in contracts/ the value follows). Producer: `enable_idempotence=True`, `acks="all"`,
batches of what one `publish` hands over (plus `linger_ms`), gzip compression (the one codec
kafka-python has without an extra C library; configurable, `None` for none).

Order: the idempotent producer keeps one batch in flight per partition and the broker checks
sequence numbers, so what lands on a partition is a prefix of what was sent there. A publish
that does not end with every message acknowledged discards the producer (its unsent batches
are aborted, never sent later behind the relay's back) and the next publish starts a new one.
That also makes a broker outage cheap: no producer sits in a 30 s reconnect backoff when the
broker returns, and no record waits in a dead producer's buffer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import orjson

from adapters.kafka.security import KafkaSecurity
from adapters.kafka.socket_leak import construct_closing_on_failure, fix_kafka_python_socket_leak
from domain.outbox import PendingMessage
from ports.event_bus import PublishOutcome

log = logging.getLogger(__name__)

CONTENT_TYPE = b"application/json"
#: The `schema-version` header: names the JSON Schema (contracts/<name>.schema.json) of the value.
SCHEMA_VERSION = "feed.interactions.v1"


class KafkaEventBus:
    """Publishes to the brokers in `bootstrap_servers` ("host:port,host:port").

    Nothing connects until the first `publish`; a broker that is down then (or later) makes
    that publish return every message as failed, and the next one tries again.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        client_id: str = "feedrec-relay",
        linger_ms: int = 0,
        compression_type: str | None = "gzip",
        schema_version: str = SCHEMA_VERSION,
        connect_timeout_s: float = 2.0,
        request_timeout_s: float = 10.0,
        security: KafkaSecurity | None = None,
    ) -> None:
        self._config: dict[str, Any] = {
            **(security or KafkaSecurity()).client_config(),
            "bootstrap_servers": [s.strip() for s in bootstrap_servers.split(",") if s.strip()],
            "client_id": client_id,
            "enable_idempotence": True,
            "acks": "all",
            "linger_ms": linger_ms,
            "compression_type": compression_type,
            "bootstrap_timeout_ms": int(connect_timeout_s * 1000),
            # send() blocks this long at most for topic metadata or buffer space
            "max_block_ms": int(connect_timeout_s * 1000),
            "request_timeout_ms": int(request_timeout_s * 1000),
            "delivery_timeout_ms": int(request_timeout_s * 1000) * 3 + linger_ms,
            # a relay that keeps up reconnects quickly when a broker comes back
            "reconnect_backoff_max_ms": 1000,
            # One batch is in flight per partition (idempotence), so a round's share of a
            # partition goes in one request rather than a queue of 16 KB ones (the default).
            "batch_size": 256 * 1024,
        }
        self._headers = [
            ("content-type", CONTENT_TYPE),
            ("schema-version", schema_version.encode()),
        ]
        self._producer: Any = None
        self._failing = False  # log a failure when it starts, not on every retry

    def publish(self, messages: Sequence[PendingMessage], timeout_s: float) -> PublishOutcome:
        if not messages:
            return PublishOutcome((), ())
        deadline = time.monotonic() + timeout_s
        producer = self._connected_producer()
        if producer is None:
            return PublishOutcome((), tuple(item.id for item in messages))
        futures: list[tuple[int, Any]] = []
        unsent: list[int] = []
        for index, item in enumerate(messages):
            try:
                future = producer.send(
                    item.message.topic,
                    key=item.message.key.encode("utf-8"),
                    value=encode_value(item.message.payload),
                    headers=list(self._headers),
                )
            except Exception as err:  # kafka errors and the client's own Type/ValueErrors
                # Sending later messages without this one could break the order per key.
                self._report("kafka send failed: %s", err)
                unsent = [later.id for later in messages[index:]]
                break
            futures.append((item.id, future))
        acknowledged: list[int] = []
        failed = list(unsent)
        for message_id, future in futures:
            try:
                future.get(timeout=max(deadline - time.monotonic(), 0.0))
            except Exception as err:  # KafkaTimeoutError, broker errors: not acknowledged
                failed.append(message_id)
                if len(failed) == 1:
                    self._report("kafka publish not acknowledged: %s", err)
            else:
                acknowledged.append(message_id)
        if failed:
            self._discard_producer()
        elif self._failing:
            log.info("kafka publishes are acknowledged again")
            self._failing = False
        return PublishOutcome(tuple(acknowledged), tuple(failed))

    def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is None:
            return
        try:
            producer.close(timeout=2.0)
        except Exception as err:  # could not flush in time: abort the rest
            log.warning("kafka producer did not flush on close: %s", _describe(err))
            _force_close(producer)

    def _connected_producer(self) -> Any:
        if self._producer is not None:
            return self._producer
        fix_kafka_python_socket_leak()
        from kafka import KafkaProducer

        try:
            self._producer = construct_closing_on_failure(KafkaProducer, self._config)
        except Exception as err:  # NoBrokersAvailable, KafkaTimeoutError, config errors
            self._report("kafka producer cannot connect: %s", err)
            return None
        return self._producer

    def _report(self, message: str, err: BaseException) -> None:
        log.log(logging.DEBUG if self._failing else logging.WARNING, message, _describe(err))
        self._failing = True

    def _discard_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            _force_close(producer)


def encode_value(payload: object) -> bytes:
    """The record value: compact JSON, UTF-8, keys in the payload's order (orjson: the same
    JSON as the standard library's compact form, several times faster, per event)."""
    return orjson.dumps(payload)


def _force_close(producer: Any) -> None:
    """Stop a producer without sending what it still holds.

    kafka-python's `close(timeout=0)` first flushes with that timeout and raises when anything
    is pending, before it gets to its own force-close; so abort the batches through its sender
    thread first (`Sender.force_close` fails every incomplete batch), then close.
    """
    sender = getattr(producer, "_sender", None)
    try:
        if sender is not None:
            sender.force_close()
            sender.join(2.0)
        producer.close(timeout=0)
    except Exception as err:  # nothing more to do about a producer that will not close
        log.warning("kafka producer did not close cleanly: %s", _describe(err))


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"
