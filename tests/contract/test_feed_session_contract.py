"""The contract of `ports.repositories.FeedSessionRepository` (`uow.feed_sessions`), run
unchanged against the in-memory fake, SQLite and PostgreSQL (conftest.py's backends)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.errors import Conflict
from domain.feed import Algorithm, FallbackReason, FeedSession, ScoredVideo
from tests.contract.conftest import NewUnitOfWork

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
