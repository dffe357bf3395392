"""Implements `ports.repositories.ActivityReader`: per-video activity aggregated in the
database, from `user_interactions`, for the trending feed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Executable, Float, Row, Select, case, cast, func, select

from adapters.sql.engine import SQLITE_BEGIN_OPTION
from adapters.sql.errors import database_errors
from adapters.sql.tables import user_interactions
from domain.feed import VideoActivity
from domain.trending import TrendingFormula


class SqlActivityReader:
    """One grouped query per call, answered from the index on `occurred_at`.

    Runs on a connection of its own outside any unit of work, in a deferred transaction on
    SQLite: trending is read on the request path and must not queue behind a writer.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def top_videos(
        self, formula: TrendingFormula, now: datetime, size: int
    ) -> list[tuple[str, float]]:
        if size <= 0:
            return []
        rows = self._read(_top_videos_query(formula, now, size))
        return [(video_id, float(score)) for video_id, score in rows]

    def activity_between(self, start: datetime, end: datetime) -> list[VideoActivity]:
        rows = self._read(_activity_query(start, end))
        return [
            VideoActivity(video_id, interaction_type, int(events), int(watch_time_ms))
            for video_id, interaction_type, events, watch_time_ms in rows
        ]

    def _read(self, query: Executable) -> Sequence[Row[*tuple[Any, ...]]]:
        reading = {SQLITE_BEGIN_OPTION: "DEFERRED"}
        with database_errors(), self._engine.connect().execution_options(**reading) as connection:
            return connection.execute(query).all()


def _top_videos_query(formula: TrendingFormula, now: datetime, size: int) -> Select[str, float]:
    """`top_videos_from_activity` in SQL: aggregate per (video, type, bucket), weigh, sum per
    video, rank; portable (CASE, not LEAST/GREATEST; float division, not integer)."""
    table = user_interactions
    bucket = case(
        *(
            (table.c.occurred_at >= now - oldest, index)
            for index, (_, oldest, _) in enumerate(formula.buckets)
        ),
        else_=-1,
    )
    per_bucket = (
        select(
            table.c.video_id,
            table.c.interaction_type,
            bucket.label("bucket"),
            func.count().label("events"),
            func.coalesce(func.sum(table.c.watch_time_ms), 0).label("watch_time_ms"),
        )
        .where(table.c.occurred_at >= now - formula.window, table.c.occurred_at < now)
        .group_by(table.c.video_id, table.c.interaction_type, bucket)
        .subquery()
    )
    decay = case(
        *((per_bucket.c.bucket == index, d) for index, (_, _, d) in enumerate(formula.buckets)),
        else_=0.0,
    )
    type_weight = case(
        *((per_bucket.c.interaction_type == kind, w) for kind, w in formula.type_weights.items()),
        else_=0.0,
    )
    share = cast(per_bucket.c.watch_time_ms, Float) / (per_bucket.c.events * formula.full_view_ms)
    view_share = case(
        (share < formula.min_view_share, formula.min_view_share),
        (share > 1.0, 1.0),
        else_=share,
    )
    weight = case(
        (per_bucket.c.interaction_type == "view", type_weight * view_share), else_=type_weight
    )
    score = func.sum(decay * weight * per_bucket.c.events)
    return (
        select(per_bucket.c.video_id, score.label("score"))
        .group_by(per_bucket.c.video_id)
        .having(score > 0)
        .order_by(score.desc(), per_bucket.c.video_id)
        .limit(size)
    )


def _activity_query(start: datetime, end: datetime) -> Select[str, str, int, int]:
    table = user_interactions
    return (
        select(
            table.c.video_id,
            table.c.interaction_type,
            func.count(),
            func.coalesce(func.sum(table.c.watch_time_ms), 0),
        )
        .where(table.c.occurred_at >= start, table.c.occurred_at < end)
        .group_by(table.c.video_id, table.c.interaction_type)
    )
