"""Feed vocabulary shared by the recommendation path and the feed cache."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Algorithm(StrEnum):
    LIGHTFM = "lightfm"
    TRENDING = "trending"


class FallbackReason(StrEnum):
    """Why a page was served by trending instead of the model."""

    DEADLINE = "deadline"
    UNAVAILABLE = "unavailable"
    ERROR = "error"
    CIRCUIT_OPEN = "circuit_open"
    COLD_START = "cold_start"
    EXPERIMENT_CONTROL = "experiment_control"


@dataclass(frozen=True)
class ScoredVideo:
    """One ranked item: a higher `score` ranks earlier; scores compare within one page only."""

    video_id: str
    score: float


@dataclass(frozen=True)
class FeedPage:
    """One page served in a feed session, as recorded in `feed_cache`. `page_number` starts at 1."""

    feed_session_id: str
    page_number: int
    user_id: str
    algorithm: Algorithm
    fallback_reason: FallbackReason | None
    model_version: str | None
    experiment_variant_id: str | None
    items: tuple[ScoredVideo, ...]
    created_at: datetime
