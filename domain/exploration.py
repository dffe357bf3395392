"""Exploration: a share of every personalised pool goes to videos the serving model does not
know yet, so new videos collect the engagement the next retrain needs.

Candidates are the videos with fresh positive engagement, ranked by how many distinct viewers
engaged (one account counts once, however many events it sends), that the model service says it
does not know. The board is refreshed in the background like trending, so the feed's hot path
pays nothing for it. The videos take every `round(1 / share)`-th place of the pool: with the
default share 0.1, places 10, 20, 30, ...; an exploration item carries the score of the item
before it, so scores never increase along a session, and its `source` says `exploration`.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from domain.feed import ItemSource, ScoredVideo

if TYPE_CHECKING:
    from ports.recommender import ModelCatalogue
    from ports.repositories import EngagementReader

#: How far back engagement counts as fresh.
FRESH_WINDOW = timedelta(hours=48)
#: How many of the most engaged videos are checked against the model's catalogue.
CANDIDATES = 2_000


@dataclass(frozen=True)
class ExplorationSnapshot:
    """Videos unknown to `model_version`, most distinct engaged viewers first."""

    items: tuple[ScoredVideo, ...]
    model_version: str | None
    computed_at: datetime | None


EMPTY = ExplorationSnapshot((), None, None)


@dataclass(frozen=True)
class KnownVideos:
    """Which of the asked videos the serving model (`model_version`) knows."""

    video_ids: frozenset[str]
    model_version: str


class ExplorationBoard:
    """The current snapshot, swapped atomically by `refresh`; readers never wait for it."""

    def __init__(
        self, engagement: EngagementReader, catalogue: ModelCatalogue, size: int = 200
    ) -> None:
        self._engagement = engagement
        self._catalogue = catalogue
        self._size = size
        self._snapshot = EMPTY
        self._refreshing = threading.Lock()

    def current(self) -> ExplorationSnapshot:
        return self._snapshot

    def refresh(self, now: datetime) -> ExplorationSnapshot:
        """Recompute. Raises DependencyUnavailable when the database or the model service
        cannot answer; the previous snapshot stays."""
        with self._refreshing:
            engaged = self._engagement.engaged_viewers(now - FRESH_WINDOW, now, CANDIDATES)
            known = self._catalogue.known_videos([video for video, _ in engaged])
            unknown = [
                ScoredVideo(video, float(viewers), ItemSource.EXPLORATION)
                for video, viewers in engaged
                if video not in known.video_ids
            ]
            self._snapshot = ExplorationSnapshot(
                tuple(unknown[: self._size]), known.model_version, now
            )
        return self._snapshot

    def install(self, snapshot: ExplorationSnapshot) -> None:
        """Serve `snapshot`, computed elsewhere (`domain.shared_boards`), from now on."""
        with self._refreshing:
            self._snapshot = snapshot


def with_exploration(
    pool: Sequence[ScoredVideo],
    candidates: Sequence[ScoredVideo],
    share: float,
    exclude: Collection[str],
) -> tuple[ScoredVideo, ...]:
    """`pool` with every `round(1 / share)`-th place given to the next of `candidates` that is
    neither excluded nor in the pool already. The pool keeps its length (the last items make
    room) unless it was shorter than its exploration places need."""
    if share <= 0 or not candidates:
        return tuple(pool)
    every = max(1, round(1 / share))
    in_pool = {item.video_id for item in pool}
    explore = iter(
        [c for c in candidates if c.video_id not in in_pool and c.video_id not in exclude]
    )
    size = max(len(pool), 1)
    mixed: list[ScoredVideo] = []
    rest = iter(pool)
    for place in range(1, size + 1):
        item = next(explore, None) if place % every == 0 else None
        if item is not None:
            score = mixed[-1].score if mixed else item.score
            mixed.append(ScoredVideo(item.video_id, score, ItemSource.EXPLORATION))
            continue
        following = next(rest, None)
        if following is None:
            break
        mixed.append(following)
    return tuple(mixed)
