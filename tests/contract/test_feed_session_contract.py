"""The contracts of `ports.repositories.FeedSessionRepository` (`uow.feed_sessions`) and
`FeedSessionRecorder`, run unchanged against the in-memory fake, SQLite and PostgreSQL
(conftest.py's backends)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.errors import Conflict
from domain.feed import Algorithm, FallbackReason, FeedPage, FeedSession, ScoredVideo
from tests.contract.conftest import NewUnitOfWork, Storage

pytestmark = pytest.mark.contract

T0 = datetime(2026, 11, 24, 6, 55, 0, 123_456, tzinfo=UTC)
INDIA = timezone(timedelta(hours=5, minutes=30))
HOSTILE = "'; DROP TABLE feed_sessions; -- 🎬🔥"
LONGEST_ID = "é🎬" * 64  # 128 characters, most of them outside the BMP


def session(feed_session_id: str, *candidates: tuple[str, float], **changes: object) -> FeedSession:
    built = FeedSession(
        feed_session_id=feed_session_id,
        user_id="viewer-1",
        algorithm=Algorithm.LIGHTFM,
        fallback_reason=None,
        model_version="2026-11-24T02:00:00Z",
        experiment_variant_id=None,
        candidates=tuple(ScoredVideo(video_id, score) for video_id, score in candidates),
        created_at=T0,
    )
    return replace(built, **changes)  # type: ignore[arg-type]


def store(new_uow: NewUnitOfWork, *sessions: FeedSession) -> None:
    with new_uow() as uow:
        for item in sessions:
            uow.feed_sessions.add(item)
        uow.commit()


def test_a_session_round_trips_every_field_verbatim(new_uow: NewUnitOfWork) -> None:
    original = session(
        LONGEST_ID,
        ("ビデオ-1", 0.987654321012345),
        (HOSTILE, 0.5),
        ("v3", 0.0),
        ("v4", -1.25e-7),
        user_id=HOSTILE,
        algorithm=Algorithm.TRENDING,
        fallback_reason=FallbackReason.COLD_START,
        model_version=LONGEST_ID,
        experiment_variant_id="variant-β",
        created_at=datetime(2026, 11, 24, 12, 25, 0, 1, tzinfo=INDIA),
    )

    store(new_uow, original)

    with new_uow() as uow:
        got = uow.feed_sessions.get(LONGEST_ID)
    assert got == original
    assert got is not None
    assert type(got.algorithm) is Algorithm
    assert type(got.fallback_reason) is FallbackReason
    assert isinstance(got.candidates, tuple)
    assert [item.video_id for item in got.candidates] == ["ビデオ-1", HOSTILE, "v3", "v4"]
    assert got.created_at.utcoffset() == timedelta(0)
    assert got.created_at == datetime(2026, 11, 24, 6, 55, 0, 1, tzinfo=UTC)


def test_a_session_without_optional_fields_or_candidates_round_trips(
    new_uow: NewUnitOfWork,
) -> None:
    bare = session("s-bare", model_version=None)

    store(new_uow, bare)

    with new_uow() as uow:
        assert uow.feed_sessions.get("s-bare") == bare


def test_a_large_candidate_pool_keeps_its_order(new_uow: NewUnitOfWork) -> None:
    pool = [(f"video-{n:04d}", 1.0 - n / 1_000) for n in range(1_000)]
    store(new_uow, session("s1", *pool))

    with new_uow() as uow:
        got = uow.feed_sessions.get("s1")
    assert got is not None
    assert [(item.video_id, item.score) for item in got.candidates] == pool


def test_an_unknown_session_is_none(new_uow: NewUnitOfWork) -> None:
    store(new_uow, session("known"))

    with new_uow() as uow:
        assert uow.feed_sessions.get("unknown") is None
        assert uow.feed_sessions.get("") is None


def test_a_stored_session_id_is_refused_at_add_and_the_unit_of_work_carries_on(
    new_uow: NewUnitOfWork,
) -> None:
    first = session("s1", ("v1", 0.9))
    store(new_uow, first)

    with new_uow() as uow:
        with pytest.raises(Conflict):
            uow.feed_sessions.add(session("s1", ("v2", 0.1), user_id="viewer-2"))
        uow.feed_sessions.add(session("s2"))
        uow.commit()

    with new_uow() as uow:
        assert uow.feed_sessions.get("s1") == first
        assert uow.feed_sessions.get("s2") == session("s2")


def test_a_session_id_added_twice_in_one_unit_of_work_is_a_conflict(
    new_uow: NewUnitOfWork,
) -> None:
    with new_uow() as uow:
        uow.feed_sessions.add(session("s1", ("v1", 0.9)))
        with pytest.raises(Conflict):
            uow.feed_sessions.add(session("s1"))
        uow.commit()

    with new_uow() as uow:
        assert uow.feed_sessions.get("s1") == session("s1", ("v1", 0.9))


def test_a_staged_session_is_visible_inside_its_unit_of_work_only_until_rollback(
    new_uow: NewUnitOfWork,
) -> None:
    with new_uow() as uow:
        uow.feed_sessions.add(session("s1"))
        assert uow.feed_sessions.get("s1") == session("s1")

    with new_uow() as uow:
        assert uow.feed_sessions.get("s1") is None


# --- FeedSessionRecorder: a new session with its first page, outside a unit of work -------------


def first_page(of: FeedSession, count: int = 2, **changes: object) -> FeedPage:
    built = FeedPage(
        feed_session_id=of.feed_session_id,
        page_number=1,
        user_id=of.user_id,
        algorithm=of.algorithm,
        fallback_reason=of.fallback_reason,
        model_version=of.model_version,
        experiment_variant_id=of.experiment_variant_id,
        items=of.candidates[:count],
        created_at=of.created_at,
    )
    return replace(built, **changes)  # type: ignore[arg-type]


def test_a_recorded_session_and_its_first_page_round_trip_verbatim(storage: Storage) -> None:
    new = session(
        LONGEST_ID,
        ("ビデオ-1", 0.987654321012345),
        (HOSTILE, 0.5),
        ("v3", -1.25e-7),
        user_id=HOSTILE,
        algorithm=Algorithm.TRENDING,
        fallback_reason=FallbackReason.DEADLINE,
        model_version=None,
        experiment_variant_id="variant-β",
        created_at=datetime(2026, 11, 24, 12, 25, 0, 1, tzinfo=INDIA),
    )
    page = first_page(new)

    storage.sessions.record_new(new, page)

    with storage.new_uow() as uow:
        assert uow.feed_sessions.get(LONGEST_ID) == new
        assert uow.feed_cache.pages(LONGEST_ID) == [page]
        assert uow.feed_cache.served_scores(LONGEST_ID, ["ビデオ-1", "v3"]) == {
            "ビデオ-1": 0.987654321012345
        }


def test_recording_a_taken_session_id_is_a_conflict_and_writes_nothing(storage: Storage) -> None:
    taken = session("s1", ("v1", 0.9), ("v2", 0.8))
    storage.sessions.record_new(taken, first_page(taken, 1))
    again = session("s1", ("v9", 0.1), user_id="viewer-2")

    with pytest.raises(Conflict):
        storage.sessions.record_new(again, first_page(again))

    with storage.new_uow() as uow:
        assert uow.feed_sessions.get("s1") == taken
        assert uow.feed_cache.pages("s1") == [first_page(taken, 1)]


def test_recording_a_page_that_is_not_the_sessions_first_is_refused(storage: Storage) -> None:
    new = session("s1", ("v1", 0.9))

    with pytest.raises(ValueError, match="not the first page"):
        storage.sessions.record_new(new, first_page(new, page_number=2))
    with pytest.raises(ValueError, match="not the first page"):
        storage.sessions.record_new(new, first_page(new, feed_session_id="s2"))

    with storage.new_uow() as uow:
        assert uow.feed_sessions.get("s1") is None
        assert uow.feed_cache.pages("s1") == []


def test_a_recorded_session_takes_later_pages_in_a_unit_of_work(storage: Storage) -> None:
    new = session("s1", ("v1", 0.9), ("v2", 0.8), ("v3", 0.7))
    storage.sessions.record_new(new, first_page(new, 1))
    second = replace(first_page(new, 1), page_number=2, items=new.candidates[1:])

    with storage.new_uow() as uow:
        uow.feed_cache.add_page(second)
        uow.commit()

    with storage.new_uow() as uow:
        assert [p.page_number for p in uow.feed_cache.pages("s1")] == [1, 2]
