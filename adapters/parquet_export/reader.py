"""Reads a training window back from the export as `TrainingInteractions`, columnar all the
way: ids stay dictionary-encoded from the parquet pages to the vocabulary-plus-codes arrays."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pyarrow.lib import ArrowException

from adapters.interaction_columns import INTERACTION_TYPES, TrainingInteractions
from adapters.parquet_export._layout import (
    COMPONENT,
    EXPORT_SCHEMA,
    PARTITION_COLUMN,
    PARTITIONING,
    UTC_MICROSECONDS,
    CorruptExportError,
    export_filesystem,
    partition_of,
    store_errors,
)
from domain.errors import DependencyUnavailable

_DICTIONARY = ("user_id", "video_id", "interaction_type")
#: The columns training reads; `interaction_id` only to drop a row exported twice.
_TRAINING = (*_DICTIONARY, "watch_time_ms", "occurred_at", "interaction_id")
_READ_SCHEMA = pa.schema(
    [
        pa.field(f.name, pa.dictionary(pa.int32(), pa.string())) if f.name in _DICTIONARY else f
        for f in EXPORT_SCHEMA
    ]
    + [pa.field(PARTITION_COLUMN, pa.string())]
)
_TRAINING_SCHEMA = pa.schema([_READ_SCHEMA.field(name) for name in _TRAINING])
_READ_FORMAT = ds.ParquetFileFormat(
    read_options=ds.ParquetReadOptions(dictionary_columns=list(_DICTIONARY))
)
_TYPE_CODES = {kind.value: code for code, kind in enumerate(INTERACTION_TYPES)}
_ONE_MICROSECOND = timedelta(microseconds=1)


def read_training_window(
    uri: str, start: datetime, end: datetime, *, s3_endpoint: str | None = None
) -> TrainingInteractions:
    """The exported interactions with `start <= occurred_at < end` (aware datetimes).

    Only the days of the window are opened (partition pruning). A day without a file, or an
    export never written, is simply no rows; an empty window gives an empty result (len 0).
    Rows come in no particular order. Raises CorruptExportError naming an unreadable file in
    the window, DependencyUnavailable("export") when the store cannot be reached.
    """
    if start.utcoffset() is None or end.utcoffset() is None:
        raise ValueError("start and end must be timezone-aware")
    if end <= start:
        return _training(_TRAINING_SCHEMA.empty_table(), uri)
    opened = _open(uri, s3_endpoint)
    if opened is None:
        return _training(_TRAINING_SCHEMA.empty_table(), uri)
    day = ds.field(PARTITION_COLUMN)
    days = (day >= partition_of(start)) & (day <= partition_of(end - _ONE_MICROSECOND))
    return _training(_read(*opened, days, _moments(start, end)), uri)


def read_training_days(
    uri: str, start: datetime, end: datetime, *, s3_endpoint: str | None = None
) -> Iterator[TrainingInteractions]:
    """`read_training_window`, one daily partition at a time (oldest first), each with its own
    vocabularies: memory holds one day's rows, not the window's. A row exported twice lies in
    one day (its `occurred_at`'s), so dropping copies within a day drops them all. Days
    without rows are skipped; errors as `read_training_window`, raised by the day they are in.
    """
    if start.utcoffset() is None or end.utcoffset() is None:
        raise ValueError("start and end must be timezone-aware")
    if end <= start or (opened := _open(uri, s3_endpoint)) is None:
        return
    moments = _moments(start, end)
    first, last = (
        date.fromisoformat(partition_of(start)),
        date.fromisoformat(partition_of(end - _ONE_MICROSECOND)),
    )
    for offset in range((last - first).days + 1):
        name = (first + timedelta(days=offset)).isoformat()
        table = _read(*opened, ds.field(PARTITION_COLUMN) == name, moments)
        if table.num_rows:
            yield _training(table, uri)


def _open(uri: str, s3_endpoint: str | None) -> tuple[pafs.FileSystem, ds.Dataset] | None:
    """The export's dataset, or None when it was never written."""
    with store_errors("reading the export"):
        fs, root = export_filesystem(uri, s3_endpoint)
        if fs.get_file_info(root).type == pafs.FileType.NotFound:
            return None
        dataset = ds.dataset(
            root, schema=_READ_SCHEMA, format=_READ_FORMAT, filesystem=fs, partitioning=PARTITIONING
        )
    return fs, dataset


def _moments(start: datetime, end: datetime) -> ds.Expression:
    moment = ds.field("occurred_at")
    return (moment >= pa.scalar(start, UTC_MICROSECONDS)) & (
        moment < pa.scalar(end, UTC_MICROSECONDS)
    )


def _read(
    fs: pafs.FileSystem, dataset: ds.Dataset, days: ds.Expression, moments: ds.Expression
) -> pa.Table:
    try:
        table = dataset.to_table(columns=list(_TRAINING), filter=days & moments)
        if _has_nulls(table):
            raise ValueError("a column training needs holds nulls")
    except (ArrowException, OSError, ValueError) as err:
        raise _diagnosis(fs, dataset, days, err) from err
    return table


def _has_nulls(table: pa.Table) -> bool:
    return any(table.column(name).null_count for name in _TRAINING)


def _training(table: pa.Table, uri: str) -> TrainingInteractions:
    """Columns -> TrainingInteractions with array operations only (no loop over rows)."""
    ids = table.column("interaction_id").to_numpy()
    # Files come in id order within a day, so this sort mostly merges sorted runs (10M: ~20 ms).
    ordered = np.sort(ids, kind="stable")
    if np.any(ordered[1:] == ordered[:-1]):
        # A row exported twice (two exports overlapped despite the lease): keep one copy.
        # interaction_id stands for event_id here: the table keeps one row per event_id.
        _, first = np.unique(ids, return_index=True)
        table = table.take(np.sort(first))
    table = table.unify_dictionaries()
    user_vocab, user_codes = _vocabulary_and_codes(table.column("user_id"))
    video_vocab, video_codes = _vocabulary_and_codes(table.column("video_id"))
    type_names, type_codes = _vocabulary_and_codes(table.column("interaction_type"))
    try:
        lookup = np.array([_TYPE_CODES[name] for name in type_names.tolist()], dtype=np.int8)
    except KeyError as err:
        raise CorruptExportError(uri, f"unknown interaction type {err}") from err
    occurred_us = table.column("occurred_at").cast(pa.int64()).to_numpy()
    return TrainingInteractions(
        user_vocab=user_vocab,
        user_codes=user_codes,
        video_vocab=video_vocab,
        video_codes=video_codes,
        type_codes=lookup[type_codes] if len(lookup) else type_codes.astype(np.int8),
        watch_time_ms=table.column("watch_time_ms").to_numpy(),
        occurred_at_ms=occurred_us // 1000,
    )


def _vocabulary_and_codes(
    column: pa.ChunkedArray,
) -> tuple[npt.NDArray[np.str_], npt.NDArray[np.int32]]:
    """A dictionary column whose chunks share one dictionary (after `unify_dictionaries`)."""
    if column.num_chunks == 0:
        return np.array([], dtype=np.str_), np.array([], dtype=np.int32)
    dictionary = column.chunk(0).dictionary.to_numpy(zero_copy_only=False)
    codes = np.concatenate([chunk.indices.to_numpy() for chunk in column.chunks])
    return dictionary.astype(np.str_), codes.astype(np.int32, copy=False)


def _diagnosis(
    fs: pafs.FileSystem, dataset: ds.Dataset, days: ds.Expression, err: Exception
) -> Exception:
    """Why reading the window failed: a corrupt file (named), or the store itself."""
    try:
        fragments = list(dataset.get_fragments(filter=days))
    except (ArrowException, OSError) as listing:
        return DependencyUnavailable(COMPONENT, f"reading the export failed: {listing}")
    for fragment in fragments:
        try:
            if not _has_nulls(fragment.to_table(schema=_READ_SCHEMA, columns=list(_TRAINING))):
                continue
        except (ArrowException, OSError):
            pass
        return _check_file(fs, fragment.path)
    return DependencyUnavailable(COMPONENT, f"reading the export failed: {err}")


def _check_file(fs: pafs.FileSystem, path: str) -> Exception:
    """Fetch the file whole: if that fails, the store is at fault; else its content is."""
    try:
        with fs.open_input_file(path) as file:
            data = file.read()
    except (ArrowException, OSError) as err:
        return DependencyUnavailable(COMPONENT, f"reading {path} failed: {err}")
    try:
        parquet = pq.ParquetFile(pa.BufferReader(data))
        for name in _TRAINING:
            wanted = EXPORT_SCHEMA.field(name).type
            index = parquet.schema_arrow.get_field_index(name)
            if index < 0 or parquet.schema_arrow.field(index).type != wanted:
                return CorruptExportError(path, f"column {name} is missing or not {wanted}")
            if parquet.read(columns=[name]).column(0).null_count:
                return CorruptExportError(path, f"column {name} holds nulls")
    except (ArrowException, OSError) as err:
        return CorruptExportError(path, f"{type(err).__name__}: {err}")
    return DependencyUnavailable(COMPONENT, f"reading {path} failed, then worked: {path} is fine")
