"""The contract of `ports.repositories.ViewerHistory` and `EngagementReader`, run unchanged
against the in-memory fake, SQLite and PostgreSQL; rows go in through the backend's own unit of
work and session recorder."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from domain.feed import Algorithm, FeedPage, FeedSession, ItemSource, ScoredVideo
from domain.interactions import InteractionEvent, InteractionType, StoredInteraction
from tests.contract.conftest import Storage

pytestmark = pytest.mark.contract

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
_ids = itertools.count(1)


def event(
    user: str, video: str, at: datetime, kind: InteractionType = InteractionType.LIKE
) -> StoredInteraction:
    return StoredInteraction(
        InteractionEvent(f"e{next(_ids)}", user, video, kind, 5_000, at), at, None
    )


def store(storage: Storage, *events: StoredInteraction) -> None:
    with storage.new_uow() as uow:
        uow.interactions.add(list(events))
        uow.commit()


def serve(storage: Storage, user: str, videos: list[str], at: datetime) -> None:
    items = tuple(ScoredVideo(v, 1.0, ItemSource.MODEL) for v in videos)
    session_id = f"s{next(_ids)}"
    session = FeedSession(session_id, user, Algorithm.LIGHTFM, None, "m1", None, items, at)
    page = FeedPage(session_id, 1, user, Algorithm.LIGHTFM, None, "m1", None, items, at)
    storage.sessions.record_new(session, page)


def test_recent_returns_the_viewers_own_rows_newest_first(storage: Storage) -> None:
    store(
        storage,
        event("u1", "v1", NOW - timedelta(hours=3)),
        event("u1", "v2", NOW - timedelta(hours=1), InteractionType.VIEW),
        event("u2", "v9", NOW - timedelta(hours=1)),
        event("u1", "v-old", NOW - timedelta(days=40)),
        event("u1", "v-hidden", NOW - timedelta(days=60), InteractionType.HIDE),
    )
    serve(storage, "u1", ["a", "b"], NOW - timedelta(hours=2))
    serve(storage, "u1", ["c"], NOW - timedelta(minutes=5))
    serve(storage, "u1", ["z"], NOW - timedelta(hours=9))
    serve(storage, "u2", ["y"], NOW - timedelta(minutes=1))

    interactions, served = storage.history.recent(
        "u1", NOW - timedelta(days=30), NOW - timedelta(hours=6), 100, 100
    )

    assert [(i.video_id, i.interaction_type) for i in interactions] == [
        ("v2", InteractionType.VIEW),
        ("v1", InteractionType.LIKE),
        ("v-hidden", InteractionType.HIDE),  # a hide of any age
    ]
    assert interactions[0].occurred_at == NOW - timedelta(hours=1)
    assert interactions[0].watch_time_ms == 5_000
    assert [(s.video_id, s.served_at) for s in served] == [
        ("c", NOW - timedelta(minutes=5)),
        ("a", NOW - timedelta(hours=2)),
        ("b", NOW - timedelta(hours=2)),
    ]


def test_recent_keeps_at_most_limit_rows_the_newest(storage: Storage) -> None:
    store(storage, *(event("u1", f"v{i}", NOW - timedelta(minutes=i)) for i in range(1, 8)))
    interactions, _ = storage.history.recent("u1", NOW - timedelta(days=1), NOW, 3, 3)
    assert [i.video_id for i in interactions] == ["v1", "v2", "v3"]


def test_recent_reads_the_newest_pages_only(storage: Storage) -> None:
    for minutes in (30, 20, 10):
        serve(storage, "u1", [f"m{minutes}"], NOW - timedelta(minutes=minutes))
    hour_ago = NOW - timedelta(hours=1)
    _, served = storage.history.recent("u1", NOW - timedelta(days=1), hour_ago, 9, 2)
    assert [s.video_id for s in served] == ["m10", "m20"]


def test_an_unknown_viewer_has_no_history(storage: Storage) -> None:
    assert storage.history.recent("nobody", NOW - timedelta(days=30), NOW, 100, 10) == ([], [])


def test_engagement_counts_distinct_viewers_of_positive_interactions(storage: Storage) -> None:
    at = NOW - timedelta(hours=1)
    store(
        storage,
        *(event("spammer", "v-spam", at, InteractionType.SHARE) for _ in range(20)),
        event("u1", "v-loved", at),
        event("u2", "v-loved", at, InteractionType.COMPLETE),
        event("u3", "v-loved", at, InteractionType.VIEW),  # 5 s of watch time: positive
        event("u4", "v-skipped", at, InteractionType.SKIP),
        event("u5", "v-too-old", NOW - timedelta(days=5)),
    )
    engaged = storage.history.engaged_viewers(NOW - timedelta(hours=48), NOW, 10)
    assert engaged == [("v-loved", 3), ("v-spam", 1)]
    assert storage.history.engaged_viewers(NOW - timedelta(hours=48), NOW, 1) == [("v-loved", 3)]
