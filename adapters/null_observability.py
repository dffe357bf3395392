"""`Analytics` and `Metrics` switched off by configuration (`SEGMENT_WRITE_KEY` or
`DD_AGENT_HOST` empty): every call does nothing, and on purpose logs nothing either, so
that a deployment without Segment or Datadog pays nothing per request."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from domain.feed import FallbackReason, FeedConsumed, FeedServed


class NullAnalytics:
    """Implements `ports.observability.Analytics` for a deployment without Segment."""

    def feed_served(self, event: FeedServed) -> None:
        return None

    def feed_consumed(self, event: FeedConsumed) -> None:
        return None

    def close(self) -> None:
        return None


class NullMetrics:
    """Implements `ports.observability.Metrics` for a deployment without a Datadog agent."""

    def fallback(self, reason: FallbackReason, experiment_variant_id: str | None) -> None:
        return None

    def timing(self, name: str, milliseconds: float, tags: Mapping[str, str] | None = None) -> None:
        return None

    def timing_samples(
        self, name: str, milliseconds: Sequence[float], tags: Mapping[str, str] | None = None
    ) -> None:
        return None

    def gauge(self, name: str, value: float, tags: Mapping[str, str] | None = None) -> None:
        return None

    def increment(self, name: str, value: int = 1, tags: Mapping[str, str] | None = None) -> None:
        return None

    def close(self) -> None:
        return None
