"""Ingestion against viewers who claim what is not theirs: another viewer's feed session, or
another viewer's eventId (issue #15, items 7 and 8)."""

from __future__ import annotations

import pytest

from domain.auth import Principal
from domain.errors import Conflict
from domain.feed import Algorithm, FeedPage, ScoredVideo
from domain.ingestion import InteractionIngestion, scoped_event_id
from domain.interactions import StoredInteraction
from tests.fakes import FixedClock, InMemoryUnitOfWorkFactory
from tests.unit.test_ingestion import NOW, TOPIC, event, session_of

pytestmark = pytest.mark.unit

ALICE, MALLORY = Principal("alice"), Principal("mallory")


@pytest.fixture
def database() -> InMemoryUnitOfWorkFactory:
    factory = InMemoryUnitOfWorkFactory()
    page = FeedPage(
        "alice-session",
        1,
        "alice",
        Algorithm.LIGHTFM,
        None,
        "m1",
        "treatment",
        (ScoredVideo("v1", 0.9),),
        NOW,
    )
    with factory() as uow:
        uow.feed_sessions.add(session_of(page))
        uow.feed_cache.add_page(page)
        uow.commit()
    return factory


@pytest.fixture
def ingestion(database: InMemoryUnitOfWorkFactory) -> InteractionIngestion:
    return InteractionIngestion(database, FixedClock(NOW), TOPIC)


def stored(database: InMemoryUnitOfWorkFactory) -> dict[str, StoredInteraction]:
    return dict(database.state.interactions)


def test_another_viewers_session_is_ignored_and_gets_no_score(
    ingestion: InteractionIngestion, database: InMemoryUnitOfWorkFactory
) -> None:
    claim = event(
        "m1",
        user_id="mallory",
        feed_session_id="alice-session",
        algorithm="lightfm",
        experiment_variant_id="treatment",
    )

    ingestion.ingest(MALLORY, [claim], as_batch=False)

    kept = stored(database)["m1"]
    assert kept.recommendation_score is None
    assert (kept.event.feed_session_id, kept.event.algorithm) == (None, None)
    assert kept.event.experiment_variant_id is None
    (pending,) = database.state.outbox.values()
    assert "feedSessionId" not in pending.message.payload


def test_the_viewers_own_session_attributes_from_the_record_not_the_claim(
    ingestion: InteractionIngestion, database: InMemoryUnitOfWorkFactory
) -> None:
    claim = event(
        "a1",
        user_id="alice",
        feed_session_id="alice-session",
        algorithm="trending",
        experiment_variant_id="control",
    )

    ingestion.ingest(ALICE, [claim], as_batch=False)

    kept = stored(database)["a1"]
    assert kept.recommendation_score == 0.9
    assert (kept.event.algorithm, kept.event.experiment_variant_id) == ("lightfm", "treatment")


def test_a_session_the_server_never_recorded_stays_as_reported_without_a_score(
    ingestion: InteractionIngestion, database: InMemoryUnitOfWorkFactory
) -> None:
    claim = event("a2", user_id="alice", feed_session_id="offline-page", algorithm="trending")

    ingestion.ingest(ALICE, [claim], as_batch=False)

    kept = stored(database)["a2"]
    assert (kept.event.feed_session_id, kept.event.algorithm) == ("offline-page", "trending")
    assert kept.recommendation_score is None


def test_another_viewers_event_id_is_accepted_as_if_new_and_leaves_theirs_alone(
    ingestion: InteractionIngestion, database: InMemoryUnitOfWorkFactory
) -> None:
    alices = event("shared-id", user_id="alice")
    ingestion.ingest(ALICE, [alices], as_batch=False)
    mallorys = event("shared-id", user_id="mallory", video_id="v9")

    first = ingestion.ingest(MALLORY, [mallorys], as_batch=False)
    retried = ingestion.ingest(MALLORY, [mallorys], as_batch=False)

    assert (first.event_ids, first.newly_stored) == (("shared-id",), 1)
    assert (retried.event_ids, retried.newly_stored) == (("shared-id",), 0)
    assert stored(database)["shared-id"].event == alices
    assert stored(database)[scoped_event_id(mallorys)].event.video_id == "v9"
    assert len(database.state.outbox) == 2


def test_a_viewer_whose_id_was_taken_first_still_stores_their_event(
    ingestion: InteractionIngestion, database: InMemoryUnitOfWorkFactory
) -> None:
    # mallory squats an id alice's client will use; alice's event is not blocked
    ingestion.ingest(MALLORY, [event("alice-42", user_id="mallory")], as_batch=False)
    alices = event("alice-42", user_id="alice")

    receipt = ingestion.ingest(ALICE, [alices], as_batch=False)

    assert receipt.newly_stored == 1
    assert stored(database)[scoped_event_id(alices)].event.user_id == "alice"


def test_the_viewers_own_event_id_reused_for_another_event_is_still_a_conflict(
    ingestion: InteractionIngestion,
) -> None:
    ingestion.ingest(ALICE, [event("a3", user_id="alice")], as_batch=False)
    with pytest.raises(Conflict):
        ingestion.ingest(ALICE, [event("a3", user_id="alice", video_id="v2")], as_batch=False)
