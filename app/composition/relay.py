"""The `relay` process's parts: the outbox, the event bus, the relay lease."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from adapters.kafka.admin import ensure_topic
from adapters.kafka.producer import KafkaEventBus
from adapters.sql.engine import make_engine
from adapters.sql.leases import PgSessionLeases, SqlLeases
from adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from adapters.system_clock import SystemClock
from app.composition.common import kafka_security, metrics_from
from app.settings import Settings
from domain.relay import LeaseKeeper, OutboxRelay, RelayPacing
from ports.clock import Clock
from ports.event_bus import EventBus
from ports.observability import Metrics
from ports.repositories import Leases, UnitOfWork

LEASE_NAME = "outbox-relay"
#: Seconds a standby relay waits between tries for an expiring lease (it frees at its TTL).
TTL_STANDBY_POLL_S = 5.0
#: ... and for a PostgreSQL session lease (it frees the moment its holder's connection closes).
SESSION_STANDBY_POLL_S = 0.5


@dataclass
class RelayOverrides:
    """Parts a caller supplies instead of the ones the settings describe. A `bus` publishes
    even with no `KAFKA_BOOTSTRAP_SERVERS`; `provision_topic` replaces creating the topic."""

    clock: Clock | None = None
    unit_of_work: Callable[[], UnitOfWork] | None = None
    leases: Leases | None = None
    bus: EventBus | None = None
    provision_topic: Callable[[], None] | None = None
    metrics: Metrics | None = None
    holder: str | None = None


@dataclass
class RelayComposition:
    """`relay` is None when no broker is configured: the process then only reports the
    backlog. `provision_topic` raises `DependencyUnavailable` while the broker is down.
    `close` releases what the parts hold (the lease is the run loop's to give up)."""

    unit_of_work: Callable[[], UnitOfWork]
    metrics: Metrics
    relay: OutboxRelay | None
    keeper: LeaseKeeper
    provision_topic: Callable[[], None]
    pacing: RelayPacing
    retention: timedelta
    #: seconds between a standby relay's tries for the lease (jittered down to half)
    standby_poll_s: float = TTL_STANDBY_POLL_S
    closers: list[Callable[[], object]] = field(default_factory=list)

    def close(self) -> None:
        for close in self.closers:
            close()


def build_relay(settings: Settings, overrides: RelayOverrides | None = None) -> RelayComposition:
    """The relay wired from `settings`. Opens no connection yet."""
    chosen = overrides or RelayOverrides()
    clock = chosen.clock or SystemClock()
    unit_of_work, leases = chosen.unit_of_work, chosen.leases
    engine = None
    session_lease = False
    if unit_of_work is None or leases is None:
        engine = make_engine(settings.resolved_database_url)
        unit_of_work = unit_of_work or SqlUnitOfWorkFactory(engine)
        if leases is None:
            # PostgreSQL frees a dead holder's lock with its connection: a successor within
            # one standby poll. SQLite has no sessions to tie a lock to: the TTL lease.
            session_lease = engine.dialect.name == "postgresql"
            leases = PgSessionLeases(engine) if session_lease else SqlLeases(engine)
    metrics = chosen.metrics or metrics_from(settings)
    bus = chosen.bus or _kafka_bus(settings)
    relay = None
    if bus is not None:
        relay = OutboxRelay(
            unit_of_work,
            bus,
            clock,
            metrics,
            batch_size=settings.relay_batch_size,
            publish_timeout_s=settings.relay_publish_timeout_s,
        )
    closers: list[Callable[[], object]] = [bus.close] if bus is not None else []
    closers.append(metrics.close)
    if engine is not None:
        closers.append(engine.dispose)
    keeper = LeaseKeeper(
        leases,
        LEASE_NAME,
        chosen.holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
        clock,
        timedelta(seconds=settings.relay_lease_ttl_s),
        renew_every=timedelta(0) if session_lease else None,
    )
    return RelayComposition(
        unit_of_work=unit_of_work,
        metrics=metrics,
        relay=relay,
        keeper=keeper,
        provision_topic=chosen.provision_topic or (lambda: _ensure_topic(settings)),
        pacing=RelayPacing(idle_poll_s=settings.relay_poll_interval_ms / 1000),
        retention=timedelta(seconds=settings.outbox_retention_s),
        standby_poll_s=SESSION_STANDBY_POLL_S if session_lease else TTL_STANDBY_POLL_S,
        closers=closers,
    )


def _kafka_bus(settings: Settings) -> EventBus | None:
    if not settings.kafka_bootstrap_servers:
        return None
    return KafkaEventBus(
        settings.kafka_bootstrap_servers,
        client_id=f"feedrec-relay-{socket.gethostname()}",
        linger_ms=settings.kafka_linger_ms,
        compression_type=None
        if settings.kafka_compression == "none"
        else settings.kafka_compression,
        security=kafka_security(settings),
    )


def _ensure_topic(settings: Settings) -> None:
    ensure_topic(
        settings.kafka_bootstrap_servers,
        settings.kafka_topic,
        settings.kafka_topic_partitions,
        settings.kafka_replication_factor,
        security=kafka_security(settings),
    )
