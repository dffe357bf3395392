"""The nightly job over a large window, as production would see it (used by `bench/retrain.py
--interactions N`): 90 days of history of which the older 89 are already in the parquet export
(written here a day at a time, in the export's layout and schema, as earlier nights' exports
would have left them), and the newest day in PostgreSQL, exported by the real exporter when the
job runs.

Days are 24-hour spans ending at the run's `end`, each generated on its own
(`generate_interactions` with the history's tastes and a per-day `event_seed`), so the writer
holds one day's rows at a time. A span covers two UTC dates: its rows go to both partitions.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from adapters.interaction_columns import INTERACTION_TYPES
from adapters.parquet_export import EXPORT_SCHEMA
from app.demo_data import SyntheticInteractions, generate_interactions

WINDOW_DAYS = 90
TASTE_SEED = 6


def day_of_history(
    shape: tuple[int, int], per_day: int, span_end: datetime, day: int
) -> SyntheticInteractions:
    """Day `day` of the history: the 24 hours before `span_end`."""
    users, videos = shape
    return generate_interactions(
        users, videos, per_day, days=1, seed=TASTE_SEED, event_seed=1000 + day, end=span_end
    )


def write_exported_days(
    root: Path, shape: tuple[int, int], per_day: int, end: datetime, days: int
) -> int:
    """The `days` spans before `end` (the oldest first) as export files under `root`, ids
    counting from 1; returns the last id written."""
    types = pa.array([kind.value for kind in INTERACTION_TYPES])
    last_id = 0
    for day in range(days):
        span_end = end - timedelta(days=days - 1 - day)
        data = day_of_history(shape, per_day, span_end, day)
        ids = np.arange(last_id + 1, last_id + 1 + len(data), dtype=np.int64)
        moments = pa.array(data.occurred_at_ms * 1000, type=pa.timestamp("us", tz="UTC"))
        dates = pc.strftime(moments, format="%Y-%m-%d")
        table = pa.table(
            {
                "event_id": pc.binary_join_element_wise(
                    "h", pc.cast(pa.array(ids), pa.string()), ""
                ),
                "user_id": pa.array(data.user_ids).take(pa.array(data.user_codes)),
                "video_id": pa.array(data.video_ids).take(pa.array(data.video_codes)),
                "interaction_type": types.take(pa.array(data.type_codes)),
                "watch_time_ms": pa.array(data.watch_time_ms),
                "occurred_at": moments,
                "received_at": moments,
                **{
                    name: pa.nulls(len(data), EXPORT_SCHEMA.field(name).type)
                    for name in ("feed_session_id", "algorithm", "experiment_variant_id")
                },
                "recommendation_score": pa.nulls(len(data), pa.float64()),
                "interaction_id": pa.array(ids),
            },
            schema=EXPORT_SCHEMA,
        )
        for date in pc.unique(dates).to_pylist():
            part = table.filter(pc.equal(dates, date))
            first, last = part["interaction_id"][0].as_py(), part["interaction_id"][-1].as_py()
            folder = root / f"date={date}"
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(part, folder / f"part-{first:012d}-{last:012d}.parquet")
        last_id = int(ids[-1]) if len(ids) else last_id
        del data, table
    return last_id


def newest_day(shape: tuple[int, int], per_day: int, end: datetime) -> SyntheticInteractions:
    """The newest span (the one PostgreSQL holds), as its own day of the same history."""
    return day_of_history(shape, per_day, end, WINDOW_DAYS - 1)
