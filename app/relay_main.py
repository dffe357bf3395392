"""The `relay` process (`feedrec relay`, Procfile `relay`): publishes the outbox to Kafka.

At start it creates the topic if it is missing (retrying while the broker is down). Then, while
it holds the `outbox-relay` lease (one publishing relay at a time; on PostgreSQL a killed one's
lease frees with its connection and a standby polls for it twice a second, on SQLite it lapses
after `RELAY_LEASE_TTL_S`), it runs relay rounds: at once again after a round that read
something, `RELAY_POLL_INTERVAL_MS` after an empty one, with exponential backoff while the
broker or the database fails. Sent messages older than `OUTBOX_RETENTION_S` are deleted now and
then. SIGTERM or SIGINT finishes the round in progress, gives the lease up and closes the
producer, so a successor can start at once.

With no `KAFKA_BOOTSTRAP_SERVERS` it publishes nothing: it says so once and keeps reporting
the outbox backlog, and the events wait in the outbox until a broker is configured.
"""

from __future__ import annotations

import contextlib
import logging
import random
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from app.composition.relay import RelayComposition, RelayOverrides, build_relay
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
from ports.repositories import UnitOfWork

log = logging.getLogger("feedrec.relay")

#: Seconds between deletions of old sent messages.
PURGE_INTERVAL_S = 60.0
#: Seconds between backlog reports when no broker is configured.
UNCONFIGURED_REPORT_S = 10.0
#: Backoff for the database, the broker at start, and waiting for another relay's lease.
WAIT_BACKOFF = Backoff(base_s=0.2, cap_s=5.0)


def run(
    settings: Settings,
    stop_event: threading.Event | None = None,
    overrides: RelayOverrides | None = None,
) -> None:
    """Relay until `stop_event` is set (or, without one, until SIGTERM/SIGINT)."""
    stop = stop_event or stop_on_signals()
    # kafka-python narrates every connection at INFO; its warnings and errors still show.
    kafka_log = logging.getLogger("kafka")
    kafka_log.setLevel(max(kafka_log.getEffectiveLevel(), logging.WARNING))
    composition = build_relay(settings, overrides)
    try:
        _relay_until_stopped(composition, stop)
    finally:
        composition.close()
        log.info("relay stopped")


def _relay_until_stopped(composition: RelayComposition, stop: threading.Event) -> None:
    relay = composition.relay
    if relay is None:
        log.warning(
            "no Kafka broker configured (KAFKA_BOOTSTRAP_SERVERS is empty): "
            "events stay in the outbox until one is"
        )
        _report_until_stopped(composition.unit_of_work, composition.metrics, stop)
        return
    if not _provision_topic(composition.provision_topic, stop):
        return
    keeper = composition.keeper
    try:
        _RelayLoop(
            relay,
            keeper,
            composition.pacing,
            composition.retention,
            stop,
            standby_poll_s=composition.standby_poll_s,
        ).run()
    finally:
        # Every round waited for its acknowledgements, so nothing is in flight: a successor
        # may take over before the producer is closed.
        with contextlib.suppress(DependencyUnavailable):
            keeper.release()


class _RelayLoop:
    """Relay rounds while this process holds the lease, paced, backing off on failures."""

    def __init__(
        self,
        relay: OutboxRelay,
        keeper: LeaseKeeper,
        pacing: RelayPacing,
        retention: timedelta,
        stop: threading.Event,
        *,
        standby_poll_s: float = WAIT_BACKOFF.cap_s,
    ) -> None:
        self._relay = relay
        self._standby_poll_s = standby_poll_s
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
                self._stop.wait(self._standby_poll_s * (0.5 + random.random() / 2))
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


def _provision_topic(provision: Callable[[], None], stop: threading.Event) -> bool:
    """Create the topic if missing, retrying until the broker answers. False if stopped."""
    attempts = 0
    while not stop.is_set():
        try:
            provision()
            return True
        except DependencyUnavailable as err:
            attempts += 1
            if attempts == 1:
                log.warning("cannot provision the topic yet: %s", err.message)
            stop.wait(WAIT_BACKOFF.delay_s(attempts, random.random()))
    return False


def _report_until_stopped(
    unit_of_work: Callable[[], UnitOfWork], metrics: Metrics, stop: threading.Event
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
