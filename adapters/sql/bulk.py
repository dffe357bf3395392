"""Fast loading of demo history into `user_interactions` (the table behind
`ports.repositories.InteractionRepository`), bypassing the unit of work."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice

from sqlalchemy import Engine, insert

from adapters.sql.errors import database_errors
from adapters.sql.interactions import interaction_row
from adapters.sql.tables import user_interactions
from domain.interactions import StoredInteraction


def bulk_insert_interactions(
    engine: Engine, rows: Iterable[StoredInteraction], batch_size: int = 10_000
) -> int:
    """Insert `rows` in one transaction, `batch_size` rows per executemany; returns how many.

    Raises Conflict (nothing inserted) when an event id is already stored or repeats.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    inserted = 0
    iterator = iter(rows)
    statement = insert(user_interactions)
    with database_errors(), engine.begin() as connection:
        while batch := [interaction_row(row) for row in islice(iterator, batch_size)]:
            connection.execute(statement, batch)
            inserted += len(batch)
    return inserted
