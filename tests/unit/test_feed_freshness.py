"""The feed reacts to what the viewer does: never again, rotation, fresh positives, exploration,
and the sources chosen per experiment variant (on fakes, through the composition root)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.auth import Principal
from domain.board_sources import BoardSource
from domain.cursor import CursorCodec
from domain.experiments import Experiment, Variant
from domain.feed import Algorithm, FallbackReason, ItemSource, Personalization
from domain.feed_pool import FeedSources, PoolBuilder, PoolPolicy
from domain.feed_service import FeedRequest, FeedService, ServedPage
from domain.interactions import InteractionType
from tests.feed_harness import Harness

pytestmark = pytest.mark.unit


def first_page(harness: Harness, limit: int = 10, user: str = "u1") -> ServedPage:
    return harness.service.page(Principal(user), FeedRequest(user, limit=limit))


def ids(served: ServedPage) -> list[str]:
    return [item.video_id for item in served.page.items]


@pytest.mark.parametrize("kind", list(InteractionType))
def test_a_video_the_viewer_touched_is_gone_from_their_next_session(kind: InteractionType) -> None:
    harness = Harness()
    top = ids(first_page(harness))[0]
    harness.interact("u1", top, kind)
    assert top not in ids(first_page(harness, limit=50))
    assert top in harness.recommender.requests[-1].exclude


def test_seen_videos_are_left_out_of_trending_too() -> None:
    harness = Harness()
    harness.recommender.failure = FallbackReason.UNAVAILABLE
    trending_top = ids(first_page(harness))[0]
    harness.interact("u1", trending_top, InteractionType.VIEW)
    served = first_page(harness, limit=50)
    assert served.page.fallback_reason is FallbackReason.UNAVAILABLE
    assert trending_top not in ids(served)


def test_a_hide_stays_hidden_after_the_seen_window_and_a_view_does_not() -> None:
    harness = Harness()
    harness.interact("u1", "v000", InteractionType.HIDE, ago=timedelta(days=45))
    harness.interact("u1", "v001", InteractionType.VIEW, ago=timedelta(days=45))
    served = ids(first_page(harness, limit=50))
    assert "v000" not in served
    assert "v001" in served


def test_other_viewers_interactions_change_nothing_for_this_viewer() -> None:
    harness = Harness()
    before = ids(first_page(harness, user="u2"))
    harness.interact("u1", before[0])
    harness.clock.advance(timedelta(hours=7))  # past the rotation window
    assert ids(first_page(harness, user="u2")) == before


def test_two_refreshes_in_a_row_share_no_video_while_candidates_last() -> None:
    harness = Harness(pool_size=50)
    first = first_page(harness, limit=20)
    second = first_page(harness, limit=20)
    assert not set(ids(first)) & set(ids(second))
    # The first session's pool beyond its first page was never served: it may come back.
    assert ids(second)[0] == ids(first_page(Harness(pool_size=50), limit=21))[20]


def test_when_candidates_run_out_the_least_recently_served_come_back_first() -> None:
    harness = Harness(pool_size=10)
    catalogue = [f"v{i:03d}" for i in range(10)]
    harness.recommender.catalogue = catalogue
    early = first_page(harness, limit=5)
    harness.clock.advance(timedelta(minutes=10))
    harness.recommender.catalogue = catalogue[::-1]  # the model changed its mind
    later = first_page(harness, limit=5)
    harness.clock.advance(timedelta(minutes=10))
    third = first_page(harness, limit=10)
    assert ids(early) == catalogue[:5]
    assert ids(later) == catalogue[:4:-1]  # v009..v005: the rest of the catalogue
    # All ten were served lately: the older page's videos come back first, each page's in
    # the model's current order.
    assert ids(third) == [*catalogue[4::-1], *catalogue[:4:-1]]
    scores = [item.score for item in third.page.items]
    assert scores == sorted(scores, reverse=True)


def test_rotation_ends_after_its_window() -> None:
    harness = Harness()
    first = ids(first_page(harness))
    harness.clock.advance(timedelta(hours=6, minutes=1))
    assert ids(first_page(harness)) == first


def test_fresh_positives_go_to_the_model_and_the_page_says_realtime() -> None:
    harness = Harness()
    assert first_page(harness).page.personalization is Personalization.MODEL
    harness.interact("u1", "v150", InteractionType.LIKE)
    harness.interact("u1", "v151", InteractionType.SKIP)
    served = first_page(harness)
    sent = harness.recommender.requests[-1].fresh_positives
    assert [positive.video_id for positive in sent] == ["v150"]
    assert sent[0].weight == 3.0
    assert served.page.personalization is Personalization.REALTIME
    assert harness.analytics.sent[-1].personalization is Personalization.REALTIME


def test_trending_pages_are_not_personalised() -> None:
    harness = Harness()
    harness.recommender.failure = FallbackReason.DEADLINE
    assert first_page(harness).page.personalization is Personalization.NONE


def test_exploration_takes_every_tenth_place_for_videos_the_model_does_not_know() -> None:
    harness = Harness(exploration=0.1)
    for viewer in ("u7", "u8", "u9"):
        harness.interact(viewer, "new-1")
    harness.interact("u7", "new-2")
    harness.interact("u7", "v005")  # known to the model: not exploration
    harness.refresh_boards()
    served = first_page(harness, limit=20)
    items = served.page.items
    explored = [
        (place, item.video_id)
        for place, item in enumerate(items)
        if item.source is ItemSource.EXPLORATION
    ]
    assert explored == [(9, "new-1"), (19, "new-2")]
    assert all(item.source is ItemSource.MODEL for i, item in enumerate(items) if i not in (9, 19))
    scores = [item.score for item in items]
    assert scores == sorted(scores, reverse=True)


def test_exploration_leaves_out_what_the_viewer_saw_and_the_control_group() -> None:
    harness = Harness(exploration=0.1)
    harness.interact("u7", "new-1")
    harness.interact("u1", "new-1", InteractionType.VIEW)
    harness.refresh_boards()
    assert "new-1" not in ids(first_page(harness, limit=20))
    experiment = Experiment("exp", (Variant("control", 1, Algorithm.TRENDING),))
    control = Harness(experiment, exploration=0.1)
    control.interact("u7", "new-1")
    control.refresh_boards()
    assert all(item.source is ItemSource.TRENDING for item in first_page(control, 20).page.items)


def test_a_popularity_variant_is_served_by_popularity_with_its_name_everywhere() -> None:
    harness = Harness(Experiment("exp", (Variant("pop", 1, Algorithm.POPULARITY),)))
    served = first_page(harness)
    assert served.page.algorithm is Algorithm.POPULARITY
    assert served.page.fallback_reason is None
    assert {item.source for item in served.page.items} == {ItemSource.POPULARITY}
    assert harness.recommender.calls == []
    assert harness.analytics.sent[-1].algorithm is Algorithm.POPULARITY
    with harness.database() as uow:
        recorded = uow.feed_cache.pages(served.page.feed_session_id)
    assert recorded[0].algorithm is Algorithm.POPULARITY


def test_a_variant_naming_an_unconfigured_source_is_refused_at_start() -> None:
    harness = Harness()
    lightfm_only = FeedSources(
        {
            Algorithm.LIGHTFM: harness.recommender,
            Algorithm.TRENDING: BoardSource(Algorithm.TRENDING, harness.trending),
        }
    )
    pools = PoolBuilder(lightfm_only, PoolPolicy(), metrics=harness.metrics, clock=harness.clock)
    experiment = Experiment("exp", (Variant("x", 1, Algorithm.POPULARITY),))
    with pytest.raises(ValueError, match="no configured source"):
        FeedService(
            harness.database,
            pools=pools,
            analytics=harness.analytics,
            clock=harness.clock,
            cursors=CursorCodec(b"k" * 32, timedelta(hours=1)),
            experiment=experiment,
        )


def test_without_the_viewers_history_the_feed_still_serves_and_counts_it() -> None:
    harness = Harness()
    harness.database.unavailable = True
    served = first_page(harness, limit=5)
    assert len(served.page.items) == 5
    assert ("feed.viewer_state.unavailable", 1, {}) in harness.metrics.counters
