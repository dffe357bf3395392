"""Implements `ports.experiments.ExperimentReportLog` on a Snowflake table, through
snowflake-connector-python, next to the retrain's run log (`adapters.snowflake_run_log`, whose
habits it shares: the table created if missing on first use, bound parameters, dates bound as
ISO text and cast in SQL, one connection per call).

`record` MERGEs each row on (report_date, experiment, variant, metric), all in one connection:
a rerun of a day leaves one row each. Every connector error raises
`DependencyUnavailable("experiment_report_log")`, cause kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import snowflake.connector
from snowflake.connector.errors import Error as SnowflakeError

from domain.errors import DependencyUnavailable

COMPONENT = "experiment_report_log"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,254}")
_KEY = ("report_date", "experiment", "variant", "metric")
_COLUMNS = (
    *_KEY,
    "value",
    "low",
    "high",
    "lift",
    "lift_low",
    "lift_high",
    "verdict",
    "recorded_at",
)
_CASTS = {"report_date": "%s::DATE", "recorded_at": "%s::TIMESTAMP_TZ"}


class SnowflakeExperimentReportLog:
    """`connect_kwargs` as `SnowflakeRunLog` takes them; `table` an unquoted identifier."""

    def __init__(
        self, connect_kwargs: Mapping[str, Any], table: str = "EXPERIMENT_REPORT_ROWS"
    ) -> None:
        if not _IDENTIFIER.fullmatch(table):
            raise ValueError(f"not a plain Snowflake identifier: {table!r}")
        self._connect_kwargs = dict(connect_kwargs)
        self._table = table

    def record(self, rows: Sequence[Mapping[str, object]]) -> None:
        if not rows:
            return
        source = ", ".join(f"{_CASTS.get(name, '%s')} AS {name}" for name in _COLUMNS)
        matched = " AND ".join(f"t.{name} = s.{name}" for name in _KEY)
        updates = ", ".join(f"{name} = s.{name}" for name in _COLUMNS if name not in _KEY)
        statement = (
            f"MERGE INTO {self._table} t USING (SELECT {source}) s ON {matched} "
            f"WHEN MATCHED THEN UPDATE SET {updates} "
            f"WHEN NOT MATCHED THEN INSERT ({', '.join(_COLUMNS)}) "
            f"VALUES ({', '.join(f's.{name}' for name in _COLUMNS)})"
        )
        now = datetime.now(UTC).isoformat()
        try:
            connection = snowflake.connector.connect(**self._connect_kwargs)
            try:
                cursor = connection.cursor()
                cursor.execute(self._create_statement())
                for row in rows:
                    values = dict(row) | {"recorded_at": now}
                    cursor.execute(statement, tuple(_bound(values[name]) for name in _COLUMNS))
            finally:
                connection.close()
        except SnowflakeError as err:
            raise DependencyUnavailable(COMPONENT, f"Snowflake: {err}") from err

    def _create_statement(self) -> str:
        numbers = ", ".join(f"{name} DOUBLE" for name in _COLUMNS[4:10])
        return (
            f"CREATE TABLE IF NOT EXISTS {self._table} ("
            "report_date DATE NOT NULL, "
            "experiment VARCHAR(128) NOT NULL, "
            "variant VARCHAR(128) NOT NULL, "
            "metric VARCHAR(64) NOT NULL, "
            f"{numbers}, "
            "verdict VARCHAR(16) NOT NULL, "
            "recorded_at TIMESTAMP_TZ NOT NULL, "
            "PRIMARY KEY (report_date, experiment, variant, metric))"
        )


def _bound(value: object) -> object:
    return value.isoformat() if isinstance(value, date) else value
