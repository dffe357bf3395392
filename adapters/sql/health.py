"""Implements `ports.health.HealthCheck` for the database: can we run `SELECT 1`?"""

from __future__ import annotations

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from adapters.sql.engine import SQLITE_BEGIN_OPTION
from adapters.sql.errors import COMPONENT, describe
from ports.health import ComponentHealth


class DatabaseHealth:
    name = COMPONENT
    critical = True

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def check(self) -> ComponentHealth:
        try:
            # A probe must not queue behind a SQLite writer for the write lock.
            with self._engine.connect().execution_options(
                **{SQLITE_BEGIN_OPTION: "DEFERRED"}
            ) as connection:
                connection.execute(text("SELECT 1")).scalar_one()
        except SQLAlchemyError as err:
            return ComponentHealth(False, describe(err))
        except Exception as err:  # a probe reports, it never raises
            return ComponentHealth(False, f"{type(err).__name__}: {err}")
        return ComponentHealth(True)
