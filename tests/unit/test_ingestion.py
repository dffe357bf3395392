"""The ingestion service on in-memory fakes: what is stored, what is refused, and idempotency."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from domain.auth import SERVICE_SCOPE, Principal
from domain.errors import Conflict, DependencyUnavailable, Forbidden, InvalidInput
from domain.feed import Algorithm, FeedConsumed, FeedPage, FeedSession, ItemSource, ScoredVideo
from domain.ingestion import InteractionIngestion
from domain.interactions import InteractionEvent, InteractionType
from tests.fakes import FixedClock, InMemoryUnitOfWorkFactory
from tests.fakes_feed import RecordingAnalytics

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
TOPIC = "feed.interactions.v1"
VIEWER = Principal("u1")


def event(event_id: str = "e1", **changes: object) -> InteractionEvent:
    base = InteractionEvent(
        event_id=event_id,
        user_id="u1",
        video_id="v1",
        interaction_type=InteractionType.LIKE,
        watch_time_ms=3_000,
        occurred_at=NOW - timedelta(seconds=10),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def session_of(page: FeedPage) -> FeedSession:
    """The session record the feed writes with its first page."""
    return FeedSession(
        page.feed_session_id,
        page.user_id,
        page.algorithm,
        page.fallback_reason,
        page.model_version,
        page.experiment_variant_id,
        page.items,
        page.created_at,
    )


@pytest.fixture
def database() -> InMemoryUnitOfWorkFactory:
    return InMemoryUnitOfWorkFactory()


@pytest.fixture
def ingestion(database: InMemoryUnitOfWorkFactory) -> InteractionIngestion:
    return InteractionIngestion(database, FixedClock(NOW), TOPIC)


def test_an_event_is_stored_with_an_outbox_message_keyed_by_user(
    ingestion: InteractionIngestion, database: InMemoryUnitOfWorkFactory
) -> None:
    receipt = ingestion.ingest(VIEWER, [event()], as_batch=False)
    assert receipt.event_ids == ("e1",) and receipt.newly_stored == 1
    stored = database.state.interactions["e1"]
    assert stored.received_at == NOW and stored.recommendation_score is None
    [pending] = database.state.outbox.values()
    assert pending.message.topic == TOPIC
    assert pending.message.key == "u1"
    assert pending.message.payload["eventId"] == "e1"
    assert pending.message.created_at == NOW


def test_the_same_event_twice_is_stored_and_announced_once(
    ingestion: InteractionIngestion, database: InMemoryUnitOfWorkFactory
) -> None:
    ingestion.ingest(VIEWER, [event()], as_batch=False)
    receipt = ingestion.ingest(VIEWER, [event(), event()], as_batch=True)
    assert receipt.event_ids == ("e1", "e1") and receipt.newly_stored == 0
    assert len(database.state.interactions) == 1
    assert len(database.state.outbox) == 1


def test_an_event_id_reused_for_different_content_is_a_conflict_and_stores_nothing(
    ingestion: InteractionIngestion, database: InMemoryUnitOfWorkFactory
) -> None:
    ingestion.ingest(VIEWER, [event()], as_batch=False)
    with pytest.raises(Conflict):
        ingestion.ingest(VIEWER, [event("e2"), event("e1", video_id="v9")], as_batch=True)
    assert set(database.state.interactions) == {"e1"}


def test_a_batch_repeating_an_event_id_with_other_content_names_the_field(
    ingestion: InteractionIngestion,
) -> None:
    with pytest.raises(InvalidInput) as caught:
        ingestion.ingest(VIEWER, [event(), event(video_id="v2")], as_batch=True)
    assert list(caught.value.fields) == ["events[1].eventId"]


def test_the_score_the_video_was_served_with_is_recorded(
    ingestion: InteractionIngestion, database: InMemoryUnitOfWorkFactory
) -> None:
    page = FeedPage(
        "s1",
        1,
        "u1",
        Algorithm.LIGHTFM,
        None,
        "m1",
        None,
        (ScoredVideo("v1", 0.9), ScoredVideo("v2", 0.4)),
        NOW,
    )
    with database() as uow:
        uow.feed_sessions.add(session_of(page))
        uow.feed_cache.add_page(page)
        uow.commit()
    ingestion.ingest(
        VIEWER,
        [
            event("a", feed_session_id="s1"),
            event("b", video_id="v3", feed_session_id="s1"),
            event("c", feed_session_id="other"),
        ],
        as_batch=True,
    )
    scores = {key: value.recommendation_score for key, value in database.state.interactions.items()}
    assert scores == {"a": 0.9, "b": None, "c": None}


def test_acting_for_another_viewer_is_forbidden_and_stores_nothing(
    ingestion: InteractionIngestion, database: InMemoryUnitOfWorkFactory
) -> None:
    with pytest.raises(Forbidden):
        ingestion.ingest(VIEWER, [event(), event("e2", user_id="u2")], as_batch=True)
    assert database.state.interactions == {}


def test_a_service_principal_writes_for_many_viewers(ingestion: InteractionIngestion) -> None:
    service = Principal("bot", frozenset({SERVICE_SCOPE}))
    receipt = ingestion.ingest(service, [event(), event("e2", user_id="u2")], as_batch=True)
    assert receipt.newly_stored == 2


def test_validation_errors_are_reported_per_event_and_nothing_is_stored(
    ingestion: InteractionIngestion, database: InMemoryUnitOfWorkFactory
) -> None:
    with pytest.raises(InvalidInput) as caught:
        ingestion.ingest(
            VIEWER,
            [
                event(),
                event("e2", watch_time_ms=-1),
                event("e3", occurred_at=NOW + timedelta(hours=1)),
            ],
            as_batch=True,
        )
    assert caught.value.fields.keys() == {"events[1].watchTime", "events[2].timestamp"}
    assert database.state.interactions == {}


@pytest.mark.parametrize("count", [0, 501])
def test_batch_size_is_bounded(ingestion: InteractionIngestion, count: int) -> None:
    with pytest.raises(InvalidInput):
        ingestion.ingest(VIEWER, [event(f"e{i}") for i in range(count)], as_batch=True)


def test_a_database_that_is_down_is_reported_as_unavailable(
    ingestion: InteractionIngestion, database: InMemoryUnitOfWorkFactory
) -> None:
    database.unavailable = True
    with pytest.raises(DependencyUnavailable):
        ingestion.ingest(VIEWER, [event()], as_batch=False)
    database.unavailable = False
    assert ingestion.ingest(VIEWER, [event()], as_batch=False).newly_stored == 1


def served_session(database: InMemoryUnitOfWorkFactory) -> None:
    """Session s1 of u1, variant `treatment`: page 1 (v1, v2), page 2 (v3 from exploration)."""
    first = FeedPage(
        "s1",
        1,
        "u1",
        Algorithm.LIGHTFM,
        None,
        "m1",
        "treatment",
        (ScoredVideo("v1", 0.9, ItemSource.MODEL), ScoredVideo("v2", 0.4, ItemSource.MODEL)),
        NOW,
    )
    second = replace(first, page_number=2, items=(ScoredVideo("v3", 0.1, ItemSource.EXPLORATION),))
    with database() as uow:
        uow.feed_sessions.add(session_of(first))
        uow.feed_cache.add_page(first)
        uow.feed_cache.add_page(second)
        uow.commit()


def test_an_interaction_on_a_served_video_is_reported_as_consumed_with_its_place(
    database: InMemoryUnitOfWorkFactory,
) -> None:
    served_session(database)
    analytics = RecordingAnalytics()
    ingestion = InteractionIngestion(database, FixedClock(NOW), TOPIC, analytics)

    ingestion.ingest(
        VIEWER,
        [
            event("a", video_id="v3", feed_session_id="s1", experiment_variant_id="forged"),
            event("b", video_id="never-served", feed_session_id="s1"),
            event("c", video_id="v1"),  # names no session
        ],
        as_batch=True,
    )

    assert analytics.consumed == [
        FeedConsumed(
            user_id="u1",
            event_id="a",
            video_id="v3",
            interaction_type="like",
            watch_time_ms=3_000,
            occurred_at=NOW - timedelta(seconds=10),
            feed_session_id="s1",
            rank=3,
            score=0.1,
            source=ItemSource.EXPLORATION,
            algorithm=Algorithm.LIGHTFM,
            experiment_variant_id="treatment",  # the server's record, not the client's claim
            model_version="m1",
        )
    ]


def test_a_retried_interaction_is_reported_consumed_once(
    database: InMemoryUnitOfWorkFactory,
) -> None:
    served_session(database)
    analytics = RecordingAnalytics()
    ingestion = InteractionIngestion(database, FixedClock(NOW), TOPIC, analytics)

    for _ in range(2):
        ingestion.ingest(VIEWER, [event("a", feed_session_id="s1")], as_batch=False)

    assert [c.event_id for c in analytics.consumed] == ["a"]


def test_another_viewers_session_is_never_reported_as_consumed(
    database: InMemoryUnitOfWorkFactory,
) -> None:
    served_session(database)
    analytics = RecordingAnalytics()
    ingestion = InteractionIngestion(database, FixedClock(NOW), TOPIC, analytics)

    ingestion.ingest(
        Principal("u2"), [event("x", user_id="u2", feed_session_id="s1")], as_batch=False
    )

    assert analytics.consumed == []


def test_a_refused_request_reports_nothing_consumed(
    database: InMemoryUnitOfWorkFactory,
) -> None:
    served_session(database)
    analytics = RecordingAnalytics()
    ingestion = InteractionIngestion(database, FixedClock(NOW), TOPIC, analytics)
    ingestion.ingest(VIEWER, [event("a", feed_session_id="s1")], as_batch=False)

    with pytest.raises(Conflict):  # "a" reused for another event: nothing of it commits
        ingestion.ingest(
            VIEWER,
            [event("b", video_id="v2", feed_session_id="s1"), event("a", video_id="v2")],
            as_batch=True,
        )

    assert [c.event_id for c in analytics.consumed] == ["a"]
