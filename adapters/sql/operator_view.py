"""Read-only counts an operator asks for (`feedrec status`, `feedrec retrain --now`): what the
feed fell back to lately, what the outbox holds, what the export has not taken yet.

Every query is bounded by an index or by a recent time window, so running it against a busy
database costs about what one feed page does. Raises `DependencyUnavailable("database")` when
the database cannot be reached.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, and_, func, select

from adapters.sql.errors import database_errors
from adapters.sql.tables import export_watermarks, feed_cache, outbox, user_interactions

#: The export's watermark row (adapters.parquet_export.exporter's default name).
EXPORT_NAME = "user_interactions"


@dataclass(frozen=True)
class FirstPages:
    """First pages served since a moment: how many, and how many per fallback reason."""

    total: int
    by_reason: dict[str, int]

    @property
    def fallback_share(self) -> float | None:
        """Share of first pages not ranked by the model; None when nothing was served."""
        if not self.total:
            return None
        return sum(self.by_reason.values()) / self.total


@dataclass(frozen=True)
class OutboxState:
    """`pending`: unsent messages; `oldest_pending_at`: when the oldest was accepted (None:
    none pending); `latencies_s`: acceptance to acknowledgement of the newest messages (at most
    `sample`) sent since the moment asked about, in seconds, ascending."""

    pending: int
    oldest_pending_at: datetime | None
    latencies_s: list[float]


class OperatorView:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def first_pages_since(self, since: datetime) -> FirstPages:
        statement = (
            select(feed_cache.c.fallback_reason, func.count())
            .where(and_(feed_cache.c.page_number == 1, feed_cache.c.created_at >= since))
            .group_by(feed_cache.c.fallback_reason)
        )
        with database_errors(), self._engine.connect() as connection:
            rows = connection.execute(statement).all()
        counts = Counter({reason: int(count) for reason, count in rows})
        total = sum(counts.values())
        counts.pop(None, None)
        return FirstPages(total, {str(reason): count for reason, count in counts.items()})

    def outbox_since(self, since: datetime, sample: int = 10_000) -> OutboxState:
        pending = select(func.count(), func.min(outbox.c.created_at)).where(
            outbox.c.sent_at.is_(None)
        )
        # The newest rows by id (a backward primary-key scan); sent_at has no index.
        newest = (
            select(outbox.c.created_at, outbox.c.sent_at).order_by(outbox.c.id.desc()).limit(sample)
        )
        with database_errors(), self._engine.connect() as connection:
            count, oldest = connection.execute(pending).one()
            pairs = connection.execute(newest).all()
        latencies = sorted(
            (sent_at - created).total_seconds()
            for created, sent_at in pairs
            if sent_at is not None and sent_at >= since
        )
        return OutboxState(int(count), oldest, latencies)

    def not_exported(self) -> int:
        """Interactions stored above the export's watermark: not in any training window yet."""
        watermark = (
            select(export_watermarks.c.last_id)
            .where(export_watermarks.c.name == EXPORT_NAME)
            .scalar_subquery()
        )
        statement = select(func.count()).where(user_interactions.c.id > func.coalesce(watermark, 0))
        with database_errors(), self._engine.connect() as connection:
            return int(connection.execute(statement).scalar_one())

    def occurred_since(self, since: datetime) -> int:
        statement = select(func.count()).where(user_interactions.c.occurred_at >= since)
        with database_errors(), self._engine.connect() as connection:
            return int(connection.execute(statement).scalar_one())
