"""In-memory fakes of the ports, for tests. Each passes the same contract tests as the real
adapter (tests/contract/), so a test on fakes says something about production."""

from __future__ import annotations

import copy
import itertools
import json
import threading
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

from domain.errors import Conflict, DependencyUnavailable
from domain.feed import FeedPage, FeedSession, ServedItem, VideoActivity, served_places
from domain.interactions import StoredInteraction
from domain.outbox import OutboxMessage, PendingMessage
from domain.shared_boards import StoredBoard
from domain.trending import TrendingFormula, ViewerActivity, top_videos_from_activity
from ports.repositories import (
    FeedCacheRepository,
    FeedSessionRepository,
    InteractionRepository,
    OutboxRepository,
)


class FixedClock:
    """Implements `ports.clock.Clock`: the time is whatever the test sets (`moment`), in UTC."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    @property
    def moment(self) -> datetime:
        return self._moment

    @moment.setter
    def moment(self, value: datetime) -> None:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("a clock tells timezone-aware time")
        self._moment = value.astimezone(UTC)

    def now(self) -> datetime:
        return self._moment

    def advance(self, delta: timedelta) -> None:
        self.moment = self._moment + delta


@dataclass
class StoredState:
    """Everything the fake database holds. Rows are frozen dataclasses, so a shallow copy of
    each container is a snapshot."""

    interactions: dict[str, StoredInteraction] = field(default_factory=dict)
    pages: dict[tuple[str, int], FeedPage] = field(default_factory=dict)
    sessions: dict[str, FeedSession] = field(default_factory=dict)
    outbox: dict[int, PendingMessage] = field(default_factory=dict)
    sent_at: dict[int, datetime] = field(default_factory=dict)

    def snapshot(self) -> StoredState:
        return StoredState(
            dict(self.interactions),
            dict(self.pages),
            dict(self.sessions),
            dict(self.outbox),
            dict(self.sent_at),
        )


# A staged change: applied to the unit of work's own view at once, replayed on commit.
_Change = Callable[[StoredState], None]


class InMemoryUnitOfWork:
    """Implements `ports.repositories.UnitOfWork` over an `InMemoryUnitOfWorkFactory`'s state.

    Staged changes are visible inside the unit of work at once and to others after `commit()`,
    which replays them atomically against what is committed by then: a uniqueness rule broken
    at staging or at commit raises `Conflict` and writes nothing.
    """

    def __init__(self, factory: InMemoryUnitOfWorkFactory) -> None:
        self.factory = factory
        self._view: StoredState | None = None
        self._changes: list[_Change] = []
        self.interactions: InteractionRepository = _Interactions(self)
        self.feed_cache: FeedCacheRepository = _FeedCache(self)
        self.feed_sessions: FeedSessionRepository = _FeedSessions(self)
        self.outbox: OutboxRepository = _Outbox(self)
        self.committed = False

    def __enter__(self) -> Self:
        if self.factory.unavailable:
            raise DependencyUnavailable("database", "the fake database is switched off")
        self._view = self.factory.state.snapshot()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._view = None
        self._changes = []

    def commit(self) -> None:
        with self.factory.lock:
            if self.factory.unavailable:
                raise DependencyUnavailable("database", "the fake database is switched off")
            new_state = self.factory.state.snapshot()
            for change in self._changes:
                change(new_state)
            self.factory.state = new_state
            self.factory.commits += 1
            self._view = new_state.snapshot()
        self._changes = []
        self.committed = True

    def view(self) -> StoredState:
        if self._view is None:
            raise RuntimeError("use the unit of work inside its `with` block")
        if self.factory.unavailable:
            raise DependencyUnavailable("database", "the fake database is switched off")
        return self._view

    def stage(self, change: _Change) -> None:
        change(self.view())  # raises Conflict before anything is staged
        self._changes.append(change)


class InMemoryUnitOfWorkFactory:
    """`Callable[[], UnitOfWork]` over one shared in-memory state.

    Tests read `state` to see what is committed, count `commits`, and set `unavailable` to
    make every unit of work raise `DependencyUnavailable`, as a database that is down would.
    """

    def __init__(self) -> None:
        self.state = StoredState()
        self.lock = threading.Lock()
        self.commits = 0
        self.unavailable = False
        self._outbox_ids = itertools.count(1)

    def __call__(self) -> InMemoryUnitOfWork:
        return InMemoryUnitOfWork(self)

    def next_outbox_id(self) -> int:
        # Like a database sequence: ids of rolled-back messages are never reused.
        with self.lock:
            return next(self._outbox_ids)


class _Interactions:
    def __init__(self, uow: InMemoryUnitOfWork) -> None:
        self._uow = uow

    def get_by_event_ids(self, event_ids: Collection[str]) -> dict[str, StoredInteraction]:
        stored = self._uow.view().interactions
        return {event_id: stored[event_id] for event_id in set(event_ids) if event_id in stored}

    def add(self, interactions: Sequence[StoredInteraction]) -> None:
        new = [
            replace(
                item,
                event=replace(item.event, occurred_at=_utc(item.event.occurred_at)),
                received_at=_utc(item.received_at),
            )
            for item in interactions
        ]

        def change(state: StoredState) -> None:
            ids = [item.event.event_id for item in new]
            if len(set(ids)) != len(ids) or any(event_id in state.interactions for event_id in ids):
                raise Conflict("already stored (duplicate event_id)")
            state.interactions.update((item.event.event_id, item) for item in new)

        self._uow.stage(change)

    def add_new(self, interactions: Sequence[StoredInteraction]) -> set[str]:
        stored = self._uow.view().interactions
        new: dict[str, StoredInteraction] = {}
        for item in interactions:
            event_id = item.event.event_id
            if event_id not in stored and event_id not in new:
                new[event_id] = item
        self.add(list(new.values()))  # at commit: Conflict if another commit stored one since
        return set(new)

    def count(self) -> int:
        return len(self._uow.view().interactions)


class _FeedCache:
    def __init__(self, uow: InMemoryUnitOfWork) -> None:
        self._uow = uow

    def add_page(self, page: FeedPage) -> None:
        page = replace(page, created_at=_utc(page.created_at))

        def change(state: StoredState) -> None:
            key = (page.feed_session_id, page.page_number)
            if key in state.pages:
                raise Conflict("already stored (duplicate feed_session_id, page_number)")
            state.pages[key] = page

        self._uow.stage(change)

    def pages(self, feed_session_id: str) -> list[FeedPage]:
        pages = self._uow.view().pages
        return sorted(
            (page for (session, _), page in pages.items() if session == feed_session_id),
            key=lambda page: page.page_number,
        )

    def served_scores(self, feed_session_id: str, video_ids: Collection[str]) -> dict[str, float]:
        wanted = set(video_ids)
        scores: dict[str, float] = {}
        for page in self.pages(feed_session_id):
            for item in page.items:
                if item.video_id in wanted:
                    scores.setdefault(item.video_id, item.score)
        return scores

    def served_items(
        self, feed_session_id: str, video_ids: Collection[str]
    ) -> dict[str, ServedItem]:
        pages = [(page.items, page.algorithm) for page in self.pages(feed_session_id)]
        return served_places(pages, set(video_ids))


class _FeedSessions:
    def __init__(self, uow: InMemoryUnitOfWork) -> None:
        self._uow = uow

    def add(self, session: FeedSession) -> None:
        session = replace(
            session, candidates=tuple(session.candidates), created_at=_utc(session.created_at)
        )

        def change(state: StoredState) -> None:
            if session.feed_session_id in state.sessions:
                raise Conflict("already stored (duplicate feed_session_id)")
            state.sessions[session.feed_session_id] = session

        self._uow.stage(change)

    def get(self, feed_session_id: str) -> FeedSession | None:
        return self._uow.view().sessions.get(feed_session_id)


class _Outbox:
    def __init__(self, uow: InMemoryUnitOfWork) -> None:
        self._uow = uow

    def add(self, messages: Sequence[OutboxMessage]) -> None:
        rows = [
            PendingMessage(
                self._uow.factory.next_outbox_id(),
                replace(
                    message,
                    payload=copy.deepcopy(message.payload),
                    created_at=_utc(message.created_at),
                ),
                0,
            )
            for message in messages
        ]

        def change(state: StoredState) -> None:
            state.outbox.update((row.id, row) for row in rows)

        self._uow.stage(change)

    def pending(self, limit: int) -> list[PendingMessage]:
        state = self._uow.view()
        unsent = sorted(row_id for row_id in state.outbox if row_id not in state.sent_at)
        return [state.outbox[row_id] for row_id in unsent[: max(limit, 0)]]

    def mark_sent(self, ids: Collection[int], sent_at: datetime) -> None:
        chosen = set(ids)

        def change(state: StoredState) -> None:
            for row_id in chosen & state.outbox.keys():
                state.sent_at.setdefault(row_id, _utc(sent_at))

        self._uow.stage(change)

    def record_failure(self, ids: Collection[int]) -> None:
        chosen = set(ids)

        def change(state: StoredState) -> None:
            for row_id in chosen & state.outbox.keys():
                row = state.outbox[row_id]
                state.outbox[row_id] = replace(row, attempts=row.attempts + 1)

        self._uow.stage(change)

    def backlog(self) -> int:
        state = self._uow.view()
        return sum(1 for row_id in state.outbox if row_id not in state.sent_at)

    def purge_sent(self, sent_before: datetime) -> int:
        cutoff = _utc(sent_before)

        def change(state: StoredState) -> None:
            for row_id in [row_id for row_id, at in state.sent_at.items() if at < cutoff]:
                del state.outbox[row_id], state.sent_at[row_id]

        # Like DELETE's row count: what this unit of work sees, counted before staging.
        purged = sum(1 for at in self._uow.view().sent_at.values() if at < cutoff)
        self._uow.stage(change)
        return purged


class InMemoryActivityReader:
    """Implements `ports.repositories.ActivityReader` over what an `InMemoryUnitOfWorkFactory`
    has committed (never what a unit of work only staged)."""

    def __init__(self, factory: InMemoryUnitOfWorkFactory) -> None:
        self._factory = factory

    def top_videos(
        self, formula: TrendingFormula, now: datetime, size: int
    ) -> list[tuple[str, float]]:
        return top_videos_from_activity(self.viewer_activity_between, formula, now, size)

    def activity_between(self, start: datetime, end: datetime) -> list[VideoActivity]:
        totals: dict[tuple[str, str], tuple[int, int]] = defaultdict(lambda: (0, 0))
        for item in self.viewer_activity_between(start, end):
            events, watch_time_ms = totals[(item.video_id, item.interaction_type)]
            totals[(item.video_id, item.interaction_type)] = (
                events + item.events,
                watch_time_ms + item.watch_time_ms,
            )
        return [
            VideoActivity(video_id, kind, events, watch_time_ms)
            for (video_id, kind), (events, watch_time_ms) in totals.items()
        ]

    def viewer_activity_between(self, start: datetime, end: datetime) -> list[ViewerActivity]:
        start, end = _utc(start), _utc(end)
        with self._factory.lock:
            if self._factory.unavailable:
                raise DependencyUnavailable("database", "the fake database is switched off")
            stored = list(self._factory.state.interactions.values())
        totals: dict[tuple[str, str, str], tuple[int, int]] = {}
        for item in stored:
            event = item.event
            if start <= event.occurred_at < end:
                key = (event.user_id, event.video_id, event.interaction_type.value)
                events, watch_time_ms = totals.get(key, (0, 0))
                totals[key] = (events + 1, watch_time_ms + event.watch_time_ms)
        return [
            ViewerActivity(user_id, video_id, kind, events, watch_time_ms)
            for (user_id, video_id, kind), (events, watch_time_ms) in totals.items()
        ]


class _SwitchableStore:
    """One lock around each call; tests set `unavailable` to make every call raise
    `DependencyUnavailable`, as a database that is down."""

    def __init__(self) -> None:
        self.unavailable = False
        self._lock = threading.Lock()

    @contextmanager
    def _available(self) -> Iterator[None]:
        with self._lock:
            if self.unavailable:
                raise DependencyUnavailable("database", "the fake database is switched off")
            yield


class InMemoryLeases(_SwitchableStore):
    """Implements `ports.repositories.Leases` in one process. Tests read `held` (name ->
    (holder, expires at)) and set `unavailable` to make every call raise
    `DependencyUnavailable`."""

    def __init__(self) -> None:
        super().__init__()
        self.held: dict[str, tuple[str, datetime]] = {}

    def acquire(self, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        if ttl <= timedelta(0):
            raise ValueError(f"a lease needs a positive ttl, not {ttl}")
        now = _utc(now)
        with self._available():
            current = self.held.get(name)
            if current is not None and current[0] != holder and current[1] > now:
                return False
            self.held[name] = (holder, now + ttl)
            return True

    def release(self, name: str, holder: str) -> None:
        with self._available():
            if name in self.held and self.held[name][0] == holder:
                del self.held[name]


class InMemoryBoardStore(_SwitchableStore):
    """Implements `ports.repositories.BoardStore` in one process. Tests read `boards` (name ->
    StoredBoard) and `writes`, and set `unavailable` to make every call raise
    `DependencyUnavailable`."""

    def __init__(self) -> None:
        super().__init__()
        self.boards: dict[str, StoredBoard] = {}
        self.writes = 0

    def read(self, name: str) -> StoredBoard | None:
        with self._available():
            return self.boards.get(name)

    def write(self, board: StoredBoard) -> None:
        moment = _utc(board.computed_at)
        # What a database hands back: the payload as JSON would carry it, not the caller's.
        payload = json.loads(json.dumps(board.payload))
        with self._available():
            self.boards[board.name] = StoredBoard(board.name, moment, payload)
            self.writes += 1


def _utc(moment: datetime) -> datetime:
    """What a database hands back: the same instant in UTC; naive datetimes are refused."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a naive datetime cannot be stored: {moment!r}")
    return moment.astimezone(UTC)
