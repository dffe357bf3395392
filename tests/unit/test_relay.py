"""The outbox relay on in-memory fakes: what is published, what is marked sent, in which
order, what is measured, and how it paces and backs off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.errors import DependencyUnavailable
from domain.outbox import OutboxMessage
from domain.relay import (
    BACKLOG_METRIC,
    PUBLISH_FAILURES_METRIC,
    PUBLISH_LATENCY_METRIC,
    REPUBLISHED_METRIC,
    Backoff,
    LeaseKeeper,
    OutboxRelay,
    RelayPacing,
    RelayResult,
    report_backlog,
)
from tests.fakes import FixedClock, InMemoryLeases, InMemoryUnitOfWorkFactory
from tests.fakes_feed import RecordingMetrics
from tests.fakes_relay import FakeEventBus, event_id

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
TOPIC = "feed.interactions.v1"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def database() -> InMemoryUnitOfWorkFactory:
    return InMemoryUnitOfWorkFactory()


@pytest.fixture
def bus(clock: FixedClock) -> FakeEventBus:
    return FakeEventBus(clock)


@pytest.fixture
def metrics() -> RecordingMetrics:
    return RecordingMetrics()


def relay_for(
    database: InMemoryUnitOfWorkFactory,
    bus: FakeEventBus,
    clock: FixedClock,
    metrics: RecordingMetrics,
    batch_size: int = 500,
) -> OutboxRelay:
    return OutboxRelay(database, bus, clock, metrics, batch_size=batch_size, publish_timeout_s=3.0)


def accept(database: InMemoryUnitOfWorkFactory, *events: tuple[str, str], at: datetime) -> None:
    """Commit outbox messages for (event id, user id) pairs, as the ingestion service does."""
    with database() as uow:
        uow.outbox.add(
            [
                OutboxMessage(TOPIC, user, {"eventId": eid, "userId": user}, at)
                for eid, user in events
            ]
        )
        uow.commit()


def pending_ids(database: InMemoryUnitOfWorkFactory) -> list[str]:
    with database() as uow:
        return [event_id(item) for item in uow.outbox.pending(1000)]


def test_pending_messages_are_published_oldest_first_and_marked_sent(
    database: InMemoryUnitOfWorkFactory,
    bus: FakeEventBus,
    clock: FixedClock,
    metrics: RecordingMetrics,
) -> None:
    accept(database, ("e1", "u1"), ("e2", "u2"), ("e3", "u1"), at=NOW - timedelta(milliseconds=6))

    result = relay_for(database, bus, clock, metrics).relay_once()

    assert result == RelayResult(read=3, sent=3, failed=0, held_back=0, backlog=0, full=False)
    assert bus.delivered == ["e1", "e2", "e3"]
    assert bus.timeouts == [3.0]
    assert pending_ids(database) == []
    assert set(database.state.sent_at.values()) == {NOW + bus.clock_step}


def test_publish_latency_is_measured_from_acceptance_to_acknowledgement(
    database: InMemoryUnitOfWorkFactory,
    bus: FakeEventBus,
    clock: FixedClock,
    metrics: RecordingMetrics,
) -> None:
    accept(database, ("e1", "u1"), at=NOW - timedelta(milliseconds=6))
    accept(database, ("e2", "u2"), at=NOW - timedelta(milliseconds=1))

    relay_for(database, bus, clock, metrics).relay_once()

    assert metrics.timings == [
        (PUBLISH_LATENCY_METRIC, 10.0, {}),
        (PUBLISH_LATENCY_METRIC, 5.0, {}),
    ]
    assert metrics.gauges == [(BACKLOG_METRIC, 0, {})]
    assert metrics.counters == []


def test_an_empty_outbox_publishes_nothing_and_reports_the_backlog_once_a_second(
    database: InMemoryUnitOfWorkFactory,
    bus: FakeEventBus,
    clock: FixedClock,
    metrics: RecordingMetrics,
) -> None:
    relay = relay_for(database, bus, clock, metrics)
    for _ in range(5):
        assert relay.relay_once() == RelayResult(0, 0, 0, 0, 0, full=False)
        clock.advance(timedelta(milliseconds=300))
    assert bus.rounds == []
    assert metrics.gauges == [(BACKLOG_METRIC, 0, {})] * 2  # at 0 ms and at 1,200 ms


def test_with_the_broker_down_nothing_is_marked_and_everything_goes_out_later_in_order(
    database: InMemoryUnitOfWorkFactory,
    bus: FakeEventBus,
    clock: FixedClock,
    metrics: RecordingMetrics,
) -> None:
    relay = relay_for(database, bus, clock, metrics)
    accept(database, ("e1", "u1"), ("e2", "u2"), at=NOW)
    bus.down = True

    failed = relay.relay_once()
    accept(database, ("e3", "u1"), at=clock.now())

    assert failed == RelayResult(read=2, sent=0, failed=2, held_back=0, backlog=2, full=False)
    assert pending_ids(database) == ["e1", "e2", "e3"]
    assert [row.attempts for row in database.state.outbox.values()] == [1, 1, 0]
    assert metrics.counters == [(PUBLISH_FAILURES_METRIC, 2, {})]
    assert metrics.gauges[-1] == (BACKLOG_METRIC, 2, {})

    bus.down = False
    recovered = relay.relay_once()

    assert recovered.sent == 3 and recovered.failed == 0
    assert bus.delivered == ["e1", "e2", "e3"]
    assert pending_ids(database) == []


def test_a_users_later_messages_stay_pending_behind_a_failed_one_other_users_go_on(
    database: InMemoryUnitOfWorkFactory,
    bus: FakeEventBus,
    clock: FixedClock,
    metrics: RecordingMetrics,
) -> None:
    accept(database, ("a1", "u1"), ("b1", "u2"), ("a2", "u1"), ("b2", "u2"), ("a3", "u1"), at=NOW)
    bus.refuse = {"a1"}
    relay = relay_for(database, bus, clock, metrics)

    result = relay.relay_once()

    # a2 and a3 were acknowledged, but marking them would let them overtake a1
    assert result == RelayResult(read=5, sent=2, failed=1, held_back=2, backlog=3, full=False)
    assert pending_ids(database) == ["a1", "a2", "a3"]

    bus.refuse = set()
    relay.relay_once()

    # This bus acknowledged a2 and a3 without a1 (Kafka's idempotent producer never does, see
    # domain/relay.py); even so the last copy of each of u1's events comes in order.
    last_copies = list(reversed(dict.fromkeys(reversed(bus.delivered))))
    assert [e for e in last_copies if e.startswith("a")] == ["a1", "a2", "a3"]
    assert pending_ids(database) == []


def test_a_full_batch_reads_the_oldest_and_counts_the_rest_of_the_backlog(
    database: InMemoryUnitOfWorkFactory,
    bus: FakeEventBus,
    clock: FixedClock,
    metrics: RecordingMetrics,
) -> None:
    accept(database, *[(f"e{i}", f"u{i % 2}") for i in range(5)], at=NOW)
    relay = relay_for(database, bus, clock, metrics, batch_size=2)

    results = [relay.relay_once()]
    clock.advance(timedelta(seconds=1))
    results += [relay.relay_once() for _ in range(2)]

    assert [(r.read, r.full, r.backlog) for r in results] == [
        (2, True, 3),
        (2, True, 1),
        (1, False, 0),
    ]
    assert bus.rounds == [["e0", "e1"], ["e2", "e3"], ["e4"]]
    assert [value for _, value, _ in metrics.gauges] == [3, 1, 0]


def test_full_rounds_count_the_backlog_at_most_once_a_second(
    database: InMemoryUnitOfWorkFactory,
    bus: FakeEventBus,
    clock: FixedClock,
    metrics: RecordingMetrics,
) -> None:
    accept(database, *[(f"e{i}", f"u{i % 2}") for i in range(7)], at=NOW)
    relay = relay_for(database, bus, clock, metrics, batch_size=2)

    backlogs = []
    for _ in range(4):
        backlogs.append(relay.relay_once().backlog)
        clock.advance(timedelta(milliseconds=400))

    # counted at 0 ms and at 1,200 ms; the last round read everything that was left
    assert backlogs == [5, None, None, 0]
    assert [value for _, value, _ in metrics.gauges] == [5, 0]


def test_a_database_that_is_down_stops_the_round_before_anything_is_published(
    database: InMemoryUnitOfWorkFactory,
    bus: FakeEventBus,
    clock: FixedClock,
    metrics: RecordingMetrics,
) -> None:
    accept(database, ("e1", "u1"), at=NOW)
    database.unavailable = True

    with pytest.raises(DependencyUnavailable):
        relay_for(database, bus, clock, metrics).relay_once()
    assert bus.rounds == []


def test_a_message_published_but_not_marked_goes_out_again(
    database: InMemoryUnitOfWorkFactory,
    bus: FakeEventBus,
    clock: FixedClock,
    metrics: RecordingMetrics,
) -> None:
    accept(database, ("e1", "u1"), at=NOW)

    def database_fails() -> None:
        database.unavailable = True

    bus.on_publish = database_fails
    relay = relay_for(database, bus, clock, metrics)
    with pytest.raises(DependencyUnavailable):
        relay.relay_once()

    database.unavailable = False
    bus.on_publish = None
    relay.relay_once()

    assert bus.delivered == ["e1", "e1"]  # at least once: consumers de-duplicate by eventId
    assert pending_ids(database) == []


def test_purge_deletes_only_messages_sent_longer_ago_than_the_retention(
    database: InMemoryUnitOfWorkFactory,
    bus: FakeEventBus,
    clock: FixedClock,
    metrics: RecordingMetrics,
) -> None:
    relay = relay_for(database, bus, clock, metrics)
    accept(database, ("old", "u1"), at=NOW)
    relay.relay_once()
    clock.advance(timedelta(hours=2))
    accept(database, ("recent", "u1"), at=clock.now())
    relay.relay_once()
    accept(database, ("unsent", "u1"), at=clock.now())

    assert relay.purge_sent(timedelta(hours=1)) == 1
    remaining = {event_id(row) for row in database.state.outbox.values()}
    assert remaining == {"recent", "unsent"}


def test_report_backlog_counts_the_unsent_messages(
    database: InMemoryUnitOfWorkFactory, metrics: RecordingMetrics
) -> None:
    accept(database, ("e1", "u1"), ("e2", "u1"), at=NOW)
    assert report_backlog(database, metrics) == 2
    assert metrics.gauges == [(BACKLOG_METRIC, 2, {})]


def test_backoff_doubles_up_to_the_cap_and_jitters_downwards() -> None:
    backoff = Backoff(base_s=0.1, cap_s=5.0, jitter=0.5)
    assert backoff.delay_s(0, 0.0) == 0.0
    assert [backoff.delay_s(n, 0.0) for n in (1, 2, 3, 4)] == [0.1, 0.2, 0.4, 0.8]
    assert backoff.delay_s(20, 0.0) == 5.0
    assert backoff.delay_s(10_000, 0.0) == 5.0
    assert backoff.delay_s(3, 0.999) == pytest.approx(0.4 * 0.5005)


def test_pacing_reads_again_at_once_after_work_polls_when_idle_and_backs_off_on_failure() -> None:
    pacing = RelayPacing(idle_poll_s=0.005, backoff=Backoff(base_s=0.1, cap_s=5.0, jitter=0.0))
    busy = RelayResult(10, 10, 0, 0, 0, full=False)
    idle = RelayResult(0, 0, 0, 0, 0, full=False)
    failing = RelayResult(10, 0, 10, 0, 10, full=False)
    assert pacing.pause_s(busy, 0, 0.5) == 0.0
    assert pacing.pause_s(idle, 0, 0.5) == 0.005
    assert pacing.pause_s(failing, 3, 0.5) == pytest.approx(0.4)


def test_one_relay_holds_the_lease_and_renews_it_only_after_a_third_of_its_ttl(
    clock: FixedClock,
) -> None:
    leases = InMemoryLeases()
    ttl = timedelta(seconds=15)
    first = LeaseKeeper(leases, "outbox-relay", "relay-a", clock, ttl)
    second = LeaseKeeper(leases, "outbox-relay", "relay-b", clock, ttl)

    assert first.hold() and not second.hold()
    clock.advance(timedelta(seconds=4))
    assert first.hold()
    assert leases.held["outbox-relay"] == ("relay-a", NOW + ttl)  # not renewed yet
    clock.advance(timedelta(seconds=2))
    assert first.hold()
    assert leases.held["outbox-relay"] == ("relay-a", clock.now() + ttl)

    first.release()
    assert second.hold()


def test_a_crashed_holders_lease_passes_on_once_it_expires(clock: FixedClock) -> None:
    leases = InMemoryLeases()
    ttl = timedelta(seconds=15)
    assert LeaseKeeper(leases, "outbox-relay", "crashed", clock, ttl).hold()
    successor = LeaseKeeper(leases, "outbox-relay", "successor", clock, ttl)
    assert not successor.hold()
    clock.advance(ttl)
    assert successor.hold()


def republished(metrics: RecordingMetrics) -> int:
    return sum(value for name, value, _ in metrics.counters if name == REPUBLISHED_METRIC)


def test_acknowledged_messages_the_database_failed_to_mark_are_counted_as_republished(
    database: InMemoryUnitOfWorkFactory,
    bus: FakeEventBus,
    clock: FixedClock,
    metrics: RecordingMetrics,
) -> None:
    accept(database, ("e1", "u1"), ("e2", "u2"), at=NOW)

    def database_fails() -> None:
        database.unavailable = True

    bus.on_publish = database_fails
    with pytest.raises(DependencyUnavailable):
        relay_for(database, bus, clock, metrics).relay_once()

    assert republished(metrics) == 2


def test_held_back_messages_are_counted_as_republished(
    database: InMemoryUnitOfWorkFactory,
    bus: FakeEventBus,
    clock: FixedClock,
    metrics: RecordingMetrics,
) -> None:
    accept(database, ("a1", "u1"), ("a2", "u1"), ("b1", "u2"), at=NOW)
    bus.refuse = {"a1"}

    relay_for(database, bus, clock, metrics).relay_once()

    assert republished(metrics) == 1  # a2; b1 was marked sent


def test_a_returning_broker_waits_at_most_a_second_of_backoff() -> None:
    failing = RelayResult(10, 0, 10, 0, 10, full=False)
    assert RelayPacing().pause_s(failing, 1_000, 0.0) == 1.0
