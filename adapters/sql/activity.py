"""Implements `ports.repositories.ActivityReader`: per-video and per-viewer activity
aggregated in the database, from `user_interactions`, for the trending feed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Engine,
    Executable,
    Float,
    Row,
    Select,
    case,
    cast,
    func,
    literal,
    select,
)

from adapters.sql.engine import SQLITE_BEGIN_OPTION
from adapters.sql.errors import database_errors
from adapters.sql.tables import user_interactions
from domain.feed import VideoActivity
from domain.interactions import InteractionType
from domain.trending import TrendingFormula, ViewerActivity


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

    def viewer_activity_between(self, start: datetime, end: datetime) -> list[ViewerActivity]:
        rows = self._read(_activity_query(start, end, per_viewer=True))
        return [
            ViewerActivity(user_id, video_id, interaction_type, int(events), int(watch_time_ms))
            for user_id, video_id, interaction_type, events, watch_time_ms in rows
        ]

    def _read(self, query: Executable) -> Sequence[Row[*tuple[Any, ...]]]:
        reading = {SQLITE_BEGIN_OPTION: "DEFERRED"}
        with database_errors(), self._engine.connect().execution_options(**reading) as connection:
            return connection.execute(query).all()


def _top_videos_query(formula: TrendingFormula, now: datetime, size: int) -> Select[str, float]:
    """`top_videos_from_activity` in SQL: one pass over the window's rows sums each (viewer,
    video) pair's decayed weights, the outer query caps each pair's say and sums per video;
    portable (CASE, not LEAST/GREATEST; float division, not integer)."""
    table = user_interactions
    decay = case(
        *((table.c.occurred_at >= now - oldest, _real(d)) for _, oldest, d in formula.buckets),
        else_=_real(0.0),
    )
    is_view = table.c.interaction_type == "view"
    other_weight = case(
        *(
            (table.c.interaction_type == kind, _real(w))
            for kind, w in formula.type_weights.items()
            if kind != "view"
        ),
        else_=_real(0.0),
    )
    per_pair = (
        select(
            table.c.video_id,
            func.sum(decay * other_weight).label("other"),
            func.sum(case((is_view, 1), else_=0)).label("views"),
            func.sum(case((is_view, decay), else_=_real(0.0))).label("decayed_views"),
            func.sum(case((is_view, table.c.watch_time_ms), else_=0)).label("watch_time_ms"),
        )
        .where(table.c.occurred_at >= now - formula.window, table.c.occurred_at < now)
        .group_by(table.c.user_id, table.c.video_id)
        .subquery()
    )
    share = cast(per_pair.c.watch_time_ms, Float) / (per_pair.c.views * formula.full_view_ms)
    view_share = case(
        (share < formula.min_view_share, formula.min_view_share),
        (share > 1.0, 1.0),
        else_=share,
    )
    view_weight = formula.type_weights.get(InteractionType.VIEW, 0.0)
    say = per_pair.c.other + case(
        (per_pair.c.views > 0, view_weight * view_share * per_pair.c.decayed_views), else_=0.0
    )
    capped = case(
        (say > formula.viewer_cap, formula.viewer_cap),
        (say < -formula.viewer_cap, -formula.viewer_cap),
        else_=say,
    )
    score = func.sum(capped)
    return (
        select(per_pair.c.video_id, score.label("score"))
        .group_by(per_pair.c.video_id)
        .having(score > 0)
        .order_by(score.desc(), per_pair.c.video_id)
        .limit(size)
    )


def _real(value: float) -> ColumnElement[float]:
    # A bare literal is NUMERIC to PostgreSQL: summing NUMERIC products over half a million
    # rows cost several times the double-precision arithmetic.
    return cast(literal(value), Float)


def _activity_query(start: datetime, end: datetime, per_viewer: bool = False) -> Select[Any]:
    table = user_interactions
    keys: tuple[Column[Any], ...] = (table.c.video_id, table.c.interaction_type)
    if per_viewer:
        keys = (table.c.user_id, *keys)
    return (
        select(
            *keys,
            func.count(),
            func.coalesce(func.sum(table.c.watch_time_ms), 0),
        )
        .where(table.c.occurred_at >= start, table.c.occurred_at < end)
        .group_by(*keys)
    )
