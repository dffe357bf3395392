"""Implements `ports.retrain.RunLog` on a Snowflake table, through snowflake-connector-python.

- The table is created if missing (`CREATE TABLE IF NOT EXISTS`) on the first call of each
  instance.
- `record` is one `MERGE` keyed by `run_id` with bound parameters: delivering the same run
  again (a retry after a lost answer, a spool replayed twice) leaves one row.
- Metrics are VARIANT objects (`PARSE_JSON` of bound JSON text).
- Timestamps are TIMESTAMP_TZ, bound as ISO 8601 text with offset and cast in SQL, so the
  connector's own datetime binding rules do not matter.
- Reading back, NULL timestamps are told by `col IS NULL`, not by the value: fakesnow's server
  mode (0.12) returns NULL TIMESTAMP_* as 1970-01-01 while `IS NULL` stays true, and the extra
  column costs nothing on real Snowflake.
- One connection per call: the worker writes a handful of rows a night, and a connection held
  overnight would be dead by the next run anyway.

Every connector error (unreachable, login refused, SQL error) raises
`DependencyUnavailable("run_log")`, cause kept; `adapters.run_log_spool` keeps such rows.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import snowflake.connector
from snowflake.connector.errors import Error as SnowflakeError

from domain.errors import DependencyUnavailable
from domain.retrain import (
    RUN_METRICS,
    RUN_TIMESTAMPS,
    RetrainRun,
    RunStatus,
    run_from_json,
    run_to_json,
)

COMPONENT = "run_log"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,254}")
_COLUMNS = (
    "run_id",
    "started_at",
    "finished_at",
    "status",
    "failed_stage",
    "rows_exported",
    "rows_trained",
    "model_version",
    "serving_version",
    "candidate_metrics",
    "serving_metrics",
    "error",
    "note",
    "recorded_at",
)
_TIMESTAMPS = frozenset({*RUN_TIMESTAMPS, "recorded_at"})
_VARIANTS = frozenset(RUN_METRICS)


class SnowflakeRunLog:
    """`connect_kwargs` go to `snowflake.connector.connect` as they are (account, user,
    password, database, schema, warehouse, and host/port/protocol for a non-default endpoint,
    login_timeout / network_timeout in seconds). `table` is an unquoted identifier."""

    def __init__(self, connect_kwargs: Mapping[str, Any], table: str = "RETRAIN_RUNS") -> None:
        if not _IDENTIFIER.fullmatch(table):
            raise ValueError(f"not a plain Snowflake identifier: {table!r}")
        self._connect_kwargs = dict(connect_kwargs)
        self._table = table
        self._created = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SnowflakeRunLog({self._connect_kwargs.get('account')!r}, {self._table!r})"

    def record(self, run: RetrainRun) -> None:
        values = _row(run)
        source = ", ".join(f"{_parameter_marker(name)} AS {name}" for name in _COLUMNS)
        updates = ", ".join(f"{name} = s.{name}" for name in _COLUMNS if name != "run_id")
        statement = (
            f"MERGE INTO {self._table} t USING (SELECT {source}) s ON t.run_id = s.run_id "
            f"WHEN MATCHED THEN UPDATE SET {updates} "
            f"WHEN NOT MATCHED THEN INSERT ({', '.join(_COLUMNS)}) "
            f"VALUES ({', '.join(f's.{name}' for name in _COLUMNS)})"
        )
        with self._cursor() as cursor:
            cursor.execute(statement, tuple(values[name] for name in _COLUMNS))

    def unfinished(self) -> list[RetrainRun]:
        return self._select(
            "WHERE status = %s ORDER BY started_at, run_id", (RunStatus.RUNNING.value,)
        )

    def recent(self, limit: int) -> list[RetrainRun]:
        if limit < 1:
            return []
        return self._select("ORDER BY started_at DESC, run_id DESC LIMIT %s", (int(limit),))

    def _select(self, tail: str, params: Sequence[object]) -> list[RetrainRun]:
        nulls = ", ".join(f"{name} IS NULL" for name in sorted(_TIMESTAMPS))
        statement = f"SELECT {', '.join(_COLUMNS)}, {nulls} FROM {self._table} {tail}"
        with self._cursor() as cursor:
            cursor.execute(statement, tuple(params))
            rows = cursor.fetchall()
        result = []
        for row in rows:
            values = dict(zip(_COLUMNS, row, strict=False))
            for name, missing in zip(sorted(_TIMESTAMPS), row[len(_COLUMNS) :], strict=True):
                if missing:
                    values[name] = None
            result.append(_run(values))
        return result

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        try:
            connection = snowflake.connector.connect(**self._connect_kwargs)
            try:
                cursor = connection.cursor()
                with self._lock:
                    if not self._created:
                        cursor.execute(self._create_statement())
                        self._created = True
                yield cursor
            finally:
                connection.close()
        except SnowflakeError as err:
            raise DependencyUnavailable(COMPONENT, f"Snowflake: {err}") from err

    def _create_statement(self) -> str:
        return (
            f"CREATE TABLE IF NOT EXISTS {self._table} ("
            "run_id VARCHAR(64) NOT NULL PRIMARY KEY, "
            "started_at TIMESTAMP_TZ NOT NULL, "
            "finished_at TIMESTAMP_TZ, "
            "status VARCHAR(16) NOT NULL, "
            "failed_stage VARCHAR(16), "
            "rows_exported NUMBER(19, 0) NOT NULL, "
            "rows_trained NUMBER(19, 0) NOT NULL, "
            "model_version VARCHAR(128), "
            "serving_version VARCHAR(128), "
            "candidate_metrics VARIANT, "
            "serving_metrics VARIANT, "
            "error VARCHAR, "
            "note VARCHAR, "
            "recorded_at TIMESTAMP_TZ NOT NULL)"
        )


def _parameter_marker(name: str) -> str:
    if name in _TIMESTAMPS:
        return "%s::TIMESTAMP_TZ"
    if name in _VARIANTS:
        return "PARSE_JSON(%s)"
    return "%s"


def _row(run: RetrainRun) -> dict[str, object]:
    """`run_to_json`'s shape (its ISO timestamps bind as they are), metrics as JSON text."""
    row = run_to_json(run)
    for name in _VARIANTS:
        row[name] = None if row[name] is None else json.dumps(row[name])
    row["recorded_at"] = datetime.now(UTC).isoformat()
    return row


def _run(values: Mapping[str, Any]) -> RetrainRun:
    def moment(value: object) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise DependencyUnavailable(COMPONENT, f"Snowflake returned {value!r} as a time")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    row = dict(values)
    for name in RUN_TIMESTAMPS:
        row[name] = moment(row[name])
    for name in _VARIANTS:
        # The connector hands VARIANT over as JSON text.
        if isinstance(row[name], str):
            row[name] = json.loads(row[name])
    if row["started_at"] is None:
        raise DependencyUnavailable(COMPONENT, "a run row without started_at")
    try:
        return run_from_json(row)
    except ValueError as err:
        raise DependencyUnavailable(COMPONENT, f"a malformed run row: {err}") from err
