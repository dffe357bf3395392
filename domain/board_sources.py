"""Recommendation sources served from an in-memory board: trending and all-time popularity.

A board is recomputed in the background (`TrendingBoard.refresh`), so ranking from it costs no
database or network round trip. Popularity is trending's formula with one bucket that spans all
time and no decay: the same event weights, counted over everything the product has stored.
"""

from __future__ import annotations

from datetime import timedelta

from domain.feed import (
    Algorithm,
    FallbackReason,
    ItemSource,
    Personalization,
    Ranking,
    RankRequest,
    RecommendationFailed,
    ScoredVideo,
)
from domain.trending import TYPE_WEIGHT, TrendingBoard, TrendingFormula

#: "All time" for the popularity formula: longer than the product keeps anything.
ALL_TIME = timedelta(days=36_500)

POPULARITY = TrendingFormula(buckets=((timedelta(0), ALL_TIME, 1.0),), type_weights=TYPE_WEIGHT)


class BoardSource:
    """Implements `ports.recommender.RecommendationSource` over a board: the board's order
    minus the request's exclusions, the same for every viewer (`personalization: none`)."""

    def __init__(self, name: Algorithm, board: TrendingBoard) -> None:
        self._name = name
        self._board = board
        self._item_source = ItemSource.of(name)

    @property
    def name(self) -> Algorithm:
        return self._name

    @property
    def board(self) -> TrendingBoard:
        return self._board

    def rank(self, request: RankRequest) -> Ranking:
        if self._board.current().computed_at is None:
            raise RecommendationFailed(
                FallbackReason.UNAVAILABLE, f"the {self._name.value} board is not loaded yet"
            )
        items = tuple(
            ScoredVideo(item.video_id, item.score, self._item_source)
            for item in self._board.top(request.limit, request.exclude)
        )
        return Ranking(items, None, self._name, Personalization.NONE)
