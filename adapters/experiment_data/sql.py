"""`ExperimentData` on the service's database: the window's pages (exploded to impressions)
and interactions, read in one short read transaction each."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

import pyarrow as pa
from sqlalchemy import Engine, select

from adapters.experiment_data.columns import variant_days
from adapters.parquet_export import EXPORT_SCHEMA, IMPRESSION_SCHEMA
from adapters.sql.engine import SQLITE_BEGIN_OPTION
from adapters.sql.errors import database_errors
from adapters.sql.impressions import PAGE_COLUMNS, earlier_item_counts, impressions_of
from adapters.sql.tables import feed_cache, user_interactions
from domain.experiment_report import VariantDay

_READING = {SQLITE_BEGIN_OPTION: "DEFERRED"}
_INTERACTION_COLUMNS = (
    "user_id",
    "feed_session_id",
    "video_id",
    "interaction_type",
    "watch_time_ms",
    "occurred_at",
)


class SqlExperimentData:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def variant_days(self, start: date, end: date) -> Sequence[VariantDay]:
        since = datetime.combine(start, time(), UTC)
        until = datetime.combine(end + timedelta(days=1), time(), UTC)
        pages_query = (
            select(*PAGE_COLUMNS)
            .where(feed_cache.c.created_at >= since, feed_cache.c.created_at < until)
            .where(feed_cache.c.experiment_variant_id.is_not(None))
            .order_by(feed_cache.c.id)
        )
        events_query = select(*(user_interactions.c[n] for n in _INTERACTION_COLUMNS)).where(
            user_interactions.c.occurred_at >= since,
            user_interactions.c.occurred_at < until,
            user_interactions.c.feed_session_id.is_not(None),
        )
        with database_errors(), self._engine.connect().execution_options(**_READING) as connection:
            pages = connection.execute(pages_query).mappings().all()
            impressions = impressions_of(pages, earlier_item_counts(connection, pages))
            events = connection.execute(events_query).all()
        impression_table = pa.Table.from_pylist(
            [row._asdict() for row in impressions], schema=IMPRESSION_SCHEMA
        )
        schema = pa.schema([EXPORT_SCHEMA.field(n) for n in _INTERACTION_COLUMNS])
        interaction_table = pa.table(
            {name: [row[i] for row in events] for i, name in enumerate(_INTERACTION_COLUMNS)},
            schema=schema,
        )
        return variant_days([impression_table], [interaction_table], start, end)
