"""Fakes of the feed's outward ports: recommender, analytics, metrics, activity."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from domain.feed import (
    Algorithm,
    FallbackReason,
    FeedConsumed,
    FeedServed,
    ItemSource,
    Personalization,
    Ranking,
    RankRequest,
    RecommendationFailed,
    ScoredVideo,
    VideoActivity,
)
from domain.trending import TrendingFormula, ViewerActivity, top_videos_from_activity


@dataclass
class FakeRecommender:
    """Implements `ports.recommender.RecommendationSource` (named `lightfm`): ranks `catalogue`
    (best first) minus exclusions, or fails with `failure` when set; a request with fresh
    positives answers `realtime`. Records every call and request."""

    catalogue: list[str] = field(default_factory=lambda: [f"v{i:03d}" for i in range(300)])
    model_version: str = "m-test"
    failure: FallbackReason | None = None
    calls: list[tuple[str, int, float]] = field(default_factory=list)
    requests: list[RankRequest] = field(default_factory=list)

    @property
    def name(self) -> Algorithm:
        return Algorithm.LIGHTFM

    def rank(self, request: RankRequest) -> Ranking:
        self.calls.append((request.user_id, request.limit, request.timeout_s))
        self.requests.append(request)
        if self.failure is not None:
            raise RecommendationFailed(self.failure, "injected by the test")
        excluded = set(request.exclude)
        chosen = [v for v in self.catalogue if v not in excluded][: request.limit]
        items = tuple(
            ScoredVideo(v, 10.0 - i * 0.01, ItemSource.MODEL) for i, v in enumerate(chosen)
        )
        personalization = (
            Personalization.REALTIME if request.fresh_positives else Personalization.MODEL
        )
        return Ranking(items, self.model_version, Algorithm.LIGHTFM, personalization)


@dataclass
class RecordingAnalytics:
    """Implements `ports.observability.Analytics`, keeping what was sent."""

    sent: list[FeedServed] = field(default_factory=list)
    consumed: list[FeedConsumed] = field(default_factory=list)
    closed: bool = False

    def feed_served(self, event: FeedServed) -> None:
        self.sent.append(event)

    def feed_consumed(self, event: FeedConsumed) -> None:
        self.consumed.append(event)

    def close(self) -> None:
        self.closed = True


@dataclass
class RecordingMetrics:
    """Implements `ports.observability.Metrics`, keeping what was sent."""

    fallbacks: list[tuple[FallbackReason, str | None]] = field(default_factory=list)
    timings: list[tuple[str, float, dict[str, str]]] = field(default_factory=list)
    gauges: list[tuple[str, float, dict[str, str]]] = field(default_factory=list)
    counters: list[tuple[str, int, dict[str, str]]] = field(default_factory=list)
    closed: bool = False

    def fallback(self, reason: FallbackReason, experiment_variant_id: str | None) -> None:
        self.fallbacks.append((reason, experiment_variant_id))

    def timing(self, name: str, milliseconds: float, tags: Mapping[str, str] | None = None) -> None:
        self.timings.append((name, milliseconds, dict(tags or {})))

    def timing_samples(
        self, name: str, milliseconds: Sequence[float], tags: Mapping[str, str] | None = None
    ) -> None:
        for sample in milliseconds:
            self.timing(name, sample, tags)

    def gauge(self, name: str, value: float, tags: Mapping[str, str] | None = None) -> None:
        self.gauges.append((name, value, dict(tags or {})))

    def increment(self, name: str, value: int = 1, tags: Mapping[str, str] | None = None) -> None:
        self.counters.append((name, value, dict(tags or {})))

    def close(self) -> None:
        self.closed = True


@dataclass
class ScriptedActivity:
    """Implements `ports.repositories.ActivityReader` from a list of timed activities. A
    `VideoActivity` of n events stands for n different viewers with one event each (their
    watch time shared evenly), so "100 likes" scripts what 100 people did; a `ViewerActivity`
    is one viewer's."""

    rows: list[tuple[datetime, VideoActivity | ViewerActivity]] = field(default_factory=list)

    def top_videos(
        self, formula: TrendingFormula, now: datetime, size: int
    ) -> list[tuple[str, float]]:
        return top_videos_from_activity(self.viewer_activity_between, formula, now, size)

    def activity_between(self, start: datetime, end: datetime) -> list[VideoActivity]:
        return [
            activity
            if isinstance(activity, VideoActivity)
            else VideoActivity(
                activity.video_id,
                activity.interaction_type,
                activity.events,
                activity.watch_time_ms,
            )
            for moment, activity in self.rows
            if start <= moment < end
        ]

    def viewer_activity_between(self, start: datetime, end: datetime) -> list[ViewerActivity]:
        found: list[ViewerActivity] = []
        for row, (moment, activity) in enumerate(self.rows):
            if not start <= moment < end:
                continue
            if isinstance(activity, ViewerActivity):
                found.append(activity)
                continue
            each, left_over = divmod(activity.watch_time_ms, max(1, activity.events))
            found.extend(
                ViewerActivity(
                    f"scripted-{row}-{n}",
                    activity.video_id,
                    activity.interaction_type,
                    1,
                    each + (1 if n < left_over else 0),
                )
                for n in range(activity.events)
            )
        return found
