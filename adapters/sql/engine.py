"""Engines for the `ports.repositories` adapter: SQLite (embedded default) and PostgreSQL.

Creating an engine opens no connection; the first unit of work does.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import psycopg2
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from domain.errors import DependencyUnavailable

#: How long a SQLite writer waits for another one to finish before giving up, in milliseconds.
SQLITE_BUSY_TIMEOUT_MS = 5_000
#: How long a PostgreSQL connection attempt may take, in seconds (libpq's minimum is 2).
POSTGRES_CONNECT_TIMEOUT_S = 2
#: Execution option naming how a SQLite transaction starts. Units of work write, so they take
#: the write lock up front ("IMMEDIATE"); read-only probes pass "DEFERRED".
SQLITE_BEGIN_OPTION = "feedrec_sqlite_begin"
#: A pooled connection idle longer than this is pinged before use, in seconds (see below).
PING_AFTER_IDLE_S = 2.0
_RETURNED_AT = "feedrec_returned_at"


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


#: JSON columns (feed pools, outbox payloads) through orjson: several times faster than the
#: standard library's encoder on the feed's hot path, same JSON.
_JSON_CODEC: dict[str, Any] = {"json_serializer": _json_text, "json_deserializer": orjson.loads}


def make_engine(url: str) -> Engine:
    """An engine for `sqlite:///path` or `postgresql+psycopg2://...`; other URLs are passed on
    to SQLAlchemy unchanged."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    # A gevent worker runs many requests at once: keep enough connections open that they are
    # reused, not opened and closed per burst (measured 489 new sessions per 2.9k requests with
    # the default 5 + 10 overflow, 19 with these).
    return _server_engine(url, pool_size=20, max_overflow=20)


def make_autocommit_engine(url: str, *, synchronous_commit: bool = True) -> Engine:
    """A PostgreSQL engine whose connections run each statement as its own transaction, for
    single statements that are atomic by themselves: no BEGIN or COMMIT round trip. Its own,
    smaller pool: switching a pooled connection in and out of autocommit costs a driver call
    each way. `synchronous_commit=False` lets a commit return before its WAL is flushed: a
    server crash may forget the last fraction of a second of such commits (never half of one),
    which only data that can be recomputed or re-requested may accept."""
    engine = _server_engine(url, pool_size=10, max_overflow=10, isolation_level="AUTOCOMMIT")
    if not synchronous_commit:

        @event.listens_for(engine, "connect")
        def _asynchronous_commit(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SET synchronous_commit TO off")
            finally:
                cursor.close()

    return engine


def _server_engine(url: str, **kwargs: Any) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        kwargs["connect_args"] = {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S}
    engine = create_engine(url, **_JSON_CODEC, **kwargs)
    _ping_idle_connections(engine)
    return engine


def _ping_idle_connections(engine: Engine) -> None:
    """SQLAlchemy's `pool_pre_ping` costs a round trip on every checkout, a fifth of the feed's
    database time. Ping only a connection that sat idle (a restarted server or a dropped link
    show there); a busy pool skips it, and a connection that breaks in use is reported as a
    disconnect, which invalidates the whole pool (SQLAlchemy's own handling)."""

    @event.listens_for(engine.pool, "checkin")
    def _returned(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _checkout(
        dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
    ) -> None:
        returned_at = record.info.get(_RETURNED_AT)
        if returned_at is None or time.monotonic() - returned_at < PING_AFTER_IDLE_S:
            return  # brand new, or just used
        try:
            # The dialect's own ping (on PostgreSQL it leaves no transaction open).
            engine.dialect.do_ping(dbapi_connection)
        except Exception as err:
            # The pool discards this connection and checks out another (a fresh one if need be).
            raise DisconnectionError(f"an idle pooled connection is gone: {err}") from err


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False}, **_JSON_CODEC)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling defers BEGIN until the first write and breaks
        # SAVEPOINT; switch it off and let the "begin" listener below start transactions.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        # A deferred transaction that reads and then writes fails at once with SQLITE_BUSY when
        # another writer committed in between; IMMEDIATE waits for the lock (busy_timeout).
        mode = connection.get_execution_options().get(SQLITE_BEGIN_OPTION, "IMMEDIATE")
        if mode not in ("IMMEDIATE", "DEFERRED", "EXCLUSIVE"):
            raise ValueError(f"{SQLITE_BEGIN_OPTION} must be IMMEDIATE, DEFERRED or EXCLUSIVE")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


@contextmanager
def prepared_cursor(engine: Engine, name: str, prepare_sql: str) -> Iterator[Any]:
    """A DBAPI cursor of a pooled PostgreSQL connection on which `prepare_sql` (`PREPARE name AS
    ...`) has run: once per database connection, at its first use (a prepared statement lives as
    long as its connection; prepared at use, not at connect, so a connection made before the
    schema exists works once it does).

    For the feed's two hot statements, which need none of SQLAlchemy's statement or result
    processing: the driver's own cursor skips it. Driver errors become
    `DependencyUnavailable("database")`; a connection the error broke is dropped from the pool.
    """
    try:
        connection = engine.raw_connection()
    except (SQLAlchemyError, psycopg2.Error) as err:
        raise DependencyUnavailable("database", f"no connection ({type(err).__name__})") from err
    try:
        cursor = connection.cursor()
        try:
            prepared: set[str] = connection.info.setdefault("feedrec_prepared", set())
            if name not in prepared:
                cursor.execute(prepare_sql)
                prepared.add(name)
            yield cursor
        finally:
            cursor.close()
    except psycopg2.Error as err:
        if getattr(connection.dbapi_connection, "closed", 0):
            connection.invalidate(err)
        raise DependencyUnavailable(
            "database", f"the database failed ({type(err).__name__})"
        ) from err
    finally:
        connection.close()  # back to the pool
