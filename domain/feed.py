"""Feed vocabulary shared by the recommendation path and the feed cache."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple


class Algorithm(StrEnum):
    """The recommendation sources a feed session can be ranked by: the one list of names the
    API schema, the request validation, the topic's JSON Schema and the pacts derive from or are
    checked against (see docs/adding-a-source.md)."""

    LIGHTFM = "lightfm"
    TRENDING = "trending"
    POPULARITY = "popularity"


class Personalization(StrEnum):
    """How a page was personalised: by the model's nightly vector (`model`), by interactions
    newer than the model folded in at request time (`realtime`), or not at all (`none`)."""

    MODEL = "model"
    REALTIME = "realtime"
    NONE = "none"


class ItemSource(StrEnum):
    """Where one item of a page came from: a model (`model`), a non-personalised source by its
    own name, or exploration of videos the model does not know yet."""

    MODEL = "model"
    TRENDING = "trending"
    POPULARITY = "popularity"
    EXPLORATION = "exploration"

    @classmethod
    def of(cls, algorithm: Algorithm) -> ItemSource:
        """What a source's own items are labelled: a model's `model`, any other its name (pages
        recorded before items carried a source are read this way too)."""
        return cls.MODEL if algorithm is Algorithm.LIGHTFM else cls(algorithm.value)


class FallbackReason(StrEnum):
    """Why a page was served by trending instead of the model."""

    DEADLINE = "deadline"
    UNAVAILABLE = "unavailable"
    ERROR = "error"
    CIRCUIT_OPEN = "circuit_open"
    COLD_START = "cold_start"
    EXPERIMENT_CONTROL = "experiment_control"


class ScoredVideo(NamedTuple):
    """One ranked item: a higher `score` ranks earlier; scores compare within one page only.
    `source` says where it came from (None: not said, as in a ranking before the feed marks it).

    A named tuple, not a frozen dataclass: a first page makes hundreds of them (the model's
    answer, the rotated pool, the recorded page), and a frozen dataclass's constructor cost
    several times a tuple's on the feed's hottest path."""

    video_id: str
    score: float
    source: ItemSource | None = None


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
    personalization: Personalization = Personalization.NONE


@dataclass(frozen=True)
class Ranking:
    """A source's answer: items best first (scores non-increasing), which source ranked them,
    the model version that did (None for sources without one) and how it personalised them."""

    items: tuple[ScoredVideo, ...]
    model_version: str | None
    algorithm: Algorithm
    personalization: Personalization = Personalization.NONE


class FreshPositive(NamedTuple):
    """A viewer's positive interaction with a video that the model may not have trained on:
    `weight` is the pair's training weight (see `domain.model`), `occurred_at` the newest event."""

    video_id: str
    weight: float
    occurred_at: datetime


@dataclass(frozen=True)
class RankRequest:
    """What a source is asked: the viewer's best `limit` videos (1..500) except `exclude`, in
    at most `timeout_s` seconds; `fresh_positives` (newest first) are the viewer's recent
    positive interactions a source may personalise with."""

    user_id: str
    limit: int
    exclude: tuple[str, ...] = ()
    fresh_positives: tuple[FreshPositive, ...] = ()
    timeout_s: float = 0.150


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
    personalization: Personalization = Personalization.NONE


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
    personalization: Personalization = Personalization.NONE


@dataclass(frozen=True)
class ServedItem:
    """Where a video stood in a session as served: `rank` 1-based over the whole session."""

    video_id: str
    rank: int
    score: float
    source: ItemSource


@dataclass(frozen=True)
class FeedConsumed:
    """The analytics event `feed_recommendation_consumed`: an accepted interaction on a video
    the viewer was served in that feed session, attributed from the server's own record."""

    user_id: str
    event_id: str
    video_id: str
    interaction_type: str
    watch_time_ms: int
    occurred_at: datetime
    feed_session_id: str
    rank: int
    score: float
    source: ItemSource
    algorithm: Algorithm
    experiment_variant_id: str | None
    model_version: str | None


def served_places(
    pages: Iterable[tuple[Sequence[ScoredVideo], Algorithm]], wanted: Collection[str]
) -> dict[str, ServedItem]:
    """The first place of each wanted video in a session's pages (in page order): ranks run
    on across pages."""
    places: dict[str, ServedItem] = {}
    rank = 0
    for items, algorithm in pages:
        for item in items:
            rank += 1
            if item.video_id in wanted and item.video_id not in places:
                source = item.source or ItemSource.of(algorithm)
                places[item.video_id] = ServedItem(item.video_id, rank, item.score, source)
    return places
