"""Implements `ports.repositories.UnitOfWork` with one SQLAlchemy connection and transaction."""

from __future__ import annotations

import contextlib
from types import TracebackType
from typing import Self

from sqlalchemy import Connection, Engine

from adapters.sql.errors import database_errors
from adapters.sql.feed_records import SqlFeedCacheRepository, SqlFeedSessionRepository
from adapters.sql.interactions import SqlInteractionRepository
from adapters.sql.outbox import SqlOutboxRepository
from ports.repositories import (
    FeedCacheRepository,
    FeedSessionRepository,
    InteractionRepository,
    OutboxRepository,
)


class SqlUnitOfWork:
    """One transaction, opened on entering the `with` block and rolled back on leaving it
    unless `commit()` ran. Raises `DependencyUnavailable` on entering when the database
    cannot be reached.

    On SQLite the transaction holds the write lock from the start, so keep network calls
    (model service, broker) outside the block.
    """

    interactions: InteractionRepository
    feed_cache: FeedCacheRepository
    feed_sessions: FeedSessionRepository
    outbox: OutboxRepository

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Connection | None = None

    def __enter__(self) -> Self:
        if self._connection is not None:
            raise RuntimeError("a unit of work is entered once")
        with database_errors():
            connection = self._engine.connect()
            try:
                connection.begin()
            except BaseException:
                connection.close()
                raise
        self._connection = connection
        self.interactions = SqlInteractionRepository(connection)
        self.feed_cache = SqlFeedCacheRepository(connection)
        self.feed_sessions = SqlFeedSessionRepository(connection)
        self.outbox = SqlOutboxRepository(connection)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        # A rollback or close that fails leaves nothing behind (the server discards an
        # unfinished transaction with its connection), and must not hide the block's own error.
        with contextlib.suppress(Exception):
            connection.rollback()
        with contextlib.suppress(Exception):
            connection.close()

    @database_errors()
    def commit(self) -> None:
        if self._connection is None:
            raise RuntimeError("commit() belongs inside the unit of work's `with` block")
        self._connection.commit()
        # The next statement, if any, runs in a fresh transaction (SQLAlchemy autobegins it).


class SqlUnitOfWorkFactory:
    """`Callable[[], UnitOfWork]`: a fresh `SqlUnitOfWork` on every call."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._engine)
