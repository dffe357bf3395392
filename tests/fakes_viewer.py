"""Fakes of the viewer-state ports over an `InMemoryUnitOfWorkFactory`'s committed rows, and of
the model's catalogue."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from domain.errors import DependencyUnavailable
from domain.exploration import KnownVideos
from domain.feed import FeedPage
from domain.interactions import StoredInteraction
from domain.model import VIEW_MIN_WATCH_MS
from domain.viewer_state import RecentInteraction, ServedVideo
from tests.fakes import InMemoryUnitOfWorkFactory

_POSITIVE = {"like", "comment", "share", "complete"}


class InMemoryViewerHistory:
    """Implements `ports.repositories.ViewerHistory` and `ports.repositories.EngagementReader`."""

    def __init__(self, factory: InMemoryUnitOfWorkFactory) -> None:
        self._factory = factory

    def recent(
        self,
        user_id: str,
        interactions_since: datetime,
        served_since: datetime,
        limit: int,
        page_limit: int,
    ) -> tuple[list[RecentInteraction], list[ServedVideo]]:
        interactions_since, served_since = _utc(interactions_since), _utc(served_since)
        stored, pages = self._rows()
        mine = sorted(
            (item.event for item in stored if item.event.user_id == user_id),
            key=lambda event: event.occurred_at,
            reverse=True,
        )
        recent = [e for e in mine if e.occurred_at >= interactions_since][:limit]
        hides = [
            e
            for e in mine
            if e.occurred_at < interactions_since and e.interaction_type.value == "hide"
        ][:limit]
        interactions = [
            RecentInteraction(e.video_id, e.interaction_type, e.watch_time_ms, e.occurred_at)
            for e in sorted([*recent, *hides], key=lambda e: e.occurred_at, reverse=True)
        ]
        served_pages = sorted(
            (p for p in pages if p.user_id == user_id and p.created_at >= served_since),
            key=lambda page: page.created_at,
            reverse=True,
        )[:page_limit]
        served = [ServedVideo(i.video_id, p.created_at) for p in served_pages for i in p.items]
        return interactions, served

    def engaged_viewers(self, start: datetime, end: datetime, size: int) -> list[tuple[str, int]]:
        start, end = _utc(start), _utc(end)
        viewers: dict[str, set[str]] = defaultdict(set)
        for item in self._rows()[0]:
            event = item.event
            kind = event.interaction_type.value
            positive = kind in _POSITIVE or (
                kind == "view" and event.watch_time_ms >= VIEW_MIN_WATCH_MS
            )
            if positive and start <= event.occurred_at < end:
                viewers[event.video_id].add(event.user_id)
        ranked = sorted(viewers.items(), key=lambda pair: (-len(pair[1]), pair[0]))
        return [(video, len(users)) for video, users in ranked[:size]]

    def _rows(self) -> tuple[list[StoredInteraction], list[FeedPage]]:
        with self._factory.lock:
            if self._factory.unavailable:
                raise DependencyUnavailable("database", "the fake database is switched off")
            state = self._factory.state
            return list(state.interactions.values()), list(state.pages.values())


@dataclass
class FakeCatalogue:
    """Implements `ports.recommender.ModelCatalogue`: knows `videos`, or is down."""

    videos: set[str] = field(default_factory=set)
    model_version: str = "m-test"
    down: bool = False

    def known_videos(self, video_ids: Sequence[str]) -> KnownVideos:
        if self.down:
            raise DependencyUnavailable("model", "the fake model service is down")
        return KnownVideos(frozenset(v for v in video_ids if v in self.videos), self.model_version)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"a naive datetime: {moment!r}")
    return moment.astimezone(UTC)
