"""Implements `ports.repositories.ActivityReader`: per-video activity aggregated in the
database, from `user_interactions`, for the trending feed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, Select, func, select

from adapters.sql.engine import SQLITE_BEGIN_OPTION
from adapters.sql.errors import database_errors
from adapters.sql.tables import user_interactions
from domain.feed import VideoActivity


class SqlActivityReader:
    """One grouped query per call, answered from the index on `occurred_at`.

    Runs on a connection of its own outside any unit of work, in a deferred transaction on
    SQLite: trending is read on the request path and must not queue behind a writer.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def activity_between(self, start: datetime, end: datetime) -> list[VideoActivity]:
        reading = {SQLITE_BEGIN_OPTION: "DEFERRED"}
        with database_errors(), self._engine.connect().execution_options(**reading) as connection:
            rows = connection.execute(_activity_query(start, end)).all()
        return [
            VideoActivity(video_id, interaction_type, int(events), int(watch_time_ms))
            for video_id, interaction_type, events, watch_time_ms in rows
        ]


def _activity_query(start: datetime, end: datetime) -> Select[str, str, int, int]:
    table = user_interactions
    return (
        select(
            table.c.video_id,
            table.c.interaction_type,
            func.count(),
            func.coalesce(func.sum(table.c.watch_time_ms), 0),
        )
        .where(table.c.occurred_at >= start, table.c.occurred_at < end)
        .group_by(table.c.video_id, table.c.interaction_type)
    )
