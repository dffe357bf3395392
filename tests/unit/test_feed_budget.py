"""The model's deadline is counted from the start of building the pool: time spent reading
the viewer's history comes out of it, so a slow read never stretches a request past the bound."""

from __future__ import annotations

from datetime import datetime, timedelta

from domain.board_sources import BoardSource
from domain.feed import Algorithm, FallbackReason
from domain.feed_pool import FeedSources, PoolBuilder, PoolPolicy
from domain.viewer_state import RecentInteraction, ServedVideo
from tests.fakes import FixedClock
from tests.fakes_feed import FakeRecommender, RecordingMetrics
from tests.feed_harness import NOW, Harness


class SlowHistory:
    """Implements `ports.repositories.ViewerHistory`: an empty history that takes `delay` of
    the clock's time to read."""

    def __init__(self, clock: FixedClock, delay: timedelta) -> None:
        self._clock = clock
        self._delay = delay

    def recent(
        self,
        user_id: str,
        interactions_since: datetime,
        served_since: datetime,
        limit: int,
        page_limit: int,
    ) -> tuple[list[RecentInteraction], list[ServedVideo]]:
        self._clock.advance(self._delay)
        return [], []


def pool_builder(delay_ms: int) -> tuple[PoolBuilder, FakeRecommender, RecordingMetrics]:
    harness = Harness()
    clock = FixedClock(NOW)
    recommender = FakeRecommender()
    sources = FeedSources(
        {
            Algorithm.LIGHTFM: recommender,
            Algorithm.TRENDING: BoardSource(Algorithm.TRENDING, harness.trending),
        }
    )
    metrics = RecordingMetrics()
    builder = PoolBuilder(
        sources,
        PoolPolicy(timeout_s=0.150, size=20),
        metrics=metrics,
        clock=clock,
        history=SlowHistory(clock, timedelta(milliseconds=delay_ms)),
    )
    return builder, recommender, metrics


def test_the_model_gets_what_the_history_read_left_of_the_budget() -> None:
    builder, recommender, _ = pool_builder(delay_ms=40)
    pool = builder.build("u1", None)
    assert pool.algorithm is Algorithm.LIGHTFM
    assert [round(timeout, 3) for _, _, timeout in recommender.calls] == [0.110]


def test_a_history_read_that_spends_the_budget_falls_back_without_calling_the_model() -> None:
    builder, recommender, metrics = pool_builder(delay_ms=150)
    pool = builder.build("u1", None)
    assert recommender.calls == []
    assert pool.algorithm is Algorithm.TRENDING
    assert pool.fallback_reason is FallbackReason.DEADLINE
    assert metrics.fallbacks == [(FallbackReason.DEADLINE, None)]


def test_the_budget_runs_from_the_requests_arrival() -> None:
    builder, recommender, _ = pool_builder(delay_ms=10)
    builder.build("u1", None, spent_s=0.030)  # 30 ms of authentication and parsing before
    assert [round(timeout, 3) for _, _, timeout in recommender.calls] == [0.110]


def test_a_request_that_arrives_with_its_budget_spent_gets_the_fallback() -> None:
    builder, recommender, _ = pool_builder(delay_ms=0)
    pool = builder.build("u1", None, spent_s=0.200)
    assert recommender.calls == []
    assert pool.fallback_reason is FallbackReason.DEADLINE

