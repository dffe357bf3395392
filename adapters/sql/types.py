"""Column types shared by the tables (part of the `ports.repositories` adapter)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


def refuse_naive(value: datetime) -> datetime:
    """`value`, unless it is naive (ValueError): its meaning depends on the machine that made it."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"a naive datetime cannot be stored: {value!r}")
    return value


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime in and out, on every database.

    PostgreSQL keeps the instant (`timestamptz`); SQLite keeps no offset at all, so the value is
    stored as naive UTC and UTC is attached again on the way out. Microseconds survive both.
    A naive datetime is refused: its meaning depends on the machine that made it.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        in_utc = refuse_naive(value).astimezone(UTC)
        return in_utc if dialect.name == "postgresql" else in_utc.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
