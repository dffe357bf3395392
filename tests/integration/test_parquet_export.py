"""The parquet export and the training-window read, against real stores and databases.

Stores: a local folder, and S3 on a real moto server (`moto_server` started as a subprocess
on 127.0.0.1 and a free port by tests.servers.MotoS3Server, stopped after the module).
Sources: SQLite and a real PostgreSQL (`fresh_postgres_url`), where the database matters.
"""

from __future__ import annotations

import importlib.metadata
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

import adapters.parquet_export.exporter as exporter_module
from adapters.interaction_columns import TrainingInteractions
from adapters.parquet_export import (
    EXPORT_SCHEMA,
    PARTITIONING,
    CorruptExportError,
    ParquetExporter,
    read_training_window,
)
from adapters.sql.bulk import bulk_insert_interactions
from adapters.sql.engine import make_engine
from adapters.sql.export_source import ExportRow, SqlExportSource
from adapters.sql.interactions import interaction_row
from adapters.sql.migrations import upgrade_database
from adapters.sql.tables import user_interactions
from domain.errors import DependencyUnavailable
from domain.interactions import InteractionEvent, InteractionType, StoredInteraction
from tests.servers import MOTO_CREDENTIALS, MotoS3Server, RecordProperty, free_port, running_moto

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "exports"
NOW = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
#: Received long enough before NOW that the default one-minute lag lets every row out.
RECEIVED = NOW - timedelta(minutes=10)
NAME = "user_interactions"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOSTILE = '\'); DROP TABLE user_interactions; -- "q" \\ <b>'


class Crash(Exception):
    """Stands for the process dying: nothing in the exporter catches it."""


@dataclass
class Store:
    """Where an export goes, and raw access to it that bypasses the exporter."""

    label: str
    uri: str
    s3_endpoint: str | None
    fs: pafs.FileSystem
    root: str

    def files(self) -> list[str]:
        found = self.fs.get_file_info(pafs.FileSelector(self.root, recursive=True))
        return sorted(
            e.path.removeprefix(self.root + "/") for e in found if e.type == pafs.FileType.File
        )

    def write(self, relative: str, data: bytes) -> None:
        with self.fs.open_output_stream(f"{self.root}/{relative}") as stream:
            stream.write(data)

    def read(self, relative: str) -> bytes:
        with self.fs.open_input_stream(f"{self.root}/{relative}") as stream:
            return bytes(stream.read())

    def window(self, start: datetime, end: datetime = NOW) -> TrainingInteractions:
        return read_training_window(self.uri, start, end, s3_endpoint=self.s3_endpoint)

    def exported(self) -> list[dict[str, Any]]:
        """Every exported row with every column (and its `date`), by interaction_id."""
        schema = EXPORT_SCHEMA.append(pa.field("date", pa.string()))
        dataset = ds.dataset(
            self.root, schema=schema, filesystem=self.fs, partitioning=PARTITIONING
        )
        return sorted(dataset.to_table().to_pylist(), key=lambda row: row["interaction_id"])


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3Server]:
    with running_moto(tmp_path_factory.mktemp("moto"), "export S3", BUCKET) as server:
        yield server


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's dummy credentials, so the AWS SDK never looks further (no metadata service)."""
    for key, value in MOTO_CREDENTIALS.items():
        monkeypatch.setenv(key, value)


def folder_store(tmp_path: Path) -> Store:
    root = tmp_path / "exports"
    return Store("folder", str(root), None, pafs.LocalFileSystem(), root.as_posix())


def s3_store(moto: MotoS3Server, record_property: RecordProperty) -> Store:
    root = f"{BUCKET}/run-{uuid.uuid4().hex[:8]}"
    label = f"moto_server {importlib.metadata.version('moto')} at {moto.endpoint}"
    record_property("s3_server", label)
    print(f"export tested against S3 on {label}")
    fs = pafs.S3FileSystem(
        endpoint_override=moto.endpoint.removeprefix("http://"),
        scheme="http",
        access_key="test",
        secret_key="test",
        region="us-east-1",
    )
    return Store(f"S3 on {label}", f"s3://{root}", moto.endpoint, fs, root)


@pytest.fixture(params=["folder", "moto-s3"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, aws_env: None, record_property: RecordProperty
) -> Store:
    if request.param == "folder":
        return folder_store(tmp_path)
    return s3_store(request.getfixturevalue("moto"), record_property)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'feedrec.db'}"
    else:
        url = request.getfixturevalue("fresh_postgres_url")
    upgrade_database(url)
    made = make_engine(url)
    yield made
    made.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[sa.Engine]:
    url = f"sqlite:///{tmp_path / 'feedrec.db'}"
    upgrade_database(url)
    made = make_engine(url)
    yield made
    made.dispose()


def interaction(
    n: int, occurred_at: datetime, received_at: datetime = RECEIVED, **fields: Any
) -> StoredInteraction:
    values: dict[str, Any] = {
        "event_id": f"e-{n:05d}",
        "user_id": f"u{n % 7}",
        "video_id": f"v{n % 11}",
        "interaction_type": list(InteractionType)[n % len(InteractionType)],
        "watch_time_ms": n * 1_001,
        "occurred_at": occurred_at,
    }
    score = fields.pop("recommendation_score", None)
    values.update(fields)
    return StoredInteraction(InteractionEvent(**values), received_at, score)


def spread(count: int, days: int = 5, start: int = 0) -> list[StoredInteraction]:
    """`count` plain interactions spread over the `days` days before NOW."""
    step = timedelta(days=days) / count
    first = NOW - timedelta(days=days)
    return [interaction(start + i, first + i * step) for i in range(count)]


def seed(engine: sa.Engine, rows: Sequence[StoredInteraction]) -> dict[str, int]:
    """Insert `rows`; event_id -> the id the database gave it."""
    bulk_insert_interactions(engine, rows)
    with engine.connect() as connection:
        found = connection.execute(sa.select(user_interactions.c.event_id, user_interactions.c.id))
        return {event_id: row_id for event_id, row_id in found}


def expected_row(item: StoredInteraction, interaction_id: int) -> dict[str, Any]:
    row = interaction_row(item)
    row["interaction_id"] = interaction_id
    row["occurred_at"] = item.event.occurred_at.astimezone(UTC)
    row["date"] = row["occurred_at"].date().isoformat()
    return row


def exporter(engine: sa.Engine, store: Store, **options: Any) -> ParquetExporter:
    return ParquetExporter(
        SqlExportSource(engine), store.uri, s3_endpoint=store.s3_endpoint, **options
    )


def assert_exactly_once(store: Store, ids: dict[str, int]) -> None:
    exported = [row["interaction_id"] for row in store.exported()]
    assert exported == sorted(ids.values()), f"lost or duplicated rows in {store.label}"


def test_every_column_reads_back_identical(engine: sa.Engine, store: Store) -> None:
    # given: timestamps with microseconds and foreign offsets, NULLs and hostile strings
    tokyo = timezone(timedelta(hours=9))
    rows = [
        interaction(1, datetime(2026, 11, 24, 23, 59, 59, 999_999, tzinfo=UTC)),
        interaction(2, datetime(2026, 11, 25, 0, 0, 0, 1, tzinfo=UTC), recommendation_score=0.1),
        # 08:30 in Tokyo on the 25th is the 24th in UTC: the partition follows UTC
        interaction(3, datetime(2026, 11, 25, 8, 30, 0, 123_456, tzinfo=tokyo)),
        interaction(
            4,
            datetime(2026, 11, 25, 12, 0, tzinfo=UTC),
            user_id="ユーザー-😀",
            video_id=HOSTILE,
            feed_session_id="fs-" + HOSTILE,
            algorithm="lightfm",
            experiment_variant_id="variant-é",
            recommendation_score=-1.2345678901234567e-300,
        ),
        *spread(30, days=3, start=10),
    ]
    ids = seed(engine, rows)
    # when
    assert exporter(engine, store, chunk_rows=7).export_new(NOW) == len(rows)
    # then: every column of every row, exactly as stored, on the UTC day of occurred_at
    expected = [expected_row(item, ids[item.event.event_id]) for item in rows]
    assert store.exported() == sorted(expected, key=lambda row: row["interaction_id"])
    days = {row["event_id"]: row["date"] for row in store.exported()}
    assert [days["e-00001"], days["e-00002"], days["e-00003"]] == [
        "2026-11-24",
        "2026-11-25",
        "2026-11-24",
    ]
    # and training reads the same values back as vocabulary codes
    window = store.window(NOW - timedelta(days=30))
    read = sorted(
        zip(
            window.user_vocab[window.user_codes].tolist(),
            window.video_vocab[window.video_codes].tolist(),
            [list(InteractionType)[code].value for code in window.type_codes.tolist()],
            window.watch_time_ms.tolist(),
            window.occurred_at_ms.tolist(),
            strict=True,
        )
    )
    assert read == sorted(
        (
            item.event.user_id,
            item.event.video_id,
            item.event.interaction_type.value,
            item.event.watch_time_ms,
            (item.event.occurred_at - EPOCH) // timedelta(milliseconds=1),
        )
        for item in rows
    )


def test_a_second_run_exports_nothing_and_later_rows_go_out_next(
    engine: sa.Engine, store: Store
) -> None:
    ids = seed(engine, spread(50))
    export = exporter(engine, store, chunk_rows=20)
    assert export.export_new(NOW) == 50
    files = store.files()

    assert export.export_new(NOW + timedelta(hours=1)) == 0
    assert store.files() == files

    ids |= seed(engine, spread(15, days=1, start=100))
    progress: list[int] = []
    assert export.export_new(NOW, progress.append) == 15
    assert progress == [15]
    assert_exactly_once(store, ids)


@dataclass
class CrashingSource:
    """The real source, whose `set_watermark` dies after `allowed` calls."""

    inner: SqlExportSource
    allowed: int

    def rows_after(self, last_id: int, limit: int, received_before: datetime) -> list[ExportRow]:
        return self.inner.rows_after(last_id, limit, received_before)

    def watermark(self, name: str) -> int:
        return self.inner.watermark(name)

    def set_watermark(self, name: str, last_id: int, now: datetime) -> None:
        if self.allowed == 0:
            raise Crash("killed before moving the watermark")
        self.allowed -= 1
        self.inner.set_watermark(name, last_id, now)


@pytest.mark.parametrize("crash", ["between files of a chunk", "before the watermark moves"])
def test_a_run_that_dies_halfway_neither_loses_nor_duplicates(
    sqlite_engine: sa.Engine, store: Store, crash: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given 120 rows over 6 days: chunks of 30 rows write 2-3 files each
    ids = seed(sqlite_engine, spread(120, days=6))
    source = SqlExportSource(sqlite_engine)
    with monkeypatch.context() as patch:
        if crash == "between files of a chunk":
            written: list[str] = []
            real_put = exporter_module._put

            def put_then_die(fs: pafs.FileSystem, path: str, data: bytes) -> None:
                if len(written) == 4:
                    raise Crash("killed while writing")
                real_put(fs, path, data)
                written.append(path)

            patch.setattr(exporter_module, "_put", put_then_die)
            dying = ParquetExporter(source, store.uri, s3_endpoint=store.s3_endpoint, chunk_rows=30)
        else:
            dying = ParquetExporter(
                CrashingSource(source, allowed=1),
                store.uri,
                s3_endpoint=store.s3_endpoint,
                chunk_rows=30,
            )
        with pytest.raises(Crash):
            dying.export_new(NOW)
    # the dead run left files of a chunk the watermark does not cover
    watermark = source.watermark(NAME)
    assert 0 < watermark < max(ids.values())
    assert any(row["interaction_id"] > watermark for row in store.exported())

    # when the next run starts (with another chunk size, so the id ranges differ)
    exported = ParquetExporter(
        source, store.uri, s3_endpoint=store.s3_endpoint, chunk_rows=25
    ).export_new(NOW)
    # then every row is there exactly once
    assert exported == max(ids.values()) - watermark
    assert_exactly_once(store, ids)


CHILD = """
import sys, time
from datetime import datetime
import adapters.parquet_export.exporter as module
from adapters.parquet_export import ParquetExporter
from adapters.sql.engine import make_engine
from adapters.sql.export_source import SqlExportSource

url, uri, now = sys.argv[1:]
real_put, written = module._put, []
def put(fs, path, data):
    real_put(fs, path, data)
    written.append(path)
    if len(written) == 5:
        print("written", flush=True)
        time.sleep(60)
module._put = put
ParquetExporter(SqlExportSource(make_engine(url)), uri, chunk_rows=20).export_new(
    datetime.fromisoformat(now)
)
"""


def test_a_killed_export_worker_is_resumed_by_the_next_run(
    sqlite_engine: sa.Engine, tmp_path: Path
) -> None:
    ids = seed(sqlite_engine, spread(100, days=4))
    store = folder_store(tmp_path)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(sqlite_engine.url), store.uri, NOW.isoformat()],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "written"
        os.kill(child.pid, signal.SIGKILL)  # mid-chunk: some of its files are written
    finally:
        child.kill()
        child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()
    source = SqlExportSource(sqlite_engine)
    assert source.watermark(NAME) < max(ids.values())

    ParquetExporter(source, store.uri, chunk_rows=15).export_new(NOW)

    assert_exactly_once(store, ids)


def test_rows_received_within_the_lag_wait_for_the_next_run(
    engine: sa.Engine, tmp_path: Path
) -> None:
    store = folder_store(tmp_path)
    young = NOW - timedelta(seconds=10)
    rows = [
        interaction(1, NOW - timedelta(hours=1)),
        interaction(2, NOW - timedelta(hours=1)),
        interaction(3, NOW - timedelta(hours=1), received_at=young),
        # old again, but after a young row: waits too, or row 3 could be skipped for good
        interaction(4, NOW - timedelta(hours=1)),
    ]
    ids = seed(engine, rows)
    export = exporter(engine, store, lag=timedelta(minutes=1))

    assert export.export_new(NOW) == 2
    assert SqlExportSource(engine).watermark(NAME) == ids["e-00002"]

    assert export.export_new(NOW + timedelta(minutes=1)) == 2
    assert_exactly_once(store, ids)


def test_a_lower_id_committed_late_on_postgresql_is_not_skipped(
    fresh_postgres_url: str, tmp_path: Path
) -> None:
    upgrade_database(fresh_postgres_url)
    engine = make_engine(fresh_postgres_url)
    store = folder_store(tmp_path)
    try:
        slow = engine.connect()
        slow_transaction = slow.begin()
        slow.execute(  # takes id 1 and stays open
            sa.insert(user_interactions).values(interaction_row(interaction(1, NOW, NOW)))
        )
        seed(engine, [interaction(2, NOW, NOW)])  # id 2, committed first
        export = exporter(engine, store, lag=timedelta(minutes=1))

        assert export.export_new(NOW + timedelta(seconds=30)) == 0

        slow_transaction.commit()
        slow.close()
        assert export.export_new(NOW + timedelta(minutes=2)) == 2
        assert [row["event_id"] for row in store.exported()] == ["e-00001", "e-00002"]
    finally:
        engine.dispose()


def test_the_watermark_only_moves_forward(engine: sa.Engine) -> None:
    source = SqlExportSource(engine)
    assert source.watermark(NAME) == 0
    source.set_watermark(NAME, 10, NOW)
    source.set_watermark(NAME, 5, NOW)
    assert source.watermark(NAME) == 10
    source.set_watermark(NAME, 20, NOW)
    assert (source.watermark(NAME), source.watermark("other")) == (20, 0)


def test_the_read_window_is_half_open(sqlite_engine: sa.Engine, tmp_path: Path) -> None:
    store = folder_store(tmp_path)
    start, end = datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 22, tzinfo=UTC)
    one = timedelta(microseconds=1)
    seed(
        sqlite_engine,
        [interaction(n, moment) for n, moment in enumerate([start - one, start, end - one, end])],
    )
    exporter(sqlite_engine, store).export_new(NOW)

    window = store.window(start, end)

    assert sorted(window.occurred_at_ms.tolist()) == [
        int(start.timestamp() * 1000),
        int(end.timestamp() * 1000) - 1,
    ]


def exported_days(store: Store) -> list[str]:
    return sorted({path.split("/")[0] for path in store.files()})


def damaged(original: bytes, damage: str) -> bytes:
    if damage == "garbage":
        return b"PAR1 not parquet"
    if damage == "truncated":
        return original[: len(original) // 2]
    sink = pa.BufferOutputStream()  # valid parquet, but without the user_id column
    pq.write_table(pq.read_table(pa.BufferReader(original)).drop_columns(["user_id"]), sink)
    return bytes(sink.getvalue().to_pybytes())


@pytest.mark.parametrize("damage", ["garbage", "truncated", "column missing"])
def test_a_corrupt_file_in_the_window_is_named(
    sqlite_engine: sa.Engine, store: Store, damage: str
) -> None:
    seed(sqlite_engine, spread(60, days=6))
    exporter(sqlite_engine, store, chunk_rows=60).export_new(NOW)
    victim = next(path for path in store.files() if path.startswith(exported_days(store)[2]))
    store.write(victim, damaged(store.read(victim), damage))

    with pytest.raises(CorruptExportError) as caught:
        store.window(NOW - timedelta(days=7))
    assert caught.value.path.endswith(victim)
    # a window without the damaged day still reads
    after = datetime.fromisoformat(exported_days(store)[3].removeprefix("date=")).replace(
        tzinfo=UTC
    )
    assert len(store.window(after)) > 0


def test_a_missing_day_is_just_fewer_rows(sqlite_engine: sa.Engine, store: Store) -> None:
    seed(sqlite_engine, spread(60, days=6))
    exporter(sqlite_engine, store).export_new(NOW)
    whole = store.window(NOW - timedelta(days=7))
    day = exported_days(store)[1]
    for path in store.files():
        if path.startswith(day):
            store.fs.delete_file(f"{store.root}/{path}")

    read = store.window(NOW - timedelta(days=7))

    assert 0 < len(read) < len(whole) == 60


def test_empty_windows_read_as_no_rows(sqlite_engine: sa.Engine, store: Store) -> None:
    never_written = store.window(NOW - timedelta(days=90))
    assert len(never_written) == 0
    seed(sqlite_engine, spread(10, days=1))
    exporter(sqlite_engine, store).export_new(NOW)
    before = store.window(NOW - timedelta(days=90), NOW - timedelta(days=2))
    assert len(before) == 0
    assert len(before.user_vocab) == 0


def test_a_row_exported_twice_is_read_once(sqlite_engine: sa.Engine, store: Store) -> None:
    seed(sqlite_engine, spread(20, days=1))
    exporter(sqlite_engine, store).export_new(NOW)
    first = store.files()[0]
    store.write(first.replace("part-", "part-copy-"), store.read(first))

    assert len(store.window(NOW - timedelta(days=2))) == 20


def test_an_unreachable_s3_is_dependency_unavailable(
    sqlite_engine: sa.Engine, aws_env: None
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    seed(sqlite_engine, spread(5, days=1))
    source = SqlExportSource(sqlite_engine)
    export = ParquetExporter(source, f"s3://{BUCKET}/x", s3_endpoint=nowhere)

    with pytest.raises(DependencyUnavailable) as caught:
        export.export_new(NOW)
    assert caught.value.component == "export"
    assert source.watermark(NAME) == 0

    with pytest.raises(DependencyUnavailable):
        read_training_window(f"s3://{BUCKET}/x", NOW - timedelta(days=1), NOW, s3_endpoint=nowhere)
