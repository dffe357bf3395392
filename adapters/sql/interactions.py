"""Implements `ports.repositories.InteractionRepository` on `user_interactions`, and the
row mapping of a stored interaction that the bulk loader shares.

Works inside the unit of work's open transaction: "staging" is executing the statement there,
so later reads in the same unit of work see it and a rollback discards it.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, func, insert, select
from sqlalchemy.engine import RowMapping

from adapters.sql.errors import database_errors
from adapters.sql.json_rows import insert_json_rows
from adapters.sql.statements import IN_CHUNK, chunks, insert_or_nothing
from adapters.sql.tables import user_interactions
from domain.interactions import InteractionEvent, InteractionType, StoredInteraction


class SqlInteractionRepository:
    """Implements `ports.repositories.InteractionRepository` on `user_interactions`."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    @database_errors()
    def get_by_event_ids(self, event_ids: Collection[str]) -> dict[str, StoredInteraction]:
        found: dict[str, StoredInteraction] = {}
        for chunk in chunks(set(event_ids), IN_CHUNK):
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


@functools.cache
def _insert_new_interactions(dialect: str) -> Any:
    """`insert_or_nothing` on `user_interactions`, returning the event ids it inserted (a new
    row's only possible clash is its `event_id`: `id` comes from the sequence)."""
    statement = insert_or_nothing(dialect, user_interactions)
    if statement is None:
        # The service runs on PostgreSQL or SQLite (adapters.sql.engine); both have it.
        raise ValueError(f"unsupported database {dialect!r}: PostgreSQL or SQLite only")
    return statement.returning(user_interactions.c.event_id)
