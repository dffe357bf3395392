"""The trending feed: what is popular right now, held in memory so a fallback needs no network.

Formula. Recent interactions are read in time buckets (newest first: 0-1 h, 1-3 h, 3-6 h,
6-12 h, 12-24 h, 24-48 h, 48-96 h before now; 96 h is the window). A bucket counts with the
decay 0.5 ** (age of its midpoint / 24 h half-life). Within a bucket, a video scores

    sum over interaction types of  events(type) * TYPE_WEIGHT[type]

where a view's weight is its average watch time over 30 s, between 0.1 and 1 (a 3-second
glance counts a tenth of a full view). Skips and hides weigh negative, so a video people
flick away sinks. The feed keeps the `size` best videos with a positive score, ties broken
by video id.

The formula is data (`TrendingFormula`), so a store computes it where the rows are
(`ActivityReader.top_videos`): the SQL adapter aggregates and ranks in one query and returns
`size` rows, where reading every (video, type, bucket) aggregate into the web worker took
0.7 s of CPU at 550k recent interactions, a pause of the worker's event loop every refresh.
`top_videos_from_activity` is the reference implementation (the in-memory fakes use it; the
storage contract checks the SQL one against it).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING

from domain.feed import ScoredVideo, VideoActivity
from domain.interactions import InteractionType

if TYPE_CHECKING:
    from ports.repositories import ActivityReader

HALF_LIFE = timedelta(hours=24)
#: (newest edge, oldest edge) of each bucket, as age before now.
BUCKETS: tuple[tuple[timedelta, timedelta], ...] = tuple(
    (timedelta(hours=a), timedelta(hours=b))
    for a, b in ((0, 1), (1, 3), (3, 6), (6, 12), (12, 24), (24, 48), (48, 96))
)
#: Keyed like `domain.model.SIGNAL_WEIGHTS`, by the enum; a StrEnum member hashes equal to its
#: value, so `TYPE_WEIGHT["view"]` finds the view's weight too.
TYPE_WEIGHT: Mapping[InteractionType, float] = MappingProxyType(
    {
        InteractionType.VIEW: 1.0,
        InteractionType.LIKE: 3.0,
        InteractionType.COMMENT: 3.0,
        InteractionType.SHARE: 5.0,
        InteractionType.COMPLETE: 2.0,
        InteractionType.SKIP: -0.5,
        InteractionType.HIDE: -2.0,
    }
)
FULL_VIEW_MS = 30_000
#: The least share of a view a glance counts for (see the formula).
MIN_VIEW_SHARE = 0.1


@dataclass(frozen=True)
class TrendingFormula:
    """`buckets`: (newest edge, oldest edge, decay) by age before now, newest first and
    contiguous; `type_weights`: weight per interaction type (others weigh 0); a view weighs
    its type weight times its average watch time over `full_view_ms`, clamped to
    [`min_view_share`, 1]."""

    buckets: tuple[tuple[timedelta, timedelta, float], ...]
    type_weights: Mapping[InteractionType, float]
    full_view_ms: int = FULL_VIEW_MS
    min_view_share: float = MIN_VIEW_SHARE

    @property
    def window(self) -> timedelta:
        return self.buckets[-1][1]


FORMULA = TrendingFormula(
    buckets=tuple(
        (newest, oldest, 0.5 ** (((newest + oldest) / 2) / HALF_LIFE)) for newest, oldest in BUCKETS
    ),
    type_weights=TYPE_WEIGHT,
)


@dataclass(frozen=True)
class TrendingSnapshot:
    """The best videos, best first, as computed at `computed_at` (None: never computed)."""

    items: tuple[ScoredVideo, ...]
    computed_at: datetime | None


EMPTY = TrendingSnapshot((), None)


def compute_trending(
    reader: ActivityReader, now: datetime, size: int, formula: TrendingFormula = FORMULA
) -> TrendingSnapshot:
    best = reader.top_videos(formula, now, size)
    return TrendingSnapshot(tuple(ScoredVideo(v, round(s, 6)) for v, s in best), now)


def top_videos_from_activity(
    activity_between: Callable[[datetime, datetime], Sequence[VideoActivity]],
    formula: TrendingFormula,
    now: datetime,
    size: int,
) -> list[tuple[str, float]]:
    """`ActivityReader.top_videos` from per-bucket aggregates: the reference implementation."""
    scores: dict[str, float] = defaultdict(float)
    for newest, oldest, decay in formula.buckets:
        for activity in activity_between(now - oldest, now - newest):
            weight = _type_weight(formula, activity.interaction_type)
            if activity.interaction_type == InteractionType.VIEW and activity.events:
                share = activity.watch_time_ms / activity.events / formula.full_view_ms
                weight *= min(1.0, max(formula.min_view_share, share))
            scores[activity.video_id] += decay * weight * activity.events
    return sorted(
        ((video, score) for video, score in scores.items() if score > 0),
        key=lambda pair: (-pair[1], pair[0]),
    )[:size]


def _type_weight(formula: TrendingFormula, name: str) -> float:
    try:
        return formula.type_weights.get(InteractionType(name), 0.0)
    except ValueError:  # a type this build does not know weighs nothing, as in the SQL query
        return 0.0


class TrendingBoard:
    """The current snapshot, swapped atomically by `refresh`; readers never wait for it.
    `formula` is trending's by default; another formula makes another board (popularity)."""

    def __init__(
        self, reader: ActivityReader, size: int = 1000, formula: TrendingFormula = FORMULA
    ) -> None:
        self._reader = reader
        self._size = size
        self._formula = formula
        self._snapshot = EMPTY
        self._refreshing = threading.Lock()

    def current(self) -> TrendingSnapshot:
        return self._snapshot

    def refresh(self, now: datetime) -> TrendingSnapshot:
        """Recompute from the database (raises DependencyUnavailable when it is down, leaving
        the previous snapshot in place)."""
        with self._refreshing:
            self._snapshot = compute_trending(self._reader, now, self._size, self._formula)
        return self._snapshot

    def top(self, limit: int, exclude: Sequence[str] = ()) -> tuple[ScoredVideo, ...]:
        excluded = set(exclude)
        picked = [item for item in self._snapshot.items if item.video_id not in excluded]
        return tuple(picked[:limit])
