"""The trending feed: what is popular right now, held in memory so a fallback needs no network.

Formula. Recent interactions count in time buckets (newest first: 0-1 h, 1-3 h, 3-6 h,
6-12 h, 12-24 h, 24-48 h, 48-96 h before now; 96 h is the window), each with the decay
0.5 ** (age of its midpoint / 24 h half-life). One viewer's say on one video is

    sum over their events of  decay(bucket) * TYPE_WEIGHT[type]

where a view's weight is the viewer's average watch time over 30 s, between 0.1 and 1 (a
3-second glance counts a tenth of a full view), clamped to [-VIEWER_CAP, VIEWER_CAP]; a video
scores the sum of its viewers' says. So trending counts distinct viewers: 500 shares from one
account weigh one share, and one account cannot push a made-up video to the top (nor sink
another). The cap is per (viewer, video) over the whole window, not per bucket: event times
come from the client, and spreading events over the buckets must not multiply the cap.
Skips and hides weigh negative, so a video people flick away sinks. The feed keeps the `size`
best videos with a positive score, ties broken by video id.

The formula is data (`TrendingFormula`), so a store computes it where the rows are
(`ActivityReader.top_videos`): the SQL adapter aggregates and ranks in one query and returns
`size` rows, where reading every aggregate into the web worker took 0.7 s of CPU at 550k
recent interactions, a pause of the worker's event loop every refresh.
`top_videos_from_activity` is the reference implementation (the in-memory fakes use it; the
storage contract checks the SQL one against it).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from types import MappingProxyType
from typing import TYPE_CHECKING

from domain.feed import ScoredVideo
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
#: The most one viewer adds to (or takes from) a video's score: one share, the strongest event.
VIEWER_CAP = 5.0


@dataclass(frozen=True)
class TrendingFormula:
    """`buckets`: (newest edge, oldest edge, decay) by age before now, newest first and
    contiguous; `type_weights`: weight per interaction type (others weigh 0); a view weighs
    its type weight times the viewer's average watch time over `full_view_ms`, clamped to
    [`min_view_share`, 1]; one viewer's decayed sum for a video is clamped to
    [-`viewer_cap`, `viewer_cap`]."""

    buckets: tuple[tuple[timedelta, timedelta, float], ...]
    type_weights: Mapping[InteractionType, float]
    full_view_ms: int = FULL_VIEW_MS
    min_view_share: float = MIN_VIEW_SHARE
    viewer_cap: float = VIEWER_CAP

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
class ViewerActivity:
    """One viewer's interactions with one video of one type in a time range.

    `events` counts them; `watch_time_ms` sums their watch time (milliseconds)."""

    user_id: str
    video_id: str
    interaction_type: str
    events: int
    watch_time_ms: int


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
    viewer_activity_between: Callable[[datetime, datetime], Sequence[ViewerActivity]],
    formula: TrendingFormula,
    now: datetime,
    size: int,
) -> list[tuple[str, float]]:
    """`ActivityReader.top_videos` from per-viewer aggregates: the reference implementation."""
    # (viewer, video) -> [decayed non-view weight, views, decayed views, view watch time ms]
    pairs: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    for newest, oldest, decay in formula.buckets:
        for activity in viewer_activity_between(now - oldest, now - newest):
            pair = pairs[(activity.user_id, activity.video_id)]
            if activity.interaction_type == "view":
                pair[1] += activity.events
                pair[2] += decay * activity.events
                pair[3] += activity.watch_time_ms
            else:
                weight = _type_weight(formula, activity.interaction_type)
                pair[0] += decay * weight * activity.events
    scores: dict[str, float] = defaultdict(float)
    for (_, video_id), (other, views, decayed_views, watch_time_ms) in pairs.items():
        say = other
        if views:
            share = watch_time_ms / views / formula.full_view_ms
            share = min(1.0, max(formula.min_view_share, share))
            say += _type_weight(formula, InteractionType.VIEW) * share * decayed_views
        scores[video_id] += min(formula.viewer_cap, max(-formula.viewer_cap, say))
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

    def install(self, snapshot: TrendingSnapshot) -> None:
        """Serve `snapshot`, computed elsewhere (`domain.shared_boards`), from now on."""
        with self._refreshing:
            self._snapshot = snapshot

    def top(self, limit: int, exclude: Sequence[str] = ()) -> tuple[ScoredVideo, ...]:
        excluded = set(exclude)
        # Stops at `limit`: a fallback page reads the board's head, not all of it.
        return tuple(
            islice(
                (item for item in self._snapshot.items if item.video_id not in excluded),
                max(limit, 0),
            )
        )
