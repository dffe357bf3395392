"""Analytics (Segment) and metrics (DogStatsD). Both are fire-and-forget: a method returns at
once, never raises and never blocks on the network; a lost datagram is not an error."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from domain.feed import FallbackReason, FeedConsumed, FeedServed


class Analytics(Protocol):
    def feed_served(self, event: FeedServed) -> None:
        """Queue `feed_recommendation_served` for this page."""
        ...

    def feed_consumed(self, event: FeedConsumed) -> None:
        """Queue `feed_recommendation_consumed` for this interaction on a served video."""
        ...

    def close(self) -> None:
        """Send what is queued (bounded by the adapter's shutdown timeout) and stop sending;
        later calls do nothing. Closing twice is harmless."""
        ...


class Metrics(Protocol):
    def fallback(self, reason: FallbackReason, experiment_variant_id: str | None) -> None:
        """The Datadog event and counter `feed.recommendation.fallback`, tagged with the reason
        and variant."""
        ...

    def timing(self, name: str, milliseconds: float, tags: Mapping[str, str] | None = None) -> None:
        """A histogram sample (e.g. `feed.model.latency_ms`), in milliseconds."""
        ...

    def timing_samples(
        self, name: str, milliseconds: Sequence[float], tags: Mapping[str, str] | None = None
    ) -> None:
        """Many samples of one histogram at once (e.g. the relay's publish latency, one per
        message of a round): the same as `timing` for each, sent together."""
        ...

    def gauge(self, name: str, value: float, tags: Mapping[str, str] | None = None) -> None:
        """A gauge (e.g. `feed.model.circuit_open` 0/1, `feed.outbox.backlog`)."""
        ...

    def increment(self, name: str, value: int = 1, tags: Mapping[str, str] | None = None) -> None:
        """A counter (e.g. `feed.kafka.publish_failures`)."""
        ...

    def close(self) -> None:
        """Release the socket (what was sent is not buffered, so nothing is lost). Closing
        twice is harmless."""
        ...
