"""The contract of `ports.repositories.Leases`, run unchanged against the in-memory fake,
SQLite and PostgreSQL (conftest.py's backends)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest

from ports.repositories import Leases
from tests.contract.conftest import Storage

pytestmark = pytest.mark.contract

T0 = datetime(2026, 11, 24, 2, 0, 0, 123_456, tzinfo=UTC)
TTL = timedelta(seconds=30)
INDIA = timezone(timedelta(hours=5, minutes=30))
RETRAIN = "nightly-retrain"


@pytest.fixture
def leases(storage: Storage) -> Leases:
    return storage.leases


def test_a_free_lease_is_taken_and_another_holder_is_refused_until_it_expires(
    leases: Leases,
) -> None:
    assert leases.acquire(RETRAIN, "worker-a", T0, TTL)

    assert not leases.acquire(RETRAIN, "worker-b", T0, TTL)
    assert not leases.acquire(RETRAIN, "worker-b", T0 + TTL - timedelta(microseconds=1), TTL)
    assert leases.acquire(RETRAIN, "worker-b", T0 + TTL, TTL)  # expired at exactly T0 + ttl
    assert not leases.acquire(RETRAIN, "worker-a", T0 + TTL, TTL)  # a has lost it


def test_the_holder_acquiring_again_renews_its_lease(leases: Leases) -> None:
    assert leases.acquire(RETRAIN, "worker-a", T0, TTL)

    assert leases.acquire(RETRAIN, "worker-a", T0 + timedelta(seconds=20), TTL)

    # without the renewal the lease would have expired at T0 + 30 s
    assert not leases.acquire(RETRAIN, "worker-b", T0 + timedelta(seconds=49), TTL)
    assert leases.acquire(RETRAIN, "worker-b", T0 + timedelta(seconds=50), TTL)


def test_the_holder_may_renew_even_after_its_lease_expired_if_nobody_took_it(
    leases: Leases,
) -> None:
    assert leases.acquire(RETRAIN, "worker-a", T0, TTL)

    assert leases.acquire(RETRAIN, "worker-a", T0 + timedelta(hours=1), TTL)
    assert not leases.acquire(RETRAIN, "worker-b", T0 + timedelta(hours=1), TTL)


def test_expiry_compares_instants_whatever_the_offset(leases: Leases) -> None:
    assert leases.acquire(RETRAIN, "worker-a", T0.astimezone(INDIA), TTL)

    assert not leases.acquire(RETRAIN, "worker-b", T0 + timedelta(seconds=29), TTL)
    assert leases.acquire(RETRAIN, "worker-b", (T0 + TTL).astimezone(INDIA), TTL)


def test_a_released_lease_can_be_taken_at_once(leases: Leases) -> None:
    assert leases.acquire(RETRAIN, "worker-a", T0, TTL)

    leases.release(RETRAIN, "worker-a")

    assert leases.acquire(RETRAIN, "worker-b", T0 + timedelta(seconds=1), TTL)


def test_a_release_by_someone_else_does_nothing(leases: Leases) -> None:
    assert leases.acquire(RETRAIN, "worker-a", T0, TTL)

    leases.release(RETRAIN, "worker-b")
    leases.release("never-taken", "worker-a")

    assert not leases.acquire(RETRAIN, "worker-b", T0 + timedelta(seconds=1), TTL)
    assert leases.acquire(RETRAIN, "worker-a", T0 + timedelta(seconds=1), TTL)


def test_a_holder_that_lost_its_lease_cannot_release_the_new_holders(leases: Leases) -> None:
    assert leases.acquire(RETRAIN, "worker-a", T0, TTL)
    assert leases.acquire(RETRAIN, "worker-b", T0 + TTL, TTL)

    leases.release(RETRAIN, "worker-a")

    assert not leases.acquire(RETRAIN, "worker-c", T0 + TTL, TTL)


def test_leases_of_different_names_are_independent(leases: Leases) -> None:
    assert leases.acquire(RETRAIN, "worker-a", T0, TTL)

    assert leases.acquire("outbox-relay", "worker-b", T0, TTL)
    leases.release("outbox-relay", "worker-b")
    assert not leases.acquire(RETRAIN, "worker-b", T0, TTL)


def test_a_lease_without_a_positive_ttl_is_refused(leases: Leases) -> None:
    for ttl in (timedelta(0), timedelta(seconds=-1)):
        with pytest.raises(ValueError, match="ttl"):
            leases.acquire(RETRAIN, "worker-a", T0, ttl)

    assert leases.acquire(RETRAIN, "worker-b", T0, TTL)


@pytest.mark.parametrize("taken_before", [True, False], ids=["expired", "never-taken"])
def test_of_holders_racing_for_a_free_lease_exactly_one_wins(
    leases: Leases, taken_before: bool
) -> None:
    if taken_before:
        assert leases.acquire(RETRAIN, "crashed-worker", T0, TTL)
    now = T0 + timedelta(minutes=5)
    holders = [f"worker-{n}" for n in range(4)]
    start = threading.Barrier(len(holders))
    won: dict[str, bool] = {}

    def race(holder: str) -> None:
        start.wait(5)
        won[holder] = leases.acquire(RETRAIN, holder, now, TTL)

    threads = [threading.Thread(target=race, args=(holder,)) for holder in holders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    winners = [holder for holder, ok in won.items() if ok]
    assert len(won) == len(holders)
    assert len(winners) == 1
    # the winner holds it: it renews, everybody else is still refused
    assert leases.acquire(RETRAIN, winners[0], now, TTL)
    assert not any(
        leases.acquire(RETRAIN, holder, now, TTL) for holder in holders if holder != winners[0]
    )
