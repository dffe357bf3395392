"""SQL implementations of the `ports.repositories` repositories: `InteractionRepository`,
`FeedCacheRepository`, `FeedSessionRepository` and `OutboxRepository`.

Each works inside the unit of work's open transaction: "staging" is executing the statement
there, so later reads in the same unit of work see it and a rollback discards it.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import Connection, Table, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import RowMapping

from adapters.sql.errors import database_errors
from adapters.sql.json_rows import insert_json_rows
from adapters.sql.tables import feed_cache, feed_sessions, outbox, user_interactions
from domain.errors import Conflict
from domain.feed import Algorithm, FallbackReason, FeedPage, FeedSession, ScoredVideo
from domain.interactions import InteractionEvent, InteractionType, StoredInteraction
from domain.outbox import OutboxMessage, PendingMessage

_T = TypeVar("_T")

# Keeps IN lists well below every driver's bound-parameter limit.
_IN_CHUNK = 500
SESSION_TAKEN = "this feed session id is taken"


class SqlInteractionRepository:
    """Implements `ports.repositories.InteractionRepository` on `user_interactions`."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    @database_errors()
    def get_by_event_ids(self, event_ids: Collection[str]) -> dict[str, StoredInteraction]:
        found: dict[str, StoredInteraction] = {}
        for chunk in _chunks(set(event_ids), _IN_CHUNK):
            query = select(user_interactions).where(user_interactions.c.event_id.in_(chunk))
            for row in self._connection.execute(query).mappings():
                found[row["event_id"]] = interaction_from_row(row)
        return found

    @database_errors()
    def add(self, interactions: Sequence[StoredInteraction]) -> None:
        if not interactions:
            return
        # A savepoint undoes just this call on a Conflict, leaving the transaction usable
        # (PostgreSQL refuses every later statement of a transaction that hit an error).
        with self._connection.begin_nested():
            self._connection.execute(
                insert(user_interactions), [interaction_row(item) for item in interactions]
            )

    @database_errors()
    def add_new(self, interactions: Sequence[StoredInteraction]) -> set[str]:
        if not interactions:
            return set()
        rows = [interaction_row(item) for item in interactions]
        if self._connection.dialect.name == "postgresql":
            inserted = insert_json_rows(
                self._connection,
                user_interactions,
                rows,
                skip_conflicts_on="event_id",
                returning="event_id",
            )
            return set(inserted)
        # SQLite: one multi-row INSERT per 1,000 rows (SQLAlchemy's insertmanyvalues), each
        # returning the event ids it inserted; a stored id inserts nothing.
        statement = _insert_new_interactions(self._connection.dialect.name)
        return set(self._connection.execute(statement, rows).scalars())

    @database_errors()
    def count(self) -> int:
        query = select(func.count()).select_from(user_interactions)
        return int(self._connection.execute(query).scalar_one())


class SqlFeedCacheRepository:
    """Implements `ports.repositories.FeedCacheRepository` on `feed_cache`."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    @database_errors()
    def add_page(self, page: FeedPage) -> None:
        _insert_one_or_conflict(
            self._connection, feed_cache, page_row(page), "this page is recorded already"
        )

    @database_errors()
    def pages(self, feed_session_id: str) -> list[FeedPage]:
        query = (
            select(feed_cache)
            .where(feed_cache.c.feed_session_id == feed_session_id)
            .order_by(feed_cache.c.page_number)
        )
        return [_page_from_row(row) for row in self._connection.execute(query).mappings()]

    @database_errors()
    def served_scores(self, feed_session_id: str, video_ids: Collection[str]) -> dict[str, float]:
        wanted = set(video_ids)
        if not wanted:
            return {}
        query = (
            select(feed_cache.c["items"])  # `.c.items` is the collection's method
            .where(feed_cache.c.feed_session_id == feed_session_id)
            .order_by(feed_cache.c.page_number)
        )
        scores: dict[str, float] = {}
        for items in self._connection.execute(query).scalars():
            for item in items:
                if item["videoId"] in wanted:
                    scores.setdefault(item["videoId"], float(item["score"]))
        return scores


class SqlFeedSessionRepository:
    """Implements `ports.repositories.FeedSessionRepository` on `feed_sessions`."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    @database_errors()
    def add(self, session: FeedSession) -> None:
        _insert_one_or_conflict(
            self._connection, feed_sessions, session_row(session), SESSION_TAKEN
        )

    @database_errors()
    def get(self, feed_session_id: str) -> FeedSession | None:
        query = select(feed_sessions).where(feed_sessions.c.feed_session_id == feed_session_id)
        row = self._connection.execute(query).mappings().one_or_none()
        if row is None:
            return None
        return FeedSession(
            feed_session_id=row["feed_session_id"],
            user_id=row["user_id"],
            algorithm=Algorithm(row["algorithm"]),
            fallback_reason=_reason(row["fallback_reason"]),
            model_version=row["model_version"],
            experiment_variant_id=row["experiment_variant_id"],
            candidates=_scored_from_json(row["candidates"]),
            created_at=row["created_at"],
        )


class SqlOutboxRepository:
    """Implements `ports.repositories.OutboxRepository` on `outbox`."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    @database_errors()
    def add(self, messages: Sequence[OutboxMessage]) -> None:
        if not messages:
            return
        rows = [
            {
                "topic": message.topic,
                "key": message.key,
                "payload": dict(message.payload),
                "created_at": message.created_at,
                "attempts": 0,
            }
            for message in messages
        ]
        if self._connection.dialect.name == "postgresql":
            insert_json_rows(self._connection, outbox, rows)
            return
        self._connection.execute(insert(outbox), rows)

    @database_errors()
    def pending(self, limit: int) -> list[PendingMessage]:
        if limit <= 0:
            return []
        if self._connection.dialect.name == "postgresql":
            # A plain index scan of ix_outbox_pending marks the entries of rows sent since the
            # last vacuum dead as it passes them, so the next round skips them; the bitmap
            # scan the planner prefers at small estimates revisits every one of them, each
            # round (measured 6 ms a round with 200k sent rows not yet vacuumed, and growing).
            self._connection.exec_driver_sql("SET LOCAL enable_bitmapscan = off")
        query = select(outbox).where(outbox.c.sent_at.is_(None)).order_by(outbox.c.id).limit(limit)
        return [
            PendingMessage(
                id=row["id"],
                message=OutboxMessage(row["topic"], row["key"], row["payload"], row["created_at"]),
                attempts=row["attempts"],
            )
            for row in self._connection.execute(query).mappings()
        ]

    @database_errors()
    def mark_sent(self, ids: Collection[int], sent_at: datetime) -> None:
        # The first acknowledgement is the one publish latency is measured to.
        for chunk in _chunks(set(ids), _IN_CHUNK):
            self._connection.execute(
                update(outbox)
                .where(outbox.c.id.in_(chunk), outbox.c.sent_at.is_(None))
                .values(sent_at=sent_at)
            )

    @database_errors()
    def record_failure(self, ids: Collection[int]) -> None:
        for chunk in _chunks(set(ids), _IN_CHUNK):
            self._connection.execute(
                update(outbox).where(outbox.c.id.in_(chunk)).values(attempts=outbox.c.attempts + 1)
            )

    @database_errors()
    def backlog(self) -> int:
        query = select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
        return int(self._connection.execute(query).scalar_one())

    @database_errors()
    def purge_sent(self, sent_before: datetime) -> int:
        statement = delete(outbox).where(
            outbox.c.sent_at.is_not(None), outbox.c.sent_at < sent_before
        )
        return int(self._connection.execute(statement).rowcount)


def session_row(session: FeedSession) -> dict[str, Any]:
    return {
        "feed_session_id": session.feed_session_id,
        "user_id": session.user_id,
        "algorithm": session.algorithm.value,
        "fallback_reason": session.fallback_reason.value if session.fallback_reason else None,
        "model_version": session.model_version,
        "experiment_variant_id": session.experiment_variant_id,
        "candidates": _scored_json(session.candidates),
        "created_at": session.created_at,
    }


def page_row(page: FeedPage) -> dict[str, Any]:
    return {
        "feed_session_id": page.feed_session_id,
        "page_number": page.page_number,
        "user_id": page.user_id,
        "algorithm": page.algorithm.value,
        "fallback_reason": page.fallback_reason.value if page.fallback_reason else None,
        "model_version": page.model_version,
        "experiment_variant_id": page.experiment_variant_id,
        "items": _scored_json(page.items),
        "created_at": page.created_at,
    }


def interaction_row(item: StoredInteraction) -> dict[str, Any]:
    """The `user_interactions` row of one stored interaction (shared with the bulk loader)."""
    event = item.event
    return {
        "event_id": event.event_id,
        "user_id": event.user_id,
        "video_id": event.video_id,
        "interaction_type": event.interaction_type.value,
        "watch_time_ms": event.watch_time_ms,
        "occurred_at": event.occurred_at,
        "received_at": item.received_at,
        "feed_session_id": event.feed_session_id,
        "algorithm": event.algorithm,
        "experiment_variant_id": event.experiment_variant_id,
        "recommendation_score": item.recommendation_score,
    }


def interaction_from_row(row: RowMapping | Mapping[str, Any]) -> StoredInteraction:
    event = InteractionEvent(
        event_id=row["event_id"],
        user_id=row["user_id"],
        video_id=row["video_id"],
        interaction_type=InteractionType(row["interaction_type"]),
        watch_time_ms=row["watch_time_ms"],
        occurred_at=row["occurred_at"],
        feed_session_id=row["feed_session_id"],
        algorithm=row["algorithm"],
        experiment_variant_id=row["experiment_variant_id"],
    )
    return StoredInteraction(event, row["received_at"], row["recommendation_score"])


def _page_from_row(row: RowMapping) -> FeedPage:
    return FeedPage(
        feed_session_id=row["feed_session_id"],
        page_number=row["page_number"],
        user_id=row["user_id"],
        algorithm=Algorithm(row["algorithm"]),
        fallback_reason=_reason(row["fallback_reason"]),
        model_version=row["model_version"],
        experiment_variant_id=row["experiment_variant_id"],
        items=_scored_from_json(row["items"]),
        created_at=row["created_at"],
    )


def _reason(value: str | None) -> FallbackReason | None:
    return FallbackReason(value) if value is not None else None


def _scored_json(items: Sequence[ScoredVideo]) -> list[dict[str, Any]]:
    """The JSON of ranked items, in their order: `[{"videoId": ..., "score": ...}, ...]`."""
    return [{"videoId": item.video_id, "score": item.score} for item in items]


def _scored_from_json(items: Sequence[Mapping[str, Any]]) -> tuple[ScoredVideo, ...]:
    return tuple(ScoredVideo(item["videoId"], float(item["score"])) for item in items)


def _chunks(values: Collection[_T], size: int) -> Iterator[list[_T]]:
    iterator = iter(values)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _insert_one_or_conflict(
    connection: Connection, table: Table, row: dict[str, Any], conflict: str
) -> None:
    """Insert one row, or raise Conflict (at once, not at commit) when a unique key holds it.

    `ON CONFLICT DO NOTHING` leaves the transaction usable without the two extra round trips
    of a savepoint per insert (they cost measurable throughput on the feed's first page)."""
    statement = _insert_or_nothing(connection.dialect.name, table)
    if statement is None:  # no portable upsert: a savepoint keeps the transaction usable
        with connection.begin_nested():
            connection.execute(insert(table), row)
        return
    if connection.execute(statement, row).rowcount != 1:
        raise Conflict(conflict)


@functools.cache
def _insert_new_interactions(dialect: str) -> Any:
    """`_insert_or_nothing` on `user_interactions`, returning the event ids it inserted (a new
    row's only possible clash is its `event_id`: `id` comes from the sequence)."""
    statement = _insert_or_nothing(dialect, user_interactions)
    if statement is None:
        # The service runs on PostgreSQL or SQLite (adapters.sql.engine); both have it.
        raise ValueError(f"unsupported database {dialect!r}: PostgreSQL or SQLite only")
    return statement.returning(user_interactions.c.event_id)


@functools.cache
def _insert_or_nothing(dialect: str, table: Table) -> Any:
    """One statement per table and dialect, values bound at execution: SQLAlchemy then reuses
    its compiled form (a statement built with `.values(row)` is re-keyed column by column on
    every call, which measured as a seventh of a feed page's CPU)."""
    if dialect == "postgresql":
        return postgresql_insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite_insert(table).on_conflict_do_nothing()
    return None
