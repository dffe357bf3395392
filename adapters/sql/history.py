"""Reading the stored interaction history column by column (for training on the embedded run).

Reads the table behind `ports.repositories.InteractionRepository`; the nightly retrain reads
parquet exports instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from adapters.sql.engine import SQLITE_BEGIN_OPTION
from adapters.sql.errors import database_errors
from adapters.sql.tables import user_interactions


@dataclass(frozen=True)
class InteractionColumns:
    """Parallel columns, one entry per stored interaction, in id (arrival) order."""

    user_ids: list[str]
    video_ids: list[str]
    interaction_types: list[str]
    watch_time_ms: list[int]
    occurred_at: list[datetime]


def read_interaction_columns(engine: Engine) -> InteractionColumns:
    table = user_interactions
    query = select(
        table.c.user_id,
        table.c.video_id,
        table.c.interaction_type,
        table.c.watch_time_ms,
        table.c.occurred_at,
    ).order_by(table.c.id)
    columns: InteractionColumns = InteractionColumns([], [], [], [], [])
    # A long read must not hold SQLite's write lock (units of work begin IMMEDIATE).
    reading = {SQLITE_BEGIN_OPTION: "DEFERRED"}
    with database_errors(), engine.connect().execution_options(**reading) as connection:
        for user, video, kind, watch, moment in connection.execute(query):
            columns.user_ids.append(user)
            columns.video_ids.append(video)
            columns.interaction_types.append(kind)
            columns.watch_time_ms.append(watch)
            columns.occurred_at.append(moment)
    return columns
