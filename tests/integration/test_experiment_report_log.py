"""`ports.experiments.ExperimentReportLog`, the same tests on every implementation: the SQL table
on SQLite and on a real PostgreSQL (`fresh_postgres_url`), and the Snowflake table on
fakesnow's server mode over HTTP (127.0.0.1, a free port, stopped after the module)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import snowflake.connector
from sqlalchemy import select

from adapters.snowflake_experiment_report_log import SnowflakeExperimentReportLog
from adapters.sql.engine import make_engine
from adapters.sql.experiment_report_log import SqlExperimentReportLog
from adapters.sql.migrations import upgrade_database
from adapters.sql.tables import experiment_report_rows
from domain.errors import DependencyUnavailable
from ports.experiments import ExperimentReportLog
from tests.integration.snowflake_support import FAKESNOW_WARNING, fakesnow_server
from tests.servers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings(FAKESNOW_WARNING)]

DAY = date(2026, 12, 1)
HOSTILE = "x'); DROP TABLE experiment_report_rows; -- %s ☃"
#: (log, read back: (report_date, variant, metric) -> (value, lift_low, verdict))
Stored = dict[tuple[date, str, str], tuple[float | None, float | None, str]]


def row(variant: str, metric: str, value: float | None, **changes: Any) -> dict[str, object]:
    base: dict[str, object] = {
        "report_date": DAY,
        "experiment": "ranker-test",
        "variant": variant,
        "metric": metric,
        "value": value,
        "low": None if value is None else value - 0.01,
        "high": None if value is None else value + 0.01,
        "lift": None,
        "lift_low": None,
        "lift_high": None,
        "verdict": "inconclusive",
    }
    return base | changes


@pytest.fixture(scope="module")
def snowflake_kwargs() -> Iterator[dict[str, Any]]:
    with fakesnow_server(free_port()) as kwargs:
        yield kwargs


@pytest.fixture(params=["sqlite", "postgresql", "snowflake"])
def report_log(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[ExperimentReportLog, Callable[[], Stored]]]:
    if request.param == "snowflake":
        kwargs = request.getfixturevalue("snowflake_kwargs")
        table = f"EXPERIMENT_REPORT_ROWS_{uuid.uuid4().hex[:8].upper()}"

        def read_snowflake() -> Stored:
            connection = snowflake.connector.connect(**kwargs)
            try:
                cursor = connection.cursor()
                cursor.execute(
                    f"SELECT report_date, variant, metric, value, lift_low, verdict FROM {table}"
                )
                return {(r[0], r[1], r[2]): (r[3], r[4], r[5]) for r in cursor.fetchall()}
            finally:
                connection.close()

        yield SnowflakeExperimentReportLog(kwargs, table=table), read_snowflake
        return
    url = (
        f"sqlite:///{tmp_path / 'feedrec.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("fresh_postgres_url")
    )
    upgrade_database(url)
    engine = make_engine(url)
    t = experiment_report_rows

    def read_sql() -> Stored:
        query = select(
            t.c.report_date, t.c.variant, t.c.metric, t.c.value, t.c.lift_low, t.c.verdict
        )
        with engine.connect() as connection:
            return {(r[0], r[1], r[2]): (r[3], r[4], r[5]) for r in connection.execute(query)}

    yield SqlExperimentReportLog(engine), read_sql
    engine.dispose()


def test_the_days_rows_are_stored(
    report_log: tuple[ExperimentReportLog, Callable[[], Stored]],
) -> None:
    log, stored = report_log

    log.record(
        [
            row("control", "like_rate", 0.12),
            row(
                HOSTILE,
                "like_rate",
                0.15,
                lift=0.25,
                lift_low=0.05,
                lift_high=0.45,
                verdict="better",
            ),
            row("control", "skip_rate", None),
        ]
    )

    assert stored() == {
        (DAY, "control", "like_rate"): (0.12, None, "inconclusive"),
        (DAY, HOSTILE, "like_rate"): (0.15, 0.05, "better"),
        (DAY, "control", "skip_rate"): (None, None, "inconclusive"),
    }


def test_a_rerun_of_the_day_leaves_one_row_each_with_the_new_values(
    report_log: tuple[ExperimentReportLog, Callable[[], Stored]],
) -> None:
    log, stored = report_log
    log.record([row("control", "like_rate", 0.12), row("treatment", "like_rate", 0.13)])

    log.record([row("control", "like_rate", 0.2)])
    log.record([row("control", "like_rate", 0.3, report_date=date(2026, 12, 2))])

    assert stored() == {
        (DAY, "control", "like_rate"): (0.2, None, "inconclusive"),
        (DAY, "treatment", "like_rate"): (0.13, None, "inconclusive"),
        (date(2026, 12, 2), "control", "like_rate"): (0.3, None, "inconclusive"),
    }


def test_nothing_to_record_writes_nothing(
    report_log: tuple[ExperimentReportLog, Callable[[], Stored]],
) -> None:
    log, stored = report_log
    log.record([])
    if isinstance(log, SnowflakeExperimentReportLog):
        return  # the table is created on the first write; there is nothing to read
    assert stored() == {}


def test_an_unreachable_snowflake_is_unavailable() -> None:
    kwargs = {
        "user": "fake",
        "password": "snow",
        "account": "fakesnow",
        "host": "127.0.0.1",
        "port": free_port(),
        "protocol": "http",
        "login_timeout": 5,
        "network_timeout": 1,
    }
    with pytest.raises(DependencyUnavailable) as raised:
        SnowflakeExperimentReportLog(kwargs).record([row("control", "like_rate", 0.1)])
    assert raised.value.component == "experiment_report_log"
