"""Fakes of the feed's outward ports: recommender, analytics, metrics, activity."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from domain.feed import (
    FallbackReason,
    FeedServed,
    Ranking,
    RecommendationFailed,
    ScoredVideo,
    VideoActivity,
)
from domain.trending import TrendingFormula, top_videos_from_activity


@dataclass
class FakeRecommender:
    """Implements `ports.recommender.Recommender`: ranks `catalogue` (best first) minus
    exclusions, or fails with `failure` when set. Records every call."""

    catalogue: list[str] = field(default_factory=lambda: [f"v{i:03d}" for i in range(300)])
    model_version: str = "m-test"
    failure: FallbackReason | None = None
    calls: list[tuple[str, int, float]] = field(default_factory=list)

    def rank(self, user_id: str, limit: int, exclude: Collection[str], timeout_s: float) -> Ranking:
        self.calls.append((user_id, limit, timeout_s))
        if self.failure is not None:
            raise RecommendationFailed(self.failure, "injected by the test")
        chosen = [v for v in self.catalogue if v not in set(exclude)][:limit]
        items = tuple(ScoredVideo(v, 10.0 - i * 0.01) for i, v in enumerate(chosen))
        return Ranking(items, self.model_version)


@dataclass
class RecordingAnalytics:
    """Implements `ports.observability.Analytics`, keeping what was sent."""

    sent: list[FeedServed] = field(default_factory=list)
    closed: bool = False

    def feed_served(self, event: FeedServed) -> None:
        self.sent.append(event)

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
    """Implements `ports.repositories.ActivityReader` from a list of timed activities."""

    rows: list[tuple[datetime, VideoActivity]] = field(default_factory=list)

    def top_videos(
        self, formula: TrendingFormula, now: datetime, size: int
    ) -> list[tuple[str, float]]:
        return top_videos_from_activity(self.activity_between, formula, now, size)

    def activity_between(self, start: datetime, end: datetime) -> list[VideoActivity]:
        return [activity for moment, activity in self.rows if start <= moment < end]
