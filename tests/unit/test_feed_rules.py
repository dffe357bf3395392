"""The feed's rules on fakes: algorithm choice, fallbacks, experiments, pagination, cursors."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.auth import Principal
from domain.errors import Conflict, DependencyUnavailable, Forbidden, InvalidInput
from domain.experiments import Experiment, Variant
from domain.feed import Algorithm, FallbackReason
from domain.feed_service import FeedRequest
from tests.feed_harness import VIEWER, Harness

pytestmark = pytest.mark.unit

@pytest.fixture
def feed() -> Harness:
    return Harness()


def test_the_first_page_comes_from_the_model_with_its_metadata(feed: Harness) -> None:
    served = feed.service.page(VIEWER, FeedRequest("u1", limit=10))
    page = served.page
    assert page.algorithm is Algorithm.LIGHTFM and page.fallback_reason is None
    assert page.model_version == "m-test" and page.page_number == 1
    assert [i.video_id for i in page.items] == [f"v{i:03d}" for i in range(10)]
    assert served.next_cursor is not None
    assert feed.recommender.calls == [("u1", 50, 0.15)]  # the pool is ranked once, with a budget


def test_pages_of_a_session_never_repeat_and_keep_ranking_order(feed: Harness) -> None:
    served = feed.service.page(VIEWER, FeedRequest("u1", limit=20))
    seen = [i.video_id for i in served.page.items]
    while served.next_cursor:
        served = feed.service.page(VIEWER, FeedRequest("u1", limit=20, cursor=served.next_cursor))
        seen += [i.video_id for i in served.page.items]
    assert len(seen) == len(set(seen)) == 50  # the whole pool, once
    assert served.page.page_number == 3
    assert len(feed.recommender.calls) == 1  # later pages never ask the model again
    with feed.database() as uow:
        pages = uow.feed_cache.pages(served.page.feed_session_id)
    assert [p.page_number for p in pages] == [1, 2, 3]


def test_later_pages_keep_the_first_pages_algorithm(feed: Harness) -> None:
    feed.recommender.failure = FallbackReason.DEADLINE
    first = feed.service.page(VIEWER, FeedRequest("u1", limit=5))
    feed.recommender.failure = None  # the model recovers mid-session
    assert first.next_cursor is not None
    second = feed.service.page(VIEWER, FeedRequest("u1", limit=5, cursor=first.next_cursor))
    assert second.page.algorithm is Algorithm.TRENDING
    assert second.page.fallback_reason is FallbackReason.DEADLINE


@pytest.mark.parametrize(
    "reason",
    [
        FallbackReason.DEADLINE,
        FallbackReason.UNAVAILABLE,
        FallbackReason.ERROR,
        FallbackReason.CIRCUIT_OPEN,
        FallbackReason.COLD_START,
    ],
)
def test_every_model_failure_falls_back_to_trending_and_says_why(
    feed: Harness, reason: FallbackReason
) -> None:
    feed.recommender.failure = reason
    page = feed.service.page(VIEWER, FeedRequest("u1", limit=10)).page
    assert page.algorithm is Algorithm.TRENDING
    assert page.fallback_reason is reason
    assert page.model_version is None
    assert [i.video_id for i in page.items] == [f"t{i:02d}" for i in range(10)]
    assert feed.metrics.fallbacks == [(reason, None)]


def test_every_page_served_is_announced_to_analytics(feed: Harness) -> None:
    first = feed.service.page(VIEWER, FeedRequest("u1", limit=10))
    assert first.next_cursor
    feed.service.page(VIEWER, FeedRequest("u1", limit=10, cursor=first.next_cursor))
    assert [(e.page, e.item_count, e.algorithm) for e in feed.analytics.sent] == [
        (1, 10, Algorithm.LIGHTFM),
        (2, 10, Algorithm.LIGHTFM),
    ]
    assert {e.feed_session_id for e in feed.analytics.sent} == {first.page.feed_session_id}


def test_a_control_variant_is_served_trending_without_asking_the_model() -> None:
    control_only = Experiment("exp", (Variant("control", 1, Algorithm.TRENDING),))
    harness = Harness(experiment=control_only)
    page = harness.service.page(VIEWER, FeedRequest("u1")).page
    assert page.algorithm is Algorithm.TRENDING
    assert page.fallback_reason is FallbackReason.EXPERIMENT_CONTROL
    assert page.experiment_variant_id == "control"
    assert harness.recommender.calls == []


def test_experiment_assignment_is_sticky_and_follows_the_weights() -> None:
    experiment = Experiment("exp", (Variant("a", 1), Variant("b", 3)))
    users = [f"u{i}" for i in range(4000)]
    first = [experiment.assign(u).id for u in users]
    assert first == [experiment.assign(u).id for u in users]
    share_b = first.count("b") / len(first)
    assert 0.70 < share_b < 0.80


@pytest.mark.parametrize("limit", [0, 101])
def test_limit_is_bounded(feed: Harness, limit: int) -> None:
    with pytest.raises(InvalidInput) as caught:
        feed.service.page(VIEWER, FeedRequest("u1", limit=limit))
    assert "limit" in caught.value.fields


def test_a_viewer_reads_only_their_own_feed(feed: Harness) -> None:
    with pytest.raises(Forbidden):
        feed.service.page(VIEWER, FeedRequest("u2"))


def test_a_forged_cursor_is_refused(feed: Harness) -> None:
    cursor = feed.service.page(VIEWER, FeedRequest("u1", limit=5)).next_cursor
    assert cursor
    body, _, signature = cursor.partition(".")
    tampered = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1] + "." + signature
    with pytest.raises(InvalidInput) as caught:
        feed.service.page(VIEWER, FeedRequest("u1", cursor=tampered))
    assert "cursor" in caught.value.fields


def test_an_expired_cursor_is_refused(feed: Harness) -> None:
    cursor = feed.service.page(VIEWER, FeedRequest("u1", limit=5)).next_cursor
    assert cursor
    feed.clock.advance(timedelta(hours=2))
    with pytest.raises(InvalidInput, match="expired"):
        feed.service.page(VIEWER, FeedRequest("u1", cursor=cursor))


def test_another_viewers_cursor_is_refused_even_for_a_service_token(feed: Harness) -> None:
    cursor = feed.service.page(VIEWER, FeedRequest("u1", limit=5)).next_cursor
    assert cursor
    service = Principal("bot", frozenset({"feed:service"}))
    with pytest.raises(InvalidInput, match="another viewer"):
        feed.service.page(service, FeedRequest("u2", cursor=cursor))


def test_the_same_cursor_twice_serves_the_same_page(feed: Harness) -> None:
    cursor = feed.service.page(VIEWER, FeedRequest("u1", limit=5)).next_cursor
    assert cursor
    again = [feed.service.page(VIEWER, FeedRequest("u1", cursor=cursor)) for _ in range(2)]
    assert again[0].page == again[1].page
    assert again[0].first_rank == 6


def test_a_client_chosen_session_id_restarts_idempotently_and_is_not_shareable(
    feed: Harness,
) -> None:
    first = feed.service.page(VIEWER, FeedRequest("u1", limit=5, feed_session_id="mine"))
    replay = feed.service.page(VIEWER, FeedRequest("u1", limit=5, feed_session_id="mine"))
    assert replay.page == first.page
    with pytest.raises(Conflict):
        feed.service.page(Principal("u2"), FeedRequest("u2", feed_session_id="mine"))


def test_a_database_outage_still_serves_one_page_without_a_cursor(feed: Harness) -> None:
    feed.database.unavailable = True
    served = feed.service.page(VIEWER, FeedRequest("u1", limit=5))
    assert len(served.page.items) == 5
    assert served.next_cursor is None


def test_no_model_and_no_trending_yet_is_unavailable() -> None:
    harness = Harness(load_trending=False)
    harness.recommender.failure = FallbackReason.UNAVAILABLE
    with pytest.raises(DependencyUnavailable):
        harness.service.page(VIEWER, FeedRequest("u1"))
