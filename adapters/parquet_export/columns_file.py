"""Writes interactions held as columns into the export's layout and schema, so a data set that
never went through the service (the demo generator's, a public one) can be read back by
`read_training_window` and `feedrec evaluate` like a real export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from adapters.interaction_columns import INTERACTION_TYPES, TrainingInteractions
from adapters.parquet_export._layout import EXPORT_SCHEMA, PARTITION_COLUMN, file_name

_DAY_MS = 86_400_000


def write_interactions(rows: TrainingInteractions, root: Path) -> int:
    """One file per UTC day under `root` (a local folder), rows in time order, numbered 1..n
    as `interaction_id` and `event_id`, received when they occurred, no session columns.
    Returns the number of files written."""
    order = np.argsort(rows.occurred_at_ms, kind="stable")
    moments = rows.occurred_at_ms[order]
    kinds = np.array([kind.value for kind in INTERACTION_TYPES])
    ids = np.arange(1, len(order) + 1, dtype=np.int64)
    days = moments // _DAY_MS
    written = 0
    for day in np.unique(days).tolist():
        chosen = np.flatnonzero(days == day)
        picked = order[chosen]
        moment = pa.array(moments[chosen] * 1000, pa.int64()).cast(
            EXPORT_SCHEMA.field("occurred_at").type
        )
        nulls = pa.nulls(len(chosen))
        table = pa.table(
            {
                "event_id": pa.array([f"e{i}" for i in ids[chosen].tolist()], pa.string()),
                "user_id": pa.array(rows.user_vocab[rows.user_codes[picked]], pa.string()),
                "video_id": pa.array(rows.video_vocab[rows.video_codes[picked]], pa.string()),
                "interaction_type": pa.array(kinds[rows.type_codes[picked]], pa.string()),
                "watch_time_ms": pa.array(rows.watch_time_ms[picked], pa.int64()),
                "occurred_at": moment,
                "received_at": moment,
                "feed_session_id": nulls.cast(pa.string()),
                "algorithm": nulls.cast(pa.string()),
                "experiment_variant_id": nulls.cast(pa.string()),
                "recommendation_score": nulls.cast(pa.float64()),
                "interaction_id": pa.array(ids[chosen], pa.int64()),
            },
            schema=EXPORT_SCHEMA,
        )
        date = np.datetime64(int(day), "D").astype(str)
        folder = root / f"{PARTITION_COLUMN}={date}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / file_name(int(ids[chosen][0]), int(ids[chosen][-1])))
        written += 1
    return written
