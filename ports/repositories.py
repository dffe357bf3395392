"""Storage ports. Every method raises `domain.errors.DependencyUnavailable` when the store
cannot be reached; no driver exception crosses this boundary."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Protocol, Self

from domain.feed import FeedPage, FeedSession, ServedItem, VideoActivity
from domain.interactions import StoredInteraction
from domain.outbox import OutboxMessage, PendingMessage
from domain.shared_boards import StoredBoard
from domain.trending import TrendingFormula, ViewerActivity
from domain.viewer_state import RecentInteraction, ServedVideo


class InteractionRepository(Protocol):
    def get_by_event_ids(self, event_ids: Collection[str]) -> dict[str, StoredInteraction]:
        """The stored interactions among `event_ids`, keyed by event id; unknown ids are absent."""
        ...

    def add(self, interactions: Sequence[StoredInteraction]) -> None:
        """Stage new interactions; their event ids must not be stored yet (raises Conflict)."""
        ...

    def add_new(self, interactions: Sequence[StoredInteraction]) -> set[str]:
        """Stage those of `interactions` whose event id is not stored yet, and return their
        event ids; stored ones are left as they are (an id repeated in `interactions` is
        staged once, the first time). One pass: no read of the stored ids beforehand."""
        ...

    def count(self) -> int:
        """How many interactions are stored."""
        ...


class FeedCacheRepository(Protocol):
    def add_page(self, page: FeedPage) -> None:
        """Stage one served page. Raises `domain.errors.Conflict` if the session already has a
        page with that number."""
        ...

    def pages(self, feed_session_id: str) -> list[FeedPage]:
        """The session's pages in page order; empty for an unknown session."""
        ...

    def served_scores(self, feed_session_id: str, video_ids: Collection[str]) -> dict[str, float]:
        """video id -> score it was served with in the session, for those of `video_ids` served
        there; a video served on several pages keeps its first score."""
        ...

    def served_items(
        self, feed_session_id: str, video_ids: Collection[str]
    ) -> dict[str, ServedItem]:
        """video id -> where it was served in the session (session-wide rank, score, source;
        an item without its own source has its page's algorithm's), for those of `video_ids`
        served there; a video served on several pages keeps its first place."""
        ...


class FeedSessionRepository(Protocol):
    def add(self, session: FeedSession) -> None:
        """Stage a new session. Raises `domain.errors.Conflict` if its id is stored already."""
        ...

    def get(self, feed_session_id: str) -> FeedSession | None:
        """The session, or None when no such session is stored."""
        ...


class FeedSessionRecorder(Protocol):
    """The feed's hottest write, outside any unit of work: a new session with its first page.
    A store may do it in one statement (PostgreSQL: one round trip, no BEGIN or COMMIT)."""

    def record_new(self, session: FeedSession, first_page: FeedPage) -> None:
        """Store `session` and `first_page` (page 1 of that session) atomically and durably.
        Raises `domain.errors.Conflict` when the session id is taken (nothing is written)."""
        ...


class OutboxRepository(Protocol):
    def add(self, messages: Sequence[OutboxMessage]) -> None:
        """Stage messages; they commit with the unit of work that stages them."""
        ...

    def pending(self, limit: int) -> list[PendingMessage]:
        """Up to `limit` unsent messages, oldest (lowest id) first."""
        ...

    def mark_sent(self, ids: Collection[int], sent_at: datetime) -> None:
        """Record broker acknowledgement of these messages; they are never pending again."""
        ...

    def record_failure(self, ids: Collection[int]) -> None:
        """Count one more failed publish attempt for these messages; they stay pending."""
        ...

    def backlog(self) -> int:
        """How many messages are unsent."""
        ...

    def purge_sent(self, sent_before: datetime) -> int:
        """Delete messages acknowledged before `sent_before`; returns how many. Unsent
        messages are never deleted."""
        ...


class UnitOfWork(Protocol):
    """One transaction over every repository. Leaving the `with` block without `commit()`
    rolls back everything staged in it."""

    interactions: InteractionRepository
    feed_cache: FeedCacheRepository
    feed_sessions: FeedSessionRepository
    outbox: OutboxRepository

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None:
        """Make everything staged durable, atomically. Raises `domain.errors.Conflict` when a
        uniqueness rule is broken (nothing is written then)."""
        ...


class ActivityReader(Protocol):
    """Read-only aggregates for the trending feed; never takes a write lock."""

    def activity_between(self, start: datetime, end: datetime) -> list[VideoActivity]:
        """Interactions with `start <= occurred_at < end`, aggregated per (video, type).
        Order is unspecified; empty when there are none."""
        ...

    def viewer_activity_between(self, start: datetime, end: datetime) -> list[ViewerActivity]:
        """Interactions with `start <= occurred_at < end`, aggregated per (viewer, video, type).
        Order is unspecified; empty when there are none."""
        ...

    def top_videos(
        self, formula: TrendingFormula, now: datetime, size: int
    ) -> list[tuple[str, float]]:
        """Up to `size` (video id, score) with a positive score under `formula` over the
        interactions in its buckets before `now`, best first, ties by video id. Equal to
        `domain.trending.top_videos_from_activity` over `viewer_activity_between` up to float
        rounding."""
        ...


class ViewerHistory(Protocol):
    """A viewer's recent rows, read in one round trip on the feed's hot path."""

    def recent(
        self,
        user_id: str,
        interactions_since: datetime,
        served_since: datetime,
        limit: int,
        page_limit: int,
    ) -> tuple[list[RecentInteraction], list[ServedVideo]]:
        """The viewer's interactions with `occurred_at >= interactions_since` (the newest
        `limit`) plus their `hide`s of any age (the newest `limit`), and the videos of their
        newest `page_limit` pages served at or after `served_since`; each list newest first."""
        ...


class EngagementReader(Protocol):
    def engaged_viewers(self, start: datetime, end: datetime, size: int) -> list[tuple[str, int]]:
        """Up to `size` (video id, distinct viewers) over the positive interactions (like,
        comment, share, complete, and views of at least `domain.model.VIEW_MIN_WATCH_MS`) with
        `start <= occurred_at < end`, most viewers first, ties by video id."""
        ...


class Leases(Protocol):
    """Named, expiring locks in the database: one holder at a time per name, and a holder that
    dies loses the lease when it expires, so the work it guarded is recoverable."""

    def acquire(self, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        """Take or renew the lease for `holder` until `now + ttl`. True when `holder` holds it
        now; False when another holder's lease has not expired."""
        ...

    def release(self, name: str, holder: str) -> None:
        """Give the lease up if `holder` holds it; otherwise do nothing."""
        ...


class BoardStore(Protocol):
    """The boards one process computed for the whole deployment (`domain.shared_boards`): one
    per name, the newest write wins."""

    def read(self, name: str) -> StoredBoard | None:
        """The board stored under `name` (its `computed_at` in UTC), or None if none is."""
        ...

    def write(self, board: StoredBoard) -> None:
        """Store `board` under its name in place of the one stored before."""
        ...

