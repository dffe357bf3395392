"""`user_interactions` rows in id order for the nightly parquet export, and the export's
watermark (the highest id it has exported) in `export_watermarks`.

Rows are read outside any unit of work, each call in a short transaction of its own: a
DEFERRED one on SQLite, so the export never queues behind the web process for the write lock.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from adapters.sql.engine import SQLITE_BEGIN_OPTION
from adapters.sql.errors import database_errors
from adapters.sql.tables import export_watermarks, user_interactions

_READING = {SQLITE_BEGIN_OPTION: "DEFERRED"}


class ExportRow(NamedTuple):
    """One `user_interactions` row as stored. Datetimes are aware UTC with microseconds;
    `interaction_id` is the table's id, the export's watermark."""

    interaction_id: int
    event_id: str
    user_id: str
    video_id: str
    interaction_type: str
    watch_time_ms: int
    occurred_at: datetime
    received_at: datetime
    feed_session_id: str | None
    algorithm: str | None
    experiment_variant_id: str | None
    recommendation_score: float | None


_COLUMNS = [user_interactions.c[name] for name in ("id", *ExportRow._fields[1:])]


class SqlExportSource:
    """What `adapters.parquet_export.ParquetExporter` reads from and records progress in."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def rows_after(self, last_id: int, limit: int, received_before: datetime) -> list[ExportRow]:
        """Up to `limit` rows with id > `last_id`, ascending by id, stopping before the first
        row received at or after `received_before`: the result is always a gap-free prefix of
        what follows the watermark, so moving the watermark to its last id skips nothing.

        Why the time limit: PostgreSQL hands out ids when a row is inserted, not when it
        commits, so a transaction holding id 10 may commit after one holding id 11. Reading
        11 and moving the watermark past it would lose 10 for good. A transaction still open
        now took its id less than D ago, where D is the longest time from taking `received_at`
        to committing (request handling plus clock skew between writers); every row with a
        higher id then has `received_at` within 2·D of now. So with `received_before` at
        least 2·D in the past, no row returned can have an uncommitted row below it. (SQLite
        commits writers one at a time in id order; the rule costs it nothing but the lag.)

        An empty list means nothing old enough follows the watermark.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        statement = (
            select(*_COLUMNS)
            .where(user_interactions.c.id > last_id)
            .order_by(user_interactions.c.id)
            .limit(limit)
        )
        with database_errors(), self._engine.connect().execution_options(**_READING) as connection:
            found = connection.execute(statement).all()
        rows: list[ExportRow] = []
        for row in found:
            exported = ExportRow._make(row)
            if exported.received_at >= received_before:
                break
            rows.append(exported)
        return rows

    def watermark(self, name: str) -> int:
        """The highest id export `name` has recorded; 0 before its first run."""
        statement = select(export_watermarks.c.last_id).where(export_watermarks.c.name == name)
        with database_errors(), self._engine.connect().execution_options(**_READING) as connection:
            last_id = connection.execute(statement).scalar_one_or_none()
        return 0 if last_id is None else int(last_id)

    def set_watermark(self, name: str, last_id: int, now: datetime) -> None:
        """Record that export `name` has every row up to `last_id`. Only moves forward: a
        lower or equal `last_id` than the one recorded changes nothing."""
        with database_errors():
            if self._move_forward(name, last_id, now):
                return
            try:
                with self._engine.begin() as connection:
                    connection.execute(
                        insert(export_watermarks).values(name=name, last_id=last_id, updated_at=now)
                    )
            except IntegrityError:
                # The row exists (perhaps just inserted by another process): compare again.
                self._move_forward(name, last_id, now)

    def _move_forward(self, name: str, last_id: int, now: datetime) -> bool:
        """True when the row exists (moved forward, or already at or past `last_id`)."""
        table = export_watermarks
        with self._engine.begin() as connection:
            moved = connection.execute(
                update(table)
                .where(table.c.name == name, table.c.last_id < last_id)
                .values(last_id=last_id, updated_at=now)
            ).rowcount
            if moved:
                return True
            exists = connection.execute(select(table.c.name).where(table.c.name == name))
            return exists.first() is not None
