"""The recommendation sources the feed ranks with, and the model's catalogue."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from domain.exploration import KnownVideos
from domain.feed import Algorithm, Ranking, RankRequest


class RecommendationSource(Protocol):
    """One way to rank a viewer's feed, named by `name` (what the response, `feed_cache`, the
    Segment event and the topic call it). The composition root decides which sources exist and
    which serves which experiment variant."""

    @property
    def name(self) -> Algorithm: ...

    def rank(self, request: RankRequest) -> Ranking:
        """The viewer's best `request.limit` videos, never any in `request.exclude` nor any the
        source knows the viewer has seen, best first; `Ranking.algorithm` is `name`.

        `request.timeout_s` bounds the whole call, retries included (seconds). Raises
        `domain.feed.RecommendationFailed` with the reason the feed reports: DEADLINE (no answer
        in time), UNAVAILABLE (down, not serving, or nothing loaded yet), CIRCUIT_OPEN (rejected
        at once by a circuit breaker), COLD_START (the source cannot personalise for this
        viewer), ERROR (anything else). Never raises a transport exception.
        """
        ...


class ModelCatalogue(Protocol):
    def known_videos(self, video_ids: Sequence[str]) -> KnownVideos:
        """Which of `video_ids` (at most 10,000) the serving model can rank. Raises
        `domain.errors.DependencyUnavailable` when the model service cannot answer."""
        ...
