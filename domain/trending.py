"""The trending feed: what is popular right now, held in memory so a fallback needs no network.

Formula. Recent interactions are read in time buckets (newest first: 0-1 h, 1-3 h, 3-6 h,
6-12 h, 12-24 h, 24-48 h, 48-96 h before now; 96 h is the window). A bucket counts with the
decay 0.5 ** (age of its midpoint / 24 h half-life). Within a bucket, a video scores

    sum over interaction types of  events(type) * TYPE_WEIGHT[type]

where a view's weight is its average watch time over 30 s, between 0.1 and 1 (a 3-second
glance counts a tenth of a full view). Skips and hides weigh negative, so a video people
flick away sinks. The feed keeps the `size` best videos with a positive score, ties broken
by video id.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from domain.feed import ScoredVideo

if TYPE_CHECKING:
    from ports.repositories import ActivityReader

HALF_LIFE = timedelta(hours=24)
#: (newest edge, oldest edge) of each bucket, as age before now.
BUCKETS: tuple[tuple[timedelta, timedelta], ...] = tuple(
    (timedelta(hours=a), timedelta(hours=b))
    for a, b in ((0, 1), (1, 3), (3, 6), (6, 12), (12, 24), (24, 48), (48, 96))
)
TYPE_WEIGHT: dict[str, float] = {
    "view": 1.0,
    "like": 3.0,
    "comment": 3.0,
    "share": 5.0,
    "complete": 2.0,
    "skip": -0.5,
    "hide": -2.0,
}
FULL_VIEW_MS = 30_000


@dataclass(frozen=True)
class TrendingSnapshot:
    """The best videos, best first, as computed at `computed_at` (None: never computed)."""

    items: tuple[ScoredVideo, ...]
    computed_at: datetime | None


EMPTY = TrendingSnapshot((), None)


def compute_trending(reader: ActivityReader, now: datetime, size: int) -> TrendingSnapshot:
    scores: dict[str, float] = defaultdict(float)
    for newest, oldest in BUCKETS:
        midpoint_age = (newest + oldest) / 2
        decay = 0.5 ** (midpoint_age / HALF_LIFE)
        for activity in reader.activity_between(now - oldest, now - newest):
            weight = TYPE_WEIGHT.get(activity.interaction_type, 0.0)
            if activity.interaction_type == "view" and activity.events:
                average_ms = activity.watch_time_ms / activity.events
                weight *= min(1.0, max(0.1, average_ms / FULL_VIEW_MS))
            scores[activity.video_id] += decay * weight * activity.events
    best = sorted(
        ((video, score) for video, score in scores.items() if score > 0),
        key=lambda pair: (-pair[1], pair[0]),
    )[:size]
    return TrendingSnapshot(tuple(ScoredVideo(v, round(s, 6)) for v, s in best), now)


class TrendingBoard:
    """The current snapshot, swapped atomically by `refresh`; readers never wait for it."""

    def __init__(self, reader: ActivityReader, size: int = 1000) -> None:
        self._reader = reader
        self._size = size
        self._snapshot = EMPTY
        self._refreshing = threading.Lock()

    def current(self) -> TrendingSnapshot:
        return self._snapshot

    def refresh(self, now: datetime) -> TrendingSnapshot:
        """Recompute from the database (raises DependencyUnavailable when it is down, leaving
        the previous snapshot in place)."""
        with self._refreshing:
            self._snapshot = compute_trending(self._reader, now, self._size)
        return self._snapshot

    def top(self, limit: int, exclude: Sequence[str] = ()) -> tuple[ScoredVideo, ...]:
        excluded = set(exclude)
        picked = [item for item in self._snapshot.items if item.video_id not in excluded]
        return tuple(picked[:limit])
