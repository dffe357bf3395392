"""Alembic migrations of the `ports.repositories` adapter's schema, run from code.

`env.py`, `script.py.mako` and `versions/` live next to this file; no alembic.ini is needed.
A new revision: `alembic.command.revision(alembic_config(url), message, autogenerate=True)`
against a scratch database at head, then review the file it writes in `versions/`.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from adapters.sql.engine import make_engine
from adapters.sql.errors import database_errors

SCRIPT_LOCATION = Path(__file__).resolve().parent
# Any constant will do: it only has to be the same in every process that migrates.
_MIGRATION_LOCK_KEY = 0x6665_6564_7265_63


def alembic_config(url: str) -> Config:
    """An Alembic configuration for `url` built in code (no alembic.ini)."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    # ConfigParser treats "%" as interpolation; URL-encoded passwords contain it.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_database(url: str) -> None:
    """Bring the database at `url` to the newest schema (`alembic upgrade head`).

    Safe to run from several processes at once. Raises `DependencyUnavailable` when the
    database cannot be reached.
    """
    config = alembic_config(url)
    engine = make_engine(url)
    try:
        with database_errors(), engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Serialise concurrent upgrades (web and worker starting together); the lock
                # ends with the transaction. SQLite's BEGIN IMMEDIATE already serialises them.
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                )
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()
