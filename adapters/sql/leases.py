"""Implements `ports.repositories.Leases` on the `leases` table, in portable SQL.

`SqlLeases` (any database, expiring): each call is one short transaction of its own, never part
of a unit of work: a lease must be visible to other processes as soon as it is taken, and a
unit of work that rolls back must not give it up. `PgSessionLeases` (PostgreSQL only): held
while the holder's connection lives.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, delete, insert, or_, text, update
from sqlalchemy.exc import IntegrityError

from adapters.sql.errors import database_errors
from adapters.sql.tables import leases


class SqlLeases:
    """On SQLite each call takes the write lock, so it waits (up to the busy timeout) behind
    an open unit of work; on PostgreSQL only the lease's own row is locked."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def acquire(self, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        if ttl <= timedelta(0):
            raise ValueError(f"a lease needs a positive ttl, not {ttl}")
        until = now + ttl
        with database_errors():
            try:
                with self._engine.begin() as connection:
                    if _renew_or_take_over(connection, name, holder, now, until):
                        return True
                    # No row, or another holder's lease still runs: only an insert can tell.
                    connection.execute(
                        insert(leases).values(name=name, holder=holder, expires_at=until)
                    )
            except IntegrityError:
                return False  # the other holder's row, or one another process just inserted
        return True

    def release(self, name: str, holder: str) -> None:
        with database_errors(), self._engine.begin() as connection:
            connection.execute(
                delete(leases).where(leases.c.name == name, leases.c.holder == holder)
            )


def _renew_or_take_over(
    connection: Connection, name: str, holder: str, now: datetime, until: datetime
) -> bool:
    # One conditional UPDATE, so two processes taking over an expired lease cannot both win:
    # on PostgreSQL the second waits for the first's row lock, then re-checks the WHERE
    # against the row the first wrote (not expired any more) and updates nothing.
    statement = (
        update(leases)
        .where(leases.c.name == name, or_(leases.c.holder == holder, leases.c.expires_at <= now))
        .values(holder=holder, expires_at=until)
    )
    return connection.execute(statement).rowcount == 1


class PgSessionLeases:
    """Implements `ports.repositories.Leases` with PostgreSQL session-scoped advisory locks.

    A lease is held as long as the holder's own connection lives: when the holder dies its
    connection closes and PostgreSQL frees the lock at once, so a successor takes over within
    one poll instead of after a TTL (which is ignored here). Every `acquire` by the holder runs
    a statement on that connection, so a holder whose connection was lost (a database restart,
    a killed backend) learns it on its next call and stops before anyone else can start.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._held: dict[tuple[str, str], Connection] = {}

    def acquire(self, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        key = (name, holder)
        with database_errors():
            held = self._held.get(key)
            if held is not None:
                try:
                    held.exec_driver_sql("SELECT 1")
                    held.commit()
                    return True
                except Exception:
                    self._drop(key)
                    raise
            connection = self._engine.connect()
            try:
                taken = connection.execute(
                    text("SELECT pg_try_advisory_lock(hashtextextended(:name, 0))"),
                    {"name": name},
                ).scalar_one()
                connection.commit()
            except Exception:
                connection.invalidate()
                connection.close()
                raise
        if taken:
            self._held[key] = connection
            return True
        connection.close()
        return False

    def release(self, name: str, holder: str) -> None:
        # Closing alone would return the connection to the pool with the lock still held.
        connection = self._held.pop((name, holder), None)
        if connection is None:
            return
        with database_errors():
            try:
                connection.execute(
                    text("SELECT pg_advisory_unlock(hashtextextended(:name, 0))"), {"name": name}
                )
                connection.commit()
            except Exception:
                connection.invalidate()
                raise
            finally:
                connection.close()

    def _drop(self, key: tuple[str, str]) -> None:
        connection = self._held.pop(key)
        connection.invalidate()  # never back to the pool: its session state is unknown
        connection.close()
