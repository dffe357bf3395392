"""Writes the rows after the watermark to the dataset, a chunk at a time, exactly once
(the argument is in the package docstring)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import NamedTuple, Protocol

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from adapters.parquet_export._layout import (
    EXPORT_SCHEMA,
    FILE_NAME,
    PARTITION_COLUMN,
    export_filesystem,
    export_location,
    file_name,
    partition_of,
    store_errors,
)


class ExportedRow(Protocol):
    """A source row: an attribute named after every column of the exporter's schema, holding
    a value of that column's type (aware UTC datetimes for the timestamps), the id column and
    the time column among them."""


class ExportSource(Protocol):
    """Rows in id order and the export's watermark; `adapters.sql.export_source` states the
    exact promises."""

    def rows_after(
        self, last_id: int, limit: int, received_before: datetime
    ) -> Sequence[ExportedRow]: ...
    def watermark(self, name: str) -> int: ...
    def set_watermark(self, name: str, last_id: int, now: datetime) -> None: ...


class ParquetExporter:
    """Exports the source's rows after the watermark named `name` to the dataset at `uri`
    (a folder, `file://` or `s3://bucket/prefix`; see `export_filesystem`)."""

    def __init__(
        self,
        source: ExportSource,
        uri: str,
        *,
        s3_endpoint: str | None = None,
        chunk_rows: int = 100_000,
        lag: timedelta = timedelta(minutes=1),
        name: str = "user_interactions",
        schema: pa.Schema = EXPORT_SCHEMA,
        id_column: str = "interaction_id",
        time_column: str = "occurred_at",
    ) -> None:
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be at least 1, not {chunk_rows}")
        if lag < timedelta(0):
            raise ValueError(f"lag must not be negative, not {lag}")
        export_location(uri)  # a malformed URI fails at start-up, not at 2 a.m.
        self.uri = uri
        self._source = source
        self._s3_endpoint = s3_endpoint
        self._chunk_rows = chunk_rows
        self._lag = lag
        self._name = name
        # Impressions (`IMPRESSION_SCHEMA`) reuse all of this: their id is the page's
        # `feed_cache.id`, shared by a page's items, and the source returns whole pages.
        self._layout = _Layout(schema, id_column, time_column)

    def __repr__(self) -> str:
        return f"ParquetExporter({self.uri!r}, name={self._name!r})"

    def export_new(self, now: datetime, progress: Callable[[int], None] | None = None) -> int:
        """Export every row received before `now - lag` not exported yet; returns how many
        rows this run exported (0 when there was nothing new). `progress` is called with the
        running total after each chunk.

        Raises DependencyUnavailable ("export" or "database"). What was exported before the
        failure stays exported; the next run carries on from the watermark.
        """
        if now.utcoffset() is None:
            raise ValueError("now must be timezone-aware")
        with store_errors("opening the export"):
            fs, root = export_filesystem(self.uri, self._s3_endpoint)
        visited: set[str] = set()
        exported = 0
        while True:
            watermark = self._source.watermark(self._name)
            rows = self._source.rows_after(watermark, self._chunk_rows, now - self._lag)
            if not rows:
                break
            with store_errors("writing the export"):
                _write_chunk(fs, root, rows, watermark, visited, self._layout)
            self._source.set_watermark(self._name, self._layout.last_id(rows), now)
            exported += len(rows)
            if progress is not None:
                progress(exported)
            # No early stop on a short chunk: an impressions chunk is `chunk_rows` pages, not
            # rows, so only an empty answer says that nothing old enough is left.
        return exported


class _Layout(NamedTuple):
    schema: pa.Schema
    id_column: str
    time_column: str

    def last_id(self, rows: Sequence[ExportedRow]) -> int:
        return int(getattr(rows[-1], self.id_column))


def _write_chunk(  # noqa: PLR0917 - internal, called once
    fs: pafs.FileSystem,
    root: str,
    rows: Sequence[ExportedRow],
    watermark: int,
    visited: set[str],
    layout: _Layout,
) -> None:
    """One file per day the chunk's rows fall on, all named by the chunk's id range."""
    table = pa.table(
        {column: [getattr(row, column) for row in rows] for column in layout.schema.names},
        schema=layout.schema,
    )
    days: dict[str, list[int]] = {}
    for index, row in enumerate(rows):
        days.setdefault(partition_of(getattr(row, layout.time_column)), []).append(index)
    name = file_name(int(getattr(rows[0], layout.id_column)), layout.last_id(rows))
    for day, indices in sorted(days.items()):
        folder = f"{root}/{PARTITION_COLUMN}={day}"
        if folder not in visited:  # a run's first visit to a day finds every leftover there
            _remove_unrecorded(fs, folder, watermark, keep=name)
            visited.add(folder)
        sink = pa.BufferOutputStream()
        pq.write_table(table.take(indices), sink)
        _put(fs, f"{folder}/{name}", sink.getvalue().to_pybytes())


def _remove_unrecorded(fs: pafs.FileSystem, folder: str, watermark: int, keep: str) -> None:
    """Delete what an interrupted run left in `folder`: files of chunks above the watermark
    (they are being exported again) and unfinished local temp files."""
    for entry in fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True)):
        match = FILE_NAME.fullmatch(entry.base_name)
        unrecorded = match is not None and int(match.group(2)) > watermark
        if entry.base_name != keep and (unrecorded or entry.base_name.startswith(".part-")):
            fs.delete_file(entry.path)


def _put(fs: pafs.FileSystem, path: str, data: bytes) -> None:
    """Write `path` so that it appears whole or not at all, replacing what is there."""
    if not isinstance(fs, pafs.LocalFileSystem):
        # S3 shows an object only once its upload completes; the bytes are all in hand, so a
        # crash mid-upload leaves the old object (or none), never half of the new one.
        with fs.open_output_stream(path) as stream:
            stream.write(data)
        return
    folder, name = os.path.split(path)
    os.makedirs(folder, exist_ok=True)
    temp = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
    with open(temp, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temp, path)
    # The watermark moves right after this: make the rename survive a power cut too.
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
