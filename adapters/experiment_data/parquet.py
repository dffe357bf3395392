"""`ExperimentData` on the parquet exports: the impressions and interactions datasets, a day
folder of the window at a time, only the columns the readout needs read."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, timedelta
from functools import partial

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
from pyarrow.lib import ArrowException

from adapters.experiment_data.columns import variant_days
from adapters.parquet_export import EXPORT_SCHEMA, IMPRESSION_SCHEMA, CorruptExportError
from adapters.parquet_export._layout import FILE_NAME, export_filesystem, store_errors
from domain.experiment_report import ReadoutDataError, VariantDay

_IMPRESSION_COLUMNS = [
    "user_id",
    "feed_session_id",
    "page_number",
    "video_id",
    "experiment_variant_id",
    "fallback_reason",
    "served_at",
]
#: Read as dictionaries (few distinct values, repeated on many rows), and coded by their
#: dictionaries. Not viewers and sessions: too many distinct values for the file's
#: dictionary page, so the reader would hash every row only for the readout to hash the
#: result again (read plain, measured 11% less CPU at 5M impressions).
_DICTIONARY_COLUMNS = {
    "video_id",
    "experiment_variant_id",
    "fallback_reason",
    "interaction_type",
}
_INTERACTION_COLUMNS = [
    "user_id",
    "feed_session_id",
    "video_id",
    "interaction_type",
    "watch_time_ms",
    "occurred_at",
]


class ParquetExperimentData:
    """`impressions_uri` and `interactions_uri` as `EXPORT_URI` takes them."""

    def __init__(
        self, impressions_uri: str, interactions_uri: str, *, s3_endpoint: str | None = None
    ) -> None:
        self._impressions = impressions_uri
        self._interactions = interactions_uri
        self._s3 = s3_endpoint

    def variant_days(self, start: date, end: date) -> Sequence[VariantDay]:
        try:
            return self._variant_days(start, end)
        except CorruptExportError as err:
            raise ReadoutDataError(str(err)) from err

    def _variant_days(self, start: date, end: date) -> Sequence[VariantDay]:
        days = [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]
        # A day folder at a time: what bounds the readout's memory.
        impressions = _ahead(
            partial(_read, self._impressions, IMPRESSION_SCHEMA, _IMPRESSION_COLUMNS, day, self._s3)
            for day in days
        )
        interactions = _ahead(
            partial(_read, self._interactions, EXPORT_SCHEMA, _INTERACTION_COLUMNS, day, self._s3)
            for day in days
        )
        return variant_days(impressions, interactions, start, end)


def _ahead(reads: Iterable[Callable[[], pa.Table]]) -> Iterator[pa.Table]:
    """The reads' tables in order, each next one read on a thread of its own while the caller
    works on the last (two parts in memory at most): the second core decodes parquet."""
    with ThreadPoolExecutor(1) as pool:
        pending: Future[pa.Table] | None = None
        for read in reads:
            following = pool.submit(read)
            if pending is not None:
                yield pending.result()
            pending = following
        if pending is not None:
            yield pending.result()


def _read(uri: str, schema: pa.Schema, columns: list[str], day: str, s3: str | None) -> pa.Table:
    with store_errors("listing the export"):
        fs, root = export_filesystem(uri, s3)
        files = [
            entry.path
            for entry in fs.get_file_info(
                pafs.FileSelector(f"{root}/date={day}", allow_not_found=True)
            )
            if FILE_NAME.fullmatch(entry.base_name)
        ]
    dictionaries = [c for c in columns if c in _DICTIONARY_COLUMNS]
    fields = [
        pa.field(f.name, pa.dictionary(pa.int32(), f.type)) if f.name in dictionaries else f
        for f in schema
    ]
    if not files:
        return pa.table({c: pa.array([], schema.field(c).type) for c in columns})
    try:
        reading = ds.ParquetFileFormat(
            read_options=ds.ParquetReadOptions(dictionary_columns=dictionaries)
        )
        dataset = ds.dataset(files, schema=pa.schema(fields), format=reading, filesystem=fs)
        return dataset.to_table(columns=columns)
    except ArrowException as err:
        raise CorruptExportError(uri, str(err)) from err
