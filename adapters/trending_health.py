"""Readiness of the in-memory trending feed (implements `ports.health.HealthCheck`)."""

from __future__ import annotations

from domain.trending import TrendingBoard
from ports.health import ComponentHealth


class TrendingHealth:
    name = "trending"
    critical = False  # without it the model still serves; with neither, the feed answers 503

    def __init__(self, board: TrendingBoard) -> None:
        self._board = board

    def check(self) -> ComponentHealth:
        snapshot = self._board.current()
        if snapshot.computed_at is None:
            return ComponentHealth(False, "not computed yet")
        return ComponentHealth(
            True, f"{len(snapshot.items)} videos as of {snapshot.computed_at.isoformat()}"
        )
