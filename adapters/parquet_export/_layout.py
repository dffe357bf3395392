"""What writing and reading the export share: the schema, the file names, where the dataset
lives and how its failures are reported."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
from pyarrow.lib import ArrowException

from domain.errors import DependencyUnavailable

#: The component named in DependencyUnavailable when the export's store fails.
COMPONENT = "export"
UTC_MICROSECONDS = pa.timestamp("us", tz="UTC")
#: Columns of every file, in this order (the `date` partition lives in the path only).
EXPORT_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("interaction_type", pa.string(), nullable=False),
        pa.field("watch_time_ms", pa.int64(), nullable=False),
        pa.field("occurred_at", UTC_MICROSECONDS, nullable=False),
        pa.field("received_at", UTC_MICROSECONDS, nullable=False),
        pa.field("feed_session_id", pa.string()),
        pa.field("algorithm", pa.string()),
        pa.field("experiment_variant_id", pa.string()),
        pa.field("recommendation_score", pa.float64()),
        pa.field("interaction_id", pa.int64(), nullable=False),
    ]
)
#: One row per item served (see docs/experiments.md): `page_id` is `feed_cache.id`, the
#: impressions export's watermark; `rank` counts from 1 across the session's pages.
IMPRESSION_SCHEMA = pa.schema(
    [
        pa.field("impression_id", pa.string(), nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("feed_session_id", pa.string(), nullable=False),
        pa.field("page_number", pa.int32(), nullable=False),
        pa.field("rank", pa.int32(), nullable=False),
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("score", pa.float64()),
        pa.field("source", pa.string()),
        pa.field("algorithm", pa.string(), nullable=False),
        pa.field("fallback_reason", pa.string()),
        pa.field("model_version", pa.string()),
        pa.field("experiment_variant_id", pa.string()),
        pa.field("personalization", pa.string(), nullable=False),
        pa.field("served_at", UTC_MICROSECONDS, nullable=False),
        pa.field("page_id", pa.int64(), nullable=False),
    ]
)
PARTITION_COLUMN = "date"
PARTITIONING = ds.partitioning(pa.schema([(PARTITION_COLUMN, pa.string())]), flavor="hive")
#: `part-<first id>-<last id>.parquet`: the id range of the chunk that wrote the file.
FILE_NAME = re.compile(r"part-(\d{12})-(\d{12})\.parquet")


def file_name(first_id: int, last_id: int) -> str:
    return f"part-{first_id:012d}-{last_id:012d}.parquet"


def partition_of(moment: datetime) -> str:
    """`YYYY-MM-DD`: the UTC date of `moment` (aware), the value of the `date` partition."""
    return moment.astimezone(UTC).date().isoformat()


class CorruptExportError(Exception):
    """A file of the export cannot be read as `EXPORT_SCHEMA` promises (truncated, not
    parquet, columns missing or null). Not transient, unlike DependencyUnavailable: the
    retrain reports its "read" stage as failed and leaves the file for an operator."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"corrupt export file {path}: {reason}")
        self.path = path
        self.reason = reason


def export_location(uri: str) -> tuple[bool, str]:
    """(on S3?, root path) of a folder, `file:///path` or `s3://bucket/prefix`; ValueError
    for anything else. Touches nothing."""
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"not an s3://bucket/prefix URI: {uri!r}")
        return True, "/".join(part for part in (parsed.netloc, parsed.path.strip("/")) if part)
    if parsed.scheme == "file":
        return False, Path(unquote(parsed.path)).resolve().as_posix()
    if "://" in uri or not uri:
        raise ValueError(f"unsupported export URI {uri!r}: use a folder, file:// or s3://")
    return False, Path(uri).expanduser().resolve().as_posix()


def export_filesystem(uri: str, s3_endpoint: str | None) -> tuple[pafs.FileSystem, str]:
    """(filesystem, root path in it) for a folder, `file:///path` or `s3://bucket/prefix`.

    `s3_endpoint` overrides the S3 server for s3:// URIs: `http://127.0.0.1:9000`, or
    `host:port` for https. Credentials and region come from the AWS SDK's usual chain
    (environment, profile). Opens no connection, but may read that chain.
    """
    on_s3, root = export_location(uri)
    if not on_s3:
        return pafs.LocalFileSystem(), root
    options: dict[str, Any] = {
        "connect_timeout": 3.0,
        "request_timeout": 30.0,
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=3),
    }
    if s3_endpoint:
        scheme, _, address = s3_endpoint.rpartition("://")
        options.update(endpoint_override=address, scheme=scheme or "https")
    return pafs.S3FileSystem(**options), root


@contextmanager
def store_errors(doing: str) -> Iterator[None]:
    """Filesystem and S3 failures -> DependencyUnavailable("export"), cause kept."""
    try:
        yield
    except (ArrowException, OSError) as err:
        raise DependencyUnavailable(COMPONENT, f"{doing} failed: {err}") from err
