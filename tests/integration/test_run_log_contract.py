"""The contract of `ports.retrain.RunLog`, run unchanged against every implementation: the
in-memory fake, the spool in front of it, the SQL run log on SQLite and on a real PostgreSQL
(`fresh_postgres_url`), and the Snowflake run log on fakesnow's server mode over HTTP
(`fakesnow_server`, 127.0.0.1 and a free port, stopped after the module)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from adapters.run_log_spool import SpooledRunLog
from adapters.snowflake_run_log import SnowflakeRunLog
from adapters.sql.engine import make_engine
from adapters.sql.migrations import upgrade_database
from adapters.sql.run_log import SqlRunLog
from domain.errors import DependencyUnavailable
from domain.model import ModelMetrics
from domain.retrain import RetrainRun, RunStatus, Stage
from ports.retrain import RunLog
from tests.fakes_retrain import InMemoryRunLog
from tests.integration.snowflake_support import FAKESNOW_WARNING, fakesnow_server, unique_table
from tests.servers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings(FAKESNOW_WARNING)]

T0 = datetime(2026, 11, 26, 2, 0, 0, 123_456, tzinfo=UTC)
INDIA = timezone(timedelta(hours=5, minutes=30))
HOSTILE = 'x\'); DROP TABLE retrain_runs; -- "q" \\ %s %(a)s ☃'


@pytest.fixture(scope="module")
def snowflake_kwargs() -> Iterator[dict[str, Any]]:
    with fakesnow_server(free_port()) as kwargs:
        yield kwargs


@pytest.fixture(params=["memory", "spooled", "sqlite", "postgresql", "snowflake"])
def run_log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunLog]:
    if request.param == "memory":
        yield InMemoryRunLog()
        return
    if request.param == "spooled":
        yield SpooledRunLog(InMemoryRunLog(), tmp_path / "spool.jsonl")
        return
    if request.param == "snowflake":
        kwargs = request.getfixturevalue("snowflake_kwargs")
        yield SnowflakeRunLog(kwargs, table=unique_table())
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'feedrec.db'}"
    else:
        url = request.getfixturevalue("fresh_postgres_url")
    upgrade_database(url)
    engine = make_engine(url)
    yield SqlRunLog(engine)
    engine.dispose()


def a_run(run_id: str = "r1", started_at: datetime = T0, **changes: Any) -> RetrainRun:
    run = RetrainRun(run_id, started_at, RunStatus.RUNNING, failed_stage=Stage.TRAIN)
    return replace(run, **changes)


def finished(run: RetrainRun) -> RetrainRun:
    return replace(
        run,
        status=RunStatus.SUCCEEDED,
        finished_at=run.started_at + timedelta(minutes=7, microseconds=3),
        failed_stage=None,
        rows_exported=1_234_567,
        rows_trained=9_876_543_210,
        model_version="20261126T020700Z-abcdef",
        serving_version="20261125T020700Z-012345",
        candidate_metrics=ModelMetrics(0.123456789, 0.25, 0.875),
        serving_metrics=ModelMetrics(0.1, 0.2, 0.8),
        note="within 5.0% of the serving model",
    )


def test_an_empty_log_has_no_runs(run_log: RunLog) -> None:
    assert run_log.recent(30) == []
    assert run_log.unfinished() == []


def test_a_recorded_run_reads_back_as_it_was(run_log: RunLog) -> None:
    running = a_run(started_at=T0.astimezone(INDIA))
    run_log.record(running)

    (back,) = run_log.recent(10)

    assert back == running
    assert back.finished_at is None  # fakesnow's server would say 1970 if asked naively
    assert back.started_at.utcoffset() is not None


def test_recording_a_run_again_replaces_its_row(run_log: RunLog) -> None:
    run = a_run()
    run_log.record(run)
    run_log.record(replace(run, failed_stage=Stage.EVALUATE))

    run_log.record(finished(run))

    assert run_log.recent(10) == [finished(run)]
    assert run_log.unfinished() == []


def test_a_failed_run_keeps_its_stage_and_error(run_log: RunLog) -> None:
    failed = replace(
        a_run(),
        status=RunStatus.FAILED,
        finished_at=T0 + timedelta(seconds=5),
        failed_stage=Stage.READ,
        error=f"TrainingDataError: corrupt export file {HOSTILE}",
    )

    run_log.record(failed)

    assert run_log.recent(1) == [failed]


def test_unfinished_lists_only_running_runs_oldest_first(run_log: RunLog) -> None:
    newer = a_run("b-newer", T0 + timedelta(days=1))
    older = a_run("c-older", T0)
    run_log.record(newer)
    run_log.record(finished(a_run("a-done", T0 - timedelta(days=1))))
    run_log.record(older)

    assert run_log.unfinished() == [older, newer]


def test_recent_is_newest_first_and_at_most_the_limit(run_log: RunLog) -> None:
    runs = [finished(a_run(f"r{day}", T0 + timedelta(days=day))) for day in range(4)]
    for run in (runs[2], runs[0], runs[3], runs[1]):
        run_log.record(run)

    assert run_log.recent(3) == [runs[3], runs[2], runs[1]]
    assert run_log.recent(10) == runs[::-1]


def test_text_is_stored_verbatim(run_log: RunLog) -> None:
    run = replace(finished(a_run()), note=HOSTILE, error=HOSTILE)

    run_log.record(run)

    assert run_log.recent(1)[0].note == HOSTILE
    assert run_log.recent(1)[0].error == HOSTILE


def test_a_spool_that_cannot_be_written_is_a_dependency_failure(tmp_path: Path) -> None:
    (tmp_path / "not-a-folder").write_text("")
    inner = InMemoryRunLog()
    inner.unavailable = True
    spooled = SpooledRunLog(inner, tmp_path / "not-a-folder" / "spool.jsonl")

    with pytest.raises(DependencyUnavailable) as caught:
        spooled.record(a_run())

    assert caught.value.component == "run_log_spool"
    assert isinstance(caught.value.__cause__, OSError)
