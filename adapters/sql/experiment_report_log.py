"""Implements `ports.experiments.ExperimentReportLog` on the `experiment_report_rows` table: the
embedded default, in the service's own database, used when no Snowflake account is configured.

`record` is one transaction: the rows' keys deleted, the rows inserted (portable SQL, and a
rerun of a day leaves one row per key).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from sqlalchemy import Engine, and_, bindparam, delete, insert

from adapters.sql.errors import database_errors
from adapters.sql.tables import experiment_report_rows

_KEY = ("report_date", "experiment", "variant", "metric")


class SqlExperimentReportLog:
    """Raises `DependencyUnavailable("database")` when the database cannot be reached."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(self, rows: Sequence[Mapping[str, object]]) -> None:
        if not rows:
            return
        now = datetime.now(UTC)
        values = [dict(row) | {"recorded_at": now} for row in rows]
        table = experiment_report_rows
        same_key = and_(*(table.c[name] == bindparam(f"k_{name}") for name in _KEY))
        keys = [{f"k_{name}": row[name] for name in _KEY} for row in values]
        with database_errors(), self._engine.begin() as connection:
            connection.execute(delete(table).where(same_key), keys)
            connection.execute(insert(table), values)
