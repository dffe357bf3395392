"""Topic provisioning: create the interactions topic with the configured partitions and
replication when it is missing (the relay does this at start)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from adapters.kafka.security import KafkaSecurity
from adapters.kafka.socket_leak import construct_closing_on_failure, fix_kafka_python_socket_leak
from domain.errors import DependencyUnavailable

log = logging.getLogger(__name__)

COMPONENT = "kafka"


@dataclass(frozen=True)
class TopicState:
    """`created` is True when this call created the topic; `partitions` is its partition count
    as the broker reports it."""

    created: bool
    partitions: int


def ensure_topic(
    bootstrap_servers: str,
    topic: str,
    partitions: int,
    replication_factor: int,
    *,
    timeout_s: float = 10.0,
    security: KafkaSecurity | None = None,
) -> TopicState:
    """Create `topic` unless it exists, and wait until every partition has a leader.

    An existing topic is left as it is, even with fewer partitions than asked for: adding
    partitions moves keys to other partitions and so breaks per-user order (logged as a
    warning). Raises `DependencyUnavailable("kafka")` when the brokers cannot be reached or
    refuse; no kafka exception escapes.
    """
    fix_kafka_python_socket_leak()
    from kafka import KafkaAdminClient
    from kafka.errors import TopicAlreadyExistsError

    timeout_ms = int(timeout_s * 1000)
    try:
        admin = construct_closing_on_failure(
            KafkaAdminClient,
            {
                **(security or KafkaSecurity()).client_config(),
                "bootstrap_servers": [s.strip() for s in bootstrap_servers.split(",") if s.strip()],
                "client_id": "feedrec-provisioning",
                "bootstrap_timeout_ms": timeout_ms,
                "request_timeout_ms": timeout_ms,
            },
        )
    except Exception as err:
        raise _unavailable("cannot be reached", err) from err
    try:
        created = True
        try:
            admin.create_topics(
                {topic: {"num_partitions": partitions, "replication_factor": replication_factor}},
                timeout_ms=timeout_ms,
                wait_for_metadata=True,
            )
        except TopicAlreadyExistsError:
            created = False
        found = _partition_count(admin.describe_topics([topic]), topic)
    except Exception as err:
        raise _unavailable("refused to provision the topic", err) from err
    finally:
        try:
            admin.close()
        except Exception as err:  # closing is best effort
            log.debug("kafka admin client did not close cleanly: %s", err)
    if not created and found < partitions:
        log.warning(
            "topic %s has %d partitions, fewer than the %d configured; left as it is "
            "(adding partitions would break per-user order)",
            topic,
            found,
            partitions,
        )
    elif created:
        log.info("created topic %s with %d partitions", topic, found)
    return TopicState(created, found)


def _partition_count(described: Any, topic: str) -> int:
    for item in described or ():
        if topic in (item.get("name"), item.get("topic")):
            return len(item.get("partitions") or ())
    return 0


def _unavailable(what: str, err: BaseException) -> DependencyUnavailable:
    return DependencyUnavailable(COMPONENT, f"the broker {what} ({type(err).__name__}: {err})")
