"""The outbox relay: publishes outbox messages to the broker, oldest first, and marks them sent
only once the broker acknowledged them, so an accepted event is never lost.

What is guaranteed (and why):

- At least once. A message is marked sent only after the broker acknowledged it; anything
  published but not marked (a crash, a lost acknowledgement, a database outage after the
  publish) goes out again. Consumers de-duplicate by `eventId`.
- Per-user order. A round sends its messages oldest first, and the event bus keeps that
  order per key. Within a round, a user's messages are marked sent only up to that user's
  first failure: a later message of the same user that was acknowledged anyway stays pending
  ("held back") and goes out again after the failed one. So a user's unsent messages are
  always their newest ones, a retry or a restarted relay resends from the oldest of them,
  and the last copy of each event on the topic comes after the last copies of that user's
  earlier events.
- With the Kafka adapter, also the first copies: kafka-python's idempotent producer keeps
  one batch in flight per partition and the broker checks sequence numbers, so what lands on
  a partition is a prefix of what was sent to it (the adapter discards a producer after any
  failure, so nothing it held lands later). Then nothing is ever held back, and a consumer
  that keeps the first copy of each `eventId` sees each user's events in outbox order.
- Outbox order is commit order for one request and for requests that did not overlap; two
  requests for the same user racing each other have no order to keep.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # ports are the domain's types, never its runtime imports
    from ports.clock import Clock
    from ports.event_bus import EventBus
    from ports.observability import Metrics
    from ports.repositories import Leases, UnitOfWork

PUBLISH_LATENCY_METRIC = "feed.kafka.publish_latency_ms"
BACKLOG_METRIC = "feed.outbox.backlog"
PUBLISH_FAILURES_METRIC = "feed.kafka.publish_failures"
#: Messages the broker acknowledged that will be published again (at least once): the database
#: failed before they were marked sent, or they were held back behind a same-key failure.
REPUBLISHED_METRIC = "feed.outbox.republished"
#: While idle the backlog gauge is sent at most this often (a busy round always sends it).
IDLE_GAUGE_INTERVAL = timedelta(seconds=1)
#: A full round counts the unsent messages at most this often: counting walks the whole
#: backlog, and rounds come many times a second exactly when the backlog is large.
BACKLOG_COUNT_INTERVAL = timedelta(seconds=1)


@dataclass(frozen=True)
class RelayResult:
    """One round: `read` pending messages, of which `sent` were acknowledged and marked sent,
    `failed` were not acknowledged, and `held_back` were acknowledged after an earlier message
    of the same key failed (they stay pending, see the module docstring). `backlog` is how many
    messages were unsent after the round, or None when a full round did not count them (see
    BACKLOG_COUNT_INTERVAL); `full` says the round read a whole batch, so more are probably
    waiting."""

    read: int
    sent: int
    failed: int
    held_back: int
    backlog: int | None
    full: bool


class OutboxRelay:
    """Publishes pending outbox messages through an `EventBus`, one round per `relay_once()`."""

    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        bus: EventBus,
        clock: Clock,
        metrics: Metrics,
        *,
        batch_size: int = 2000,
        publish_timeout_s: float = 5.0,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._unit_of_work = unit_of_work
        self._bus = bus
        self._clock = clock
        self._metrics = metrics
        self._batch_size = batch_size
        self._publish_timeout_s = publish_timeout_s
        self._gauge_sent_at: datetime | None = None
        self._counted_at: datetime | None = None

    def relay_once(self) -> RelayResult:
        """Read up to `batch_size` pending messages, publish them, record the outcome.

        Raises `DependencyUnavailable` when the database cannot be reached (nothing is marked
        then; what was published goes out again). Broker trouble is a result, never an error.
        """
        with self._unit_of_work() as uow:
            pending = uow.outbox.pending(self._batch_size)
            full = len(pending) == self._batch_size
            backlog_before = uow.outbox.backlog() if full and self._count_due() else None
        if not pending:
            self._report_backlog(0, busy=False)
            return RelayResult(0, 0, 0, 0, 0, full=False)

        outcome = self._bus.publish(pending, self._publish_timeout_s)
        acknowledged_at = self._clock.now()
        acknowledged = set(outcome.acknowledged)
        sent: list[int] = []
        failed: list[int] = []
        held_back: list[int] = []
        blocked_keys: set[str] = set()
        for item in pending:  # oldest first
            key = item.message.key
            if item.id not in acknowledged:  # failed, or neither: counts as failed
                failed.append(item.id)
                blocked_keys.add(key)
            elif key in blocked_keys:
                held_back.append(item.id)
            else:
                sent.append(item.id)

        try:
            with self._unit_of_work() as uow:
                if sent:
                    uow.outbox.mark_sent(sent, acknowledged_at)
                if failed:
                    uow.outbox.record_failure(failed)
                uow.commit()
        except Exception:
            if sent:  # on the topic already, and still pending: they go out again
                self._metrics.increment(REPUBLISHED_METRIC, len(sent))
            raise
        if held_back:
            self._metrics.increment(REPUBLISHED_METRIC, len(held_back))

        sent_ids = set(sent)
        self._metrics.timing_samples(
            PUBLISH_LATENCY_METRIC,
            [
                (acknowledged_at - item.message.created_at).total_seconds() * 1000.0
                for item in pending
                if item.id in sent_ids
            ],
        )
        if failed:
            self._metrics.increment(PUBLISH_FAILURES_METRIC, len(failed))
        backlog = _backlog_after(len(pending), len(sent), full, backlog_before)
        if backlog is not None:
            self._report_backlog(backlog, busy=True)
        return RelayResult(len(pending), len(sent), len(failed), len(held_back), backlog, full)

    def _count_due(self) -> bool:
        now = self._clock.now()
        if self._counted_at is not None and now - self._counted_at < BACKLOG_COUNT_INTERVAL:
            return False
        self._counted_at = now
        return True

    def purge_sent(self, retention: timedelta) -> int:
        """Delete messages acknowledged more than `retention` ago; returns how many."""
        with self._unit_of_work() as uow:
            purged = uow.outbox.purge_sent(self._clock.now() - retention)
            uow.commit()
        return purged

    def _report_backlog(self, backlog: int, *, busy: bool) -> None:
        now = self._clock.now()
        if busy or self._gauge_sent_at is None or now - self._gauge_sent_at >= IDLE_GAUGE_INTERVAL:
            self._metrics.gauge(BACKLOG_METRIC, backlog)
            self._gauge_sent_at = now


def _backlog_after(read: int, sent: int, full: bool, counted_before: int | None) -> int | None:
    if not full:  # everything pending was read: what was not sent is the backlog
        return read - sent
    return None if counted_before is None else counted_before - sent


def report_backlog(unit_of_work: Callable[[], UnitOfWork], metrics: Metrics) -> int:
    """Count the unsent messages and send the backlog gauge (for a relay that cannot publish,
    e.g. with no broker configured). Raises `DependencyUnavailable` like any storage call."""
    with unit_of_work() as uow:
        backlog = uow.outbox.backlog()
    metrics.gauge(BACKLOG_METRIC, backlog)
    return backlog


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with a cap and jitter, in seconds: after the n-th consecutive
    failure, wait `min(cap_s, base_s * 2**(n-1))` scaled by a factor in [1 - jitter, 1]."""

    base_s: float = 0.1
    cap_s: float = 5.0
    jitter: float = 0.5

    def delay_s(self, consecutive_failures: int, unit_random: float) -> float:
        """`unit_random` is a number in [0, 1) from the caller's random source; 0 with no
        failures."""
        if consecutive_failures <= 0:
            return 0.0
        exponent = min(consecutive_failures - 1, 62)  # 2**62 * base is past any cap
        ceiling = min(self.cap_s, self.base_s * 2.0**exponent)
        return ceiling * (1.0 - self.jitter * unit_random)


@dataclass(frozen=True)
class RelayPacing:
    """How long the relay pauses after a round, in seconds. Publish latency is dominated by
    `idle_poll_s` at low load: a new message waits on average half of it before it is read."""

    idle_poll_s: float = 0.005
    #: A returning broker waits out at most this backoff before the backlog drains: capped at
    #: 1 s (a failing round costs one producer connect attempt, so this is cheap).
    backoff: Backoff = Backoff(base_s=0.1, cap_s=1.0)

    def pause_s(self, result: RelayResult, consecutive_failures: int, unit_random: float) -> float:
        if consecutive_failures > 0:
            return self.backoff.delay_s(consecutive_failures, unit_random)
        if result.read > 0:
            return 0.0  # messages arrived while this round published: read them at once
        return self.idle_poll_s


class LeaseKeeper:
    """Holds a named lease for this process: takes it when free, renews it once `renew_every`
    (by default a third of its time-to-live) has passed (one database write per renewal, not
    per round), and says whether this process may work now. A lease that lives as long as its
    holder's connection is checked on every `hold()` (`renew_every` zero)."""

    def __init__(
        self,
        leases: Leases,
        name: str,
        holder: str,
        clock: Clock,
        ttl: timedelta,
        *,
        renew_every: timedelta | None = None,
    ) -> None:
        self._leases = leases
        self._name = name
        self._holder = holder
        self._clock = clock
        self._ttl = ttl
        self._renew_every = ttl / 3 if renew_every is None else renew_every
        self._renewed_at: datetime | None = None

    @property
    def holder(self) -> str:
        return self._holder

    def hold(self) -> bool:
        """True when this process holds the lease now. Raises `DependencyUnavailable` when the
        database cannot be reached (the caller then stops working: the lease may lapse)."""
        now = self._clock.now()
        if self._renewed_at is not None and now - self._renewed_at < self._renew_every:
            return True
        self._renewed_at = None
        if self._leases.acquire(self._name, self._holder, now, self._ttl):
            self._renewed_at = now
            return True
        return False

    def release(self) -> None:
        self._renewed_at = None
        self._leases.release(self._name, self._holder)
