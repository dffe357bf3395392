"""Implements `ports.retrain.RunLog` on the `retrain_runs` table: the embedded default, in the
service's own database, used when no Snowflake account is configured.

Each call is one short transaction of its own. `record` is an upsert by `run_id` in portable
SQL: UPDATE, and INSERT when no row was there (a concurrent INSERT of the same run, which the
lease makes unlikely, turns into the UPDATE it should have been).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from adapters.sql.engine import SQLITE_BEGIN_OPTION
from adapters.sql.errors import database_errors
from adapters.sql.tables import retrain_runs
from domain.retrain import RUN_TIMESTAMPS, RetrainRun, RunStatus, run_from_json, run_to_json

_READING = {SQLITE_BEGIN_OPTION: "DEFERRED"}


class SqlRunLog:
    """Raises `DependencyUnavailable("database")` when the database cannot be reached."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(self, run: RetrainRun) -> None:
        values = _row(run)
        with database_errors():
            try:
                with self._engine.begin() as connection:
                    if self._update(connection, run.run_id, values):
                        return
                    connection.execute(insert(retrain_runs).values(**values))
            except IntegrityError:
                with self._engine.begin() as connection:
                    self._update(connection, run.run_id, values)

    def unfinished(self) -> list[RetrainRun]:
        statement = (
            select(retrain_runs)
            .where(retrain_runs.c.status == RunStatus.RUNNING.value)
            .order_by(retrain_runs.c.started_at, retrain_runs.c.run_id)
        )
        return self._read(statement)

    def recent(self, limit: int) -> list[RetrainRun]:
        if limit < 1:
            return []
        statement = (
            select(retrain_runs)
            .order_by(retrain_runs.c.started_at.desc(), retrain_runs.c.run_id.desc())
            .limit(limit)
        )
        return self._read(statement)

    @staticmethod
    def _update(connection: Any, run_id: str, values: Mapping[str, object]) -> bool:
        statement = update(retrain_runs).where(retrain_runs.c.run_id == run_id).values(**values)
        return bool(connection.execute(statement).rowcount == 1)

    def _read(self, statement: Any) -> list[RetrainRun]:
        with database_errors(), self._engine.connect().execution_options(**_READING) as connection:
            rows = connection.execute(statement).mappings().all()
        return [run_from_json(dict(row)) for row in rows]


def _row(run: RetrainRun) -> dict[str, object]:
    """`run_to_json`'s shape, with datetimes for the timestamp columns (the JSON columns take
    the metrics objects as they are)."""
    row = run_to_json(run)
    for name in RUN_TIMESTAMPS:
        text = row[name]
        row[name] = None if text is None else datetime.fromisoformat(str(text))
    row["recorded_at"] = datetime.now(UTC)
    return row
