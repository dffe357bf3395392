"""Impressions: the items of each page in `feed_cache`, one row per item served, for the
impressions export (`adapters.parquet_export.IMPRESSION_SCHEMA`) and the experiment readout.

Read from the pages the feed already records, so serving a page writes nothing more. The
export's watermark is `feed_cache.id` (named `feed_cache` in `export_watermarks`); the same
lag rule as for interactions keeps it from passing a page not yet committed (see
`adapters.sql.export_source.SqlExportSource.rows_after`; here the time is `created_at`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Engine, select

from adapters.sql.engine import SQLITE_BEGIN_OPTION
from adapters.sql.errors import database_errors
from adapters.sql.export_source import SqlExportSource
from adapters.sql.tables import feed_cache

_READING = {SQLITE_BEGIN_OPTION: "DEFERRED"}
WATERMARK = "feed_cache"


class ImpressionRow(NamedTuple):
    """One item served; fields as `IMPRESSION_SCHEMA` describes them."""

    impression_id: str
    user_id: str
    feed_session_id: str
    page_number: int
    rank: int
    video_id: str
    score: float | None
    source: str | None
    algorithm: str
    fallback_reason: str | None
    model_version: str | None
    experiment_variant_id: str | None
    personalization: str
    served_at: datetime
    page_id: int


PAGE_COLUMNS = (
    feed_cache.c.id,
    feed_cache.c.user_id,
    feed_cache.c.feed_session_id,
    feed_cache.c.page_number,
    feed_cache.c["items"],  # `.c.items` is the collection's method
    feed_cache.c.algorithm,
    feed_cache.c.fallback_reason,
    feed_cache.c.model_version,
    feed_cache.c.experiment_variant_id,
    feed_cache.c.personalization,
    feed_cache.c.created_at,
)


def impressions_of(
    pages: Iterable[Any], earlier_items: Mapping[tuple[str, int], int]
) -> list[ImpressionRow]:
    """The impressions of `pages` (feed_cache rows); `earlier_items[(session, page)]` is how
    many items the session served on its pages before that one (for the session-wide rank)."""
    rows: list[ImpressionRow] = []
    for page in pages:
        session, number = page["feed_session_id"], page["page_number"]
        offset = earlier_items.get((session, number), 0)
        for position, item in enumerate(page["items"]):
            rank = offset + position + 1
            rows.append(
                ImpressionRow(
                    impression_id=f"{session}:{rank}",
                    user_id=page["user_id"],
                    feed_session_id=session,
                    page_number=number,
                    rank=rank,
                    video_id=item["videoId"],
                    score=float(item["score"]) if item.get("score") is not None else None,
                    source=item.get("source"),
                    algorithm=page["algorithm"],
                    fallback_reason=page["fallback_reason"],
                    model_version=page["model_version"],
                    experiment_variant_id=page["experiment_variant_id"],
                    personalization=page["personalization"],
                    served_at=page["created_at"],
                    page_id=page["id"],
                )
            )
    return rows


class SqlImpressionSource:
    """What `ParquetExporter` reads impressions from: `rows_after` takes up to `limit` pages
    after the watermark (in `feed_cache.id` order) and returns all their items."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._watermarks = SqlExportSource(engine)

    def rows_after(
        self, last_id: int, limit: int, received_before: datetime
    ) -> list[ImpressionRow]:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        query = (
            select(*PAGE_COLUMNS)
            .where(feed_cache.c.id > last_id)
            .order_by(feed_cache.c.id)
            .limit(limit)
        )
        with database_errors(), self._engine.connect().execution_options(**_READING) as connection:
            found = connection.execute(query).mappings().all()
            pages = []
            for page in found:
                if page["created_at"] >= received_before:
                    break  # a gap-free prefix, as for interactions
                pages.append(page)
            earlier = earlier_item_counts(connection, pages)
        return impressions_of(pages, earlier)

    def watermark(self, name: str) -> int:
        return self._watermarks.watermark(name)

    def set_watermark(self, name: str, last_id: int, now: datetime) -> None:
        self._watermarks.set_watermark(name, last_id, now)


def earlier_item_counts(
    connection: Any, pages: Sequence[Any]
) -> dict[tuple[str, int], int]:
    """(session, page) -> items the session served before that page, for `pages`."""
    wanted = {(p["feed_session_id"], p["page_number"]) for p in pages if p["page_number"] > 1}
    if not wanted:
        return {}
    sessions = sorted({session for session, _ in wanted})
    sizes: dict[str, dict[int, int]] = {}
    for start in range(0, len(sessions), 500):  # bounded IN lists
        query = select(
            feed_cache.c.feed_session_id, feed_cache.c.page_number, feed_cache.c["items"]
        ).where(feed_cache.c.feed_session_id.in_(sessions[start : start + 500]))
        for session, number, items in connection.execute(query):
            sizes.setdefault(session, {})[number] = len(items)
    return {
        (session, number): sum(n for p, n in sizes.get(session, {}).items() if p < number)
        for session, number in wanted
    }
