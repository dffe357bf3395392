"""The Snowflake run log on fakesnow's server mode over HTTP (`fakesnow_server`: 127.0.0.1, a
free port, stopped by each test): the NULL timestamp quirk, an unreachable Snowflake, and the
spool that delivers a run's row exactly once when Snowflake is back."""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import snowflake.connector

from adapters.run_log_spool import SpooledRunLog
from adapters.snowflake_run_log import SnowflakeRunLog
from domain.errors import DependencyUnavailable
from domain.model import ModelMetrics
from domain.retrain import RetrainRun, RunStatus, Stage
from tests.integration.snowflake_support import (
    DATABASE,
    FAKESNOW_WARNING,
    SCHEMA,
    fakesnow_server,
    unique_table,
)
from tests.servers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings(FAKESNOW_WARNING)]

T0 = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)


def offline_kwargs(port: int) -> dict[str, Any]:
    """What fakesnow_server(port) yields, for a port nothing listens on (yet)."""
    return {
        "user": "fake",
        "password": "snow",
        "account": "fakesnow",
        "host": "127.0.0.1",
        "port": port,
        "protocol": "http",
        "database": DATABASE,
        "schema": SCHEMA,
        "login_timeout": 5,
        "network_timeout": 1,
        "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
    }


def count_rows(kwargs: dict[str, Any], table: str, run_id: str) -> int:
    connection = snowflake.connector.connect(**kwargs)
    try:
        cursor = connection.cursor()
        cursor.execute(f"SELECT COUNT(*) FROM {table} WHERE run_id = %s", (run_id,))
        row = cursor.fetchone()
        assert row is not None
        return int(row[0])
    finally:
        connection.close()


def test_a_null_finish_time_reads_back_as_none_despite_the_server_mode_quirk() -> None:
    table = unique_table()
    running = RetrainRun("r1", T0, RunStatus.RUNNING, failed_stage=Stage.EXPORT)
    with fakesnow_server(free_port()) as kwargs:
        log = SnowflakeRunLog(kwargs, table=table)
        log.record(running)
        connection = snowflake.connector.connect(**kwargs)
        try:
            cursor = connection.cursor()
            cursor.execute(f"SELECT finished_at, finished_at IS NULL FROM {table}")
            raw = cursor.fetchone()
            assert raw is not None
        finally:
            connection.close()

        assert log.recent(1)[0].finished_at is None
        assert log.unfinished() == [running]
    # the quirk of fakesnow's server mode the adapter works around: NULL comes back as 1970
    assert raw[0] is not None and raw[0].year == 1970
    assert raw[1] is True


def test_the_table_is_created_once_and_kept() -> None:
    table = unique_table()
    run = RetrainRun("r1", T0, RunStatus.SKIPPED, finished_at=T0)
    with fakesnow_server(free_port()) as kwargs:
        SnowflakeRunLog(kwargs, table=table).record(run)

        # a new worker process: CREATE TABLE IF NOT EXISTS again, the row is still there
        assert SnowflakeRunLog(kwargs, table=table).recent(5) == [run]


def test_an_unreachable_snowflake_is_dependency_unavailable_within_seconds() -> None:
    log = SnowflakeRunLog(offline_kwargs(free_port()), table=unique_table())
    started = time.monotonic()

    with pytest.raises(DependencyUnavailable) as raised:
        log.record(RetrainRun("r1", T0, RunStatus.RUNNING))

    assert time.monotonic() - started < 10
    assert raised.value.component == "run_log"
    assert isinstance(raised.value.__cause__, snowflake.connector.errors.Error)


def test_rows_kept_while_snowflake_is_down_are_delivered_once_it_is_back(
    tmp_path: Path,
) -> None:
    port, table = free_port(), unique_table()
    spool = tmp_path / "spool.jsonl"
    log = SpooledRunLog(SnowflakeRunLog(offline_kwargs(port), table=table), spool)
    run = RetrainRun("r1", T0, RunStatus.RUNNING, failed_stage=Stage.EXPORT)
    done = replace(
        run,
        status=RunStatus.SUCCEEDED,
        finished_at=T0 + timedelta(minutes=8),
        failed_stage=None,
        rows_trained=42,
        model_version="20261126T020800Z-abcdef",
        candidate_metrics=ModelMetrics(0.2, 0.3, 0.9),
    )

    log.record(run)  # Snowflake is down: kept
    log.record(done)  # within the retry interval: kept without trying
    assert spool.exists()
    assert log.pending() == [done]
    with pytest.raises(DependencyUnavailable):
        log.recent(5)  # the inner log cannot be asked: say so rather than guess

    with fakesnow_server(port) as kwargs:
        assert log.flush() == 0
        assert not spool.exists()
        assert SnowflakeRunLog(kwargs, table=table).recent(5) == [done]
        assert count_rows(kwargs, table, "r1") == 1
        assert log.flush() == 0  # nothing left to send twice


def test_a_spool_replayed_after_a_crash_still_leaves_one_row(tmp_path: Path) -> None:
    # The worker dies after Snowflake took the rows but before the spool was rewritten: the
    # next delivery sends them again, and MERGE by run_id keeps one row.
    port, table = free_port(), unique_table()
    spool = tmp_path / "spool.jsonl"
    log = SpooledRunLog(SnowflakeRunLog(offline_kwargs(port), table=table), spool)
    runs = [RetrainRun(f"r{i}", T0 + timedelta(days=i), RunStatus.SKIPPED) for i in range(3)]
    for run in runs:
        log.record(run)
    shutil.copy(spool, tmp_path / "before-delivery.jsonl")

    with fakesnow_server(port) as kwargs:
        assert log.flush() == 0
        shutil.copy(tmp_path / "before-delivery.jsonl", spool)
        assert log.flush() == 0

        assert [count_rows(kwargs, table, run.run_id) for run in runs] == [1, 1, 1]


def test_while_snowflake_is_down_a_record_does_not_wait_for_it_again(tmp_path: Path) -> None:
    log = SpooledRunLog(
        SnowflakeRunLog(offline_kwargs(free_port()), table=unique_table()),
        tmp_path / "spool.jsonl",
        retry_interval_s=60,
    )
    log.record(RetrainRun("r1", T0, RunStatus.RUNNING))  # tries, fails, spools
    started = time.monotonic()

    for stage in Stage:
        log.record(RetrainRun("r1", T0, RunStatus.RUNNING, failed_stage=stage))

    assert time.monotonic() - started < 0.5
    assert [run.failed_stage for run in log.pending()] == [Stage.LOG]
