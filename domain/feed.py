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


@dataclass(frozen=True)
class Ranking:
    """The model's answer: items best first (scores non-increasing) and the model version."""

    items: tuple[ScoredVideo, ...]
    model_version: str


class RecommendationFailed(Exception):
    """The model could not answer; `reason` says which fallback the feed reports."""

    def __init__(self, reason: FallbackReason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class VideoActivity:
    """Aggregated interactions with one video of one type in a time bucket.

    `events` counts them; `watch_time_ms` sums their watch time (milliseconds)."""

    video_id: str
    interaction_type: str
    events: int
    watch_time_ms: int


@dataclass(frozen=True)
class FeedSession:
    """What the first page of a feed session decided, kept so later pages agree with it.

    `candidates` is the ranked pool (best first) the session's pages are cut from."""

    feed_session_id: str
    user_id: str
    algorithm: Algorithm
    fallback_reason: FallbackReason | None
    model_version: str | None
    experiment_variant_id: str | None
    candidates: tuple[ScoredVideo, ...]
    created_at: datetime


@dataclass(frozen=True)
class FeedServed:
    """The analytics event `feed_recommendation_served`, one per page served."""

    user_id: str
    feed_session_id: str
    algorithm: Algorithm
    fallback_reason: FallbackReason | None
    experiment_variant_id: str | None
    model_version: str | None
    page: int
    item_count: int
    served_at: datetime
