"""Implements `ports.repositories.Leases` on the `leases` table, in portable SQL.

Each call is one short transaction of its own, never part of a unit of work: a lease must be
visible to other processes as soon as it is taken, and a unit of work that rolls back must
not give it up.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, delete, insert, or_, update
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
