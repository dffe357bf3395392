"""The contract of `ports.repositories.ActivityReader`, run unchanged against the in-memory
fake, SQLite and PostgreSQL (conftest.py's backends); interactions go in through the unit of
work of the same backend."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.feed import VideoActivity
from domain.interactions import InteractionEvent, InteractionType, StoredInteraction
from tests.contract.conftest import NewUnitOfWork, Storage

pytestmark = pytest.mark.contract

START = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
END = START + timedelta(hours=1)
INDIA = timezone(timedelta(hours=5, minutes=30))
TICK = timedelta(microseconds=1)

_event_ids = itertools.count(1)


def interaction(
    video_id: str,
    occurred_at: datetime,
    kind: InteractionType = InteractionType.VIEW,
    watch_time_ms: int = 1_000,
    user_id: str = "viewer-1",
) -> StoredInteraction:
    event = InteractionEvent(
        event_id=f"e{next(_event_ids)}",
        user_id=user_id,
        video_id=video_id,
        interaction_type=kind,
        watch_time_ms=watch_time_ms,
        occurred_at=occurred_at,
    )
    return StoredInteraction(event, END + timedelta(days=1), None)


def store(new_uow: NewUnitOfWork, *interactions: StoredInteraction) -> None:
    with new_uow() as uow:
        uow.interactions.add(list(interactions))
        uow.commit()


def by_key(activity: list[VideoActivity]) -> dict[tuple[str, str], tuple[int, int]]:
    keyed = {(a.video_id, a.interaction_type): (a.events, a.watch_time_ms) for a in activity}
    assert len(keyed) == len(activity), "one entry per (video, type)"
    return keyed


def test_activity_is_counted_and_summed_per_video_and_type(storage: Storage) -> None:
    middle = START + timedelta(minutes=30)
    store(
        storage.new_uow,
        interaction("v1", middle, InteractionType.VIEW, 1_500),
        interaction("v1", middle, InteractionType.VIEW, 2_500),
        interaction("v1", middle + timedelta(minutes=1), InteractionType.VIEW, 0),
        interaction("v1", middle, InteractionType.LIKE, 0),
        interaction("v1", middle, InteractionType.COMPLETE, 86_400_000),
        interaction("v1", middle, InteractionType.COMPLETE, 86_400_000),
        interaction("ビデオ-2", middle, InteractionType.SKIP, 300),
    )

    activity = storage.activity.activity_between(START, END)

    assert by_key(activity) == {
        ("v1", "view"): (3, 4_000),
        ("v1", "like"): (1, 0),
        ("v1", "complete"): (2, 172_800_000),  # beyond 32 bits: sums must not overflow
        ("ビデオ-2", "skip"): (1, 300),
    }
    assert all(type(a.events) is int and type(a.watch_time_ms) is int for a in activity)


def test_the_start_is_inclusive_and_the_end_exclusive(storage: Storage) -> None:
    store(
        storage.new_uow,
        interaction("before-start", START - TICK),
        interaction("at-start", START),
        interaction("before-end", END - TICK),
        interaction("at-end", END),
    )

    activity = storage.activity.activity_between(START, END)

    assert by_key(activity) == {
        ("at-start", "view"): (1, 1_000),
        ("before-end", "view"): (1, 1_000),
    }


def test_bounds_compare_instants_whatever_their_offset(storage: Storage) -> None:
    store(storage.new_uow, interaction("v1", START), interaction("v2", END - TICK))

    activity = storage.activity.activity_between(START.astimezone(INDIA), END.astimezone(INDIA))

    assert {a.video_id for a in activity} == {"v1", "v2"}


def test_an_empty_range_has_no_activity(storage: Storage) -> None:
    assert storage.activity.activity_between(START, END) == []

    store(storage.new_uow, interaction("v1", START), interaction("v2", END))

    assert storage.activity.activity_between(START, START) == []
    assert storage.activity.activity_between(END, START) == []
    assert storage.activity.activity_between(END + TICK, END + timedelta(days=1)) == []


def test_only_committed_interactions_count_and_an_open_writer_does_not_block_reading(
    storage: Storage,
) -> None:
    store(storage.new_uow, interaction("v1", START))

    # On SQLite the open unit of work holds the write lock: a reader that wanted it would
    # wait out the busy timeout and fail.
    with storage.new_uow() as uow:
        uow.interactions.add([interaction("v1", START), interaction("v2", START)])
        activity = storage.activity.activity_between(START, END)

    assert by_key(activity) == {("v1", "view"): (1, 1_000)}


def test_a_naive_bound_is_refused_as_a_programming_error(storage: Storage) -> None:
    with pytest.raises(ValueError, match="naive"):
        storage.activity.activity_between(START.replace(tzinfo=None), END)


def test_viewer_activity_is_counted_and_summed_per_viewer_video_and_type(
    storage: Storage,
) -> None:
    middle = START + timedelta(minutes=30)
    store(
        storage.new_uow,
        interaction("v1", middle, InteractionType.VIEW, 1_500, "ann"),
        interaction("v1", middle, InteractionType.VIEW, 2_500, "ann"),
        interaction("v1", middle, InteractionType.VIEW, 700, "bob"),
        interaction("v1", middle, InteractionType.SHARE, 0, "bob"),
        interaction("v2", END, InteractionType.SHARE, 0, "bob"),  # the end is exclusive
    )

    activity = storage.activity.viewer_activity_between(START, END)

    assert sorted(
        (a.user_id, a.video_id, a.interaction_type, a.events, a.watch_time_ms) for a in activity
    ) == [
        ("ann", "v1", "view", 2, 4_000),
        ("bob", "v1", "share", 1, 0),
        ("bob", "v1", "view", 1, 700),
    ]
