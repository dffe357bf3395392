"""Parquet export of `user_interactions`, and the training window read back from it
(`ParquetExporter.export_new`, `read_training_window`).

Layout: a hive-partitioned dataset under `EXPORT_URI` (a folder, `file://` or
`s3://bucket/prefix`), one folder per UTC day of `occurred_at`:
`<root>/date=YYYY-MM-DD/part-<first id>-<last id>.parquet`, ids zero-padded to 12 digits.
Each file holds the rows of one export chunk (a run of consecutive table ids, named by the
chunk's first and last id) that fall on that day. Files whose names start with `.` or `_`
(unfinished local writes) are not part of the dataset.

| column | type | null | meaning |
|---|---|---|---|
| `event_id` | string | no | the client's (or server-assigned) event id, unique |
| `user_id` | string | no | viewer |
| `video_id` | string | no | video |
| `interaction_type` | string | no | view, like, share, comment, skip, complete or hide |
| `watch_time_ms` | int64 | no | watch time, milliseconds |
| `occurred_at` | timestamp[us, tz=UTC] | no | when it happened (client clock) |
| `received_at` | timestamp[us, tz=UTC] | no | when the service accepted it |
| `feed_session_id` | string | yes | feed session the video was served in |
| `algorithm` | string | yes | `lightfm` or `trending`, as the client reported |
| `experiment_variant_id` | string | yes | experiment variant, as the client reported |
| `recommendation_score` | float64 | yes | score the video was served with in that session |
| `interaction_id` | int64 | no | `user_interactions.id`, the export watermark |
| `date` | string (partition) | no | `YYYY-MM-DD`, UTC date of `occurred_at`; in the path only |

Exactly once. `export_watermarks` holds the highest `user_interactions.id` exported. A run
reads the rows after it in id order, `EXPORT_CHUNK_ROWS` at a time; for each chunk it writes
one file per day, each appearing whole or not at all (a local file is written aside, fsynced
and renamed; an S3 object becomes visible only when its upload completes), and only then
moves the watermark to the chunk's last id. So:
- a second run finds nothing after the watermark and writes nothing;
- a run that dies before moving the watermark leaves files whose last id is above it. The
  next run rereads the same rows from the same watermark and, before it first writes into a
  day, deletes that day's files whose last id is above the watermark (and temp files). Each
  row of a deleted file is exported again by a chunk of the rerun that writes into the same
  day, so nothing is lost and nothing kept twice, even if the chunk size changed between runs;
- two exports of the same table must not run at once (whoever runs them holds a lease);
  reading de-duplicates on `interaction_id` all the same.

Rows received less than `EXPORT_LAG_S` ago wait for the next run, and so does every row
after the first such one: on PostgreSQL a transaction can take an id and commit after one
that took a higher id, and the watermark must never pass a row not yet visible. A lag of
twice the longest time from accepting an event to committing it rules that out (argued in
`adapters.sql.export_source.SqlExportSource.rows_after`).

Impressions (`IMPRESSION_SCHEMA`, one row per item served, from `feed_cache`) are exported by
the same `ParquetExporter` to a dataset of their own (`IMPRESSIONS_EXPORT_URI`, partitioned by
the UTC day of `served_at`), with the watermark `feed_cache` on `feed_cache.id`: a page's items
share its id and are always exported together, so the argument above holds page by page.

Reading (`read_training_window(uri, start, end)`): only the days of the window are opened,
then rows are kept by `start <= occurred_at < end`. A day without a file is simply no rows,
as is an export never written. A file that cannot be read as this schema (truncated, not
parquet, a column missing) raises `CorruptExportError` naming it; the retrain reports that as
its failed "read" stage. A store that cannot be reached raises
`DependencyUnavailable("export")`. `read_training_days` gives the same rows a daily partition
at a time, for a window too large to hold as events (`adapters.pair_window`).
"""

from adapters.parquet_export._layout import (
    EXPORT_SCHEMA,
    IMPRESSION_SCHEMA,
    PARTITIONING,
    CorruptExportError,
    export_filesystem,
)
from adapters.parquet_export.exporter import ExportedRow, ExportSource, ParquetExporter
from adapters.parquet_export.reader import read_training_days, read_training_window

__all__ = [
    "EXPORT_SCHEMA",
    "IMPRESSION_SCHEMA",
    "PARTITIONING",
    "CorruptExportError",
    "ExportSource",
    "ExportedRow",
    "ParquetExporter",
    "export_filesystem",
    "read_training_days",
    "read_training_window",
]
