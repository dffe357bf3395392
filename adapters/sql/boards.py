"""Implements `ports.repositories.BoardStore` on the `shared_boards` table, in portable SQL.

Each call is one short transaction of its own on the engine it is given, outside any unit of
work: a board is written by one process a minute and read by the others.
"""

from __future__ import annotations

from contextlib import suppress

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from adapters.sql.errors import database_errors
from adapters.sql.tables import shared_boards
from domain.shared_boards import StoredBoard


class SqlBoardStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def read(self, name: str) -> StoredBoard | None:
        query = select(shared_boards.c.computed_at, shared_boards.c.payload).where(
            shared_boards.c.name == name
        )
        with database_errors(), self._engine.connect() as connection:
            row = connection.execute(query).one_or_none()
        return None if row is None else StoredBoard(name, row.computed_at, row.payload)

    def write(self, board: StoredBoard) -> None:
        values = {"computed_at": board.computed_at, "payload": dict(board.payload)}
        with database_errors(), suppress(IntegrityError), self._engine.begin() as connection:
            # Update first: a board is written every refresh and inserted once per database.
            updated = connection.execute(
                update(shared_boards).where(shared_boards.c.name == board.name).values(values)
            )
            if updated.rowcount == 0:
                # Two writers inserting the first row at once (a lease handed over mid-write):
                # the other one's board stands, and the next refresh writes over it.
                connection.execute(insert(shared_boards).values(name=board.name, **values))
