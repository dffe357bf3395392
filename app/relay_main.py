"""The `relay` process (`feedrec relay`, Procfile `relay`): publishes the outbox to Kafka.

At start it creates the topic if it is missing (retrying while the broker is down). Then, while
it holds the `outbox-relay` lease (one publishing relay at a time; a crashed one's lease lapses
after `RELAY_LEASE_TTL_S`), it runs relay rounds: at once again after a round that read
something, `RELAY_POLL_INTERVAL_MS` after an empty one, with exponential backoff while the
broker or the database fails. Sent messages older than `OUTBOX_RETENTION_S` are deleted now and
then. SIGTERM or SIGINT finishes the round in progress, closes the producer and gives the lease
up, so a successor can start at once.

With no `KAFKA_BOOTSTRAP_SERVERS` it publishes nothing: it says so once and keeps reporting
the outbox backlog, and the events wait in the outbox until a broker is configured.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import sys
import threading
import time
import uuid
from datetime import timedelta

from adapters.kafka.admin import ensure_topic
from adapters.kafka.producer import KafkaEventBus
from adapters.sql.engine import make_engine
from adapters.sql.leases import SqlLeases
from adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from adapters.system_clock import SystemClock
from app.bootstrap import metrics_from
from app.settings import Settings
from app.signals import stop_on_signals
from domain.errors import DependencyUnavailable
from domain.relay import (
    Backoff,
    LeaseKeeper,
    OutboxRelay,
    RelayPacing,
    RelayResult,
    report_backlog,
)
from ports.observability import Metrics

log = logging.getLogger("feedrec.relay")

LEASE_NAME = "outbox-relay"
#: Seconds between deletions of old sent messages.
PURGE_INTERVAL_S = 60.0
#: Seconds between backlog reports when no broker is configured.
UNCONFIGURED_REPORT_S = 10.0
#: Backoff for the database, the broker at start, and waiting for another relay's lease.
WAIT_BACKOFF = Backoff(base_s=0.2, cap_s=5.0)


def run(settings: Settings, stop_event: threading.Event | None = None) -> None:
    """Relay until `stop_event` is set (or, without one, until SIGTERM/SIGINT)."""
    stop = stop_event or stop_on_signals()
    # kafka-python narrates every connection at INFO; its warnings and errors still show.
    kafka_log = logging.getLogger("kafka")
    kafka_log.setLevel(max(kafka_log.getEffectiveLevel(), logging.WARNING))
    engine = make_engine(settings.resolved_database_url)
    unit_of_work = SqlUnitOfWorkFactory(engine)
    clock = SystemClock()
    metrics = metrics_from(settings)
    try:
        if not settings.kafka_bootstrap_servers:
            log.warning(
                "no Kafka broker configured (KAFKA_BOOTSTRAP_SERVERS is empty): "
                "events stay in the outbox until one is"
            )
            _report_until_stopped(unit_of_work, metrics, stop)
            return
        if not _provision_topic(settings, stop):
            return
        bus = KafkaEventBus(
            settings.kafka_bootstrap_servers,
            client_id=f"feedrec-relay-{socket.gethostname()}",
            linger_ms=settings.kafka_linger_ms,
            compression_type=None
            if settings.kafka_compression == "none"
            else settings.kafka_compression,
        )
        relay = OutboxRelay(
            unit_of_work,
            bus,
            clock,
            metrics,
            batch_size=settings.relay_batch_size,
            publish_timeout_s=settings.relay_publish_timeout_s,
        )
        holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        keeper = LeaseKeeper(
            SqlLeases(engine),
            LEASE_NAME,
            holder,
            clock,
            timedelta(seconds=settings.relay_lease_ttl_s),
        )
        pacing = RelayPacing(idle_poll_s=settings.relay_poll_interval_ms / 1000)
        retention = timedelta(seconds=settings.outbox_retention_s)
        try:
            _RelayLoop(relay, keeper, pacing, retention, stop).run()
        finally:
            bus.close()
            with contextlib.suppress(DependencyUnavailable):
                keeper.release()
    finally:
        close = getattr(metrics, "close", None)
        if close is not None:
            close()
        engine.dispose()
        log.info("relay stopped")


class _RelayLoop:
    """Relay rounds while this process holds the lease, paced, backing off on failures."""

    def __init__(
        self,
        relay: OutboxRelay,
        keeper: LeaseKeeper,
        pacing: RelayPacing,
        retention: timedelta,
        stop: threading.Event,
    ) -> None:
        self._relay = relay
        self._keeper = keeper
        self._pacing = pacing
        self._retention = retention
        self._stop = stop
        self._failures = 0  # consecutive rounds that failed (broker or database)
        self._holding = False
        self._next_purge = time.monotonic()

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                result = self._round()
            except DependencyUnavailable as err:
                self._failed(f"relay round failed: {err.message}", unexpected=False)
                continue
            except Exception:  # a bug must not end the process: the outbox would stop draining
                self._failed("relay round failed unexpectedly", unexpected=True)
                continue
            if result is None:  # another relay holds the lease
                self._stop.wait(WAIT_BACKOFF.cap_s * (0.5 + random.random() / 2))
                continue
            if result.failed:
                self._failures += 1
                if self._failures == 1:
                    log.warning(
                        "broker did not acknowledge; backing off",
                        extra={"failed": result.failed, "backlog": result.backlog},
                    )
            elif self._failures:
                log.info("relay recovered", extra={"after_failed_rounds": self._failures})
                self._failures = 0
            pause = self._pacing.pause_s(result, self._failures, random.random())
            if pause > 0:
                self._stop.wait(pause)

    def _round(self) -> RelayResult | None:
        if not self._keeper.hold():
            if self._holding:
                log.warning("lost the relay lease to another relay")
            self._holding = False
            return None
        if not self._holding:
            log.info("holding the relay lease", extra={"holder": self._keeper.holder})
            self._holding = True
        result = self._relay.relay_once()
        if time.monotonic() >= self._next_purge:
            self._next_purge = time.monotonic() + PURGE_INTERVAL_S
            purged = self._relay.purge_sent(self._retention)
            if purged:
                log.info("purged sent outbox messages", extra={"purged": purged})
        return result

    def _failed(self, message: str, *, unexpected: bool) -> None:
        self._failures += 1
        if unexpected:
            log.exception(message)  # every time, with its traceback
        elif self._failures == 1:
            log.warning(message)
        self._stop.wait(WAIT_BACKOFF.delay_s(self._failures, random.random()))


def _provision_topic(settings: Settings, stop: threading.Event) -> bool:
    """Create the topic if missing, retrying until the broker answers. False if stopped."""
    attempts = 0
    while not stop.is_set():
        try:
            ensure_topic(
                settings.kafka_bootstrap_servers,
                settings.kafka_topic,
                settings.kafka_topic_partitions,
                settings.kafka_replication_factor,
            )
            return True
        except DependencyUnavailable as err:
            attempts += 1
            if attempts == 1:
                log.warning("cannot provision the topic yet: %s", err.message)
            stop.wait(WAIT_BACKOFF.delay_s(attempts, random.random()))
    return False


def _report_until_stopped(
    unit_of_work: SqlUnitOfWorkFactory, metrics: Metrics, stop: threading.Event
) -> None:
    while not stop.is_set():
        try:
            report_backlog(unit_of_work, metrics)
        except DependencyUnavailable as err:
            log.warning("cannot count the outbox backlog: %s", err.message)
        stop.wait(UNCONFIGURED_REPORT_S)


def main() -> int:
    from app.logs import configure_logging

    settings = Settings.from_env()
    configure_logging(settings.log_level)
    run(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
