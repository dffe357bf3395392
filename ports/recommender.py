from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from domain.feed import Ranking


class Recommender(Protocol):
    def rank(self, user_id: str, limit: int, exclude: Collection[str], timeout_s: float) -> Ranking:
        """The user's best `limit` videos (1..500), never any in `exclude` nor any the model
        knows the user has seen, best first.

        `timeout_s` bounds the whole call, retries included (seconds). Raises
        `domain.feed.RecommendationFailed` with the reason the feed reports: DEADLINE (no answer
        in time), UNAVAILABLE (model service down or not serving), CIRCUIT_OPEN (rejected at once
        by the circuit breaker), COLD_START (the model does not know the user), ERROR (anything
        else). Never raises a transport exception.
        """
        ...
