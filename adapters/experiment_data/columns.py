"""Impressions and interactions (arrow tables) summed per viewer and day, then into each
variant's `Moments` per metric: the columnar core the SQL and the parquet readers share.

Impressions need `user_id`, `feed_session_id`, `page_number`, `video_id`,
`experiment_variant_id`, `fallback_reason` and `served_at`; interactions `user_id`,
`feed_session_id`, `video_id`, `interaction_type`, `watch_time_ms` and `occurred_at`.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from domain.experiment_report import METRICS, Moments, VariantDay
from domain.feed import FallbackReason
from domain.interactions import InteractionType

_EPOCH = date(1970, 1, 1)
#: Interaction types that count as positive engagement for the click-through-like rate.
POSITIVE = (
    InteractionType.VIEW,
    InteractionType.LIKE,
    InteractionType.SHARE,
    InteractionType.COMMENT,
    InteractionType.COMPLETE,
)
_Array = npt.NDArray[np.float64]


def variant_days(
    impressions: pa.Table, interactions: pa.Table, start: date, end: date
) -> list[VariantDay]:
    """See `ports.experiments.ExperimentData.variant_days`."""
    n_days = (end - start).days + 1
    impressions = impressions.filter(pc.is_valid(impressions["experiment_variant_id"]))
    served_day = _day_index(impressions["served_at"], start)
    keep = pc.and_(pc.greater_equal(served_day, 0), pc.less(served_day, n_days))
    impressions = impressions.append_column("day", served_day).filter(keep)
    if impressions.num_rows == 0 or n_days < 1:
        return []
    viewers = impressions.group_by("user_id", use_threads=False).aggregate(
        [("experiment_variant_id", "first")]
    )
    index = {name: i for i, name in enumerate(viewers["user_id"].to_pylist())}
    variant_of = np.array(viewers["experiment_variant_id_first"].to_pylist(), dtype=object)
    grid = _Grid(len(index), n_days, viewers["user_id"])

    grid.add("items", impressions["user_id"], impressions["day"])
    pages = impressions.group_by(["user_id", "feed_session_id", "page_number"]).aggregate(
        [("day", "min"), ("fallback_reason", "max")]
    )
    grid.add("pages", pages["user_id"], pages["day_min"])
    fell_back = pc.and_kleene(
        pc.is_valid(pages["fallback_reason_max"]),
        pc.not_equal(pages["fallback_reason_max"], FallbackReason.EXPERIMENT_CONTROL.value),
    )
    fallbacks = pages.filter(pc.fill_null(fell_back, False))
    grid.add("fallback_pages", fallbacks["user_id"], fallbacks["day_min"])
    sessions = impressions.group_by(["user_id", "feed_session_id"]).aggregate([("day", "min")])
    grid.add("sessions", sessions["user_id"], sessions["day_min"])

    served = (
        impressions.select(["user_id", "feed_session_id", "video_id"])
        .group_by(["user_id", "feed_session_id", "video_id"])
        .aggregate([])
    )
    consumed = interactions.filter(pc.is_valid(interactions["feed_session_id"])).join(
        served, keys=["user_id", "feed_session_id", "video_id"], join_type="inner"
    )
    consumed_day = _day_index(consumed["occurred_at"], start)
    consumed = consumed.append_column("day", pc.max_element_wise(consumed_day, 0))
    consumed = consumed.filter(pc.less(consumed["day"], n_days))
    for kind in InteractionType:
        of_kind = consumed.filter(pc.equal(consumed["interaction_type"], kind.value))
        grid.add(kind.value, of_kind["user_id"], of_kind["day"])
    positive = consumed.filter(pc.is_in(consumed["interaction_type"], pa.array(POSITIVE)))
    grid.add("positive", positive["user_id"], positive["day"])
    grid.add("watch_ms", consumed["user_id"], consumed["day"], consumed["watch_time_ms"])

    cumulative = {name: np.cumsum(values, axis=1) for name, values in grid.sums.items()}
    ones = np.ones(len(index))
    numerators: dict[str, tuple[str, str | None]] = {
        "ctr": ("positive", "items"),
        **{f"{kind.value}_rate": (kind.value, "items") for kind in InteractionType},
        "watch_time_per_session_ms": ("watch_ms", "sessions"),
        "watch_time_per_viewer_ms": ("watch_ms", None),
        "fallback_rate": ("fallback_pages", "pages"),
    }
    rows: list[VariantDay] = []
    for day in range(n_days):
        seen = cumulative["items"][:, day] > 0
        if not seen.any():
            continue
        for variant in sorted(set(variant_of[seen])):
            members = seen & (variant_of == variant)
            column = {name: values[members, day] for name, values in cumulative.items()}
            moments = {
                metric: _moments(column[y], column[x] if x else ones[members])
                for metric, (y, x) in numerators.items()
                if metric in METRICS
            }
            rows.append(
                VariantDay(
                    day=start + timedelta(days=day),
                    variant=str(variant),
                    viewers=int(members.sum()),
                    sessions=int(column["sessions"].sum()),
                    pages=int(column["pages"].sum()),
                    items=int(column["items"].sum()),
                    metrics=moments,
                )
            )
    return rows


class _Grid:
    """Per-viewer, per-day sums (viewers x days), viewers indexed as in `users`."""

    def __init__(self, n_viewers: int, n_days: int, users: pa.ChunkedArray) -> None:
        self.shape = (n_viewers, n_days)
        self.users = users.combine_chunks() if isinstance(users, pa.ChunkedArray) else users
        self.sums: dict[str, _Array] = {}

    def add(
        self,
        name: str,
        user_ids: pa.ChunkedArray,
        days: pa.ChunkedArray | pa.Array,
        weights: pa.ChunkedArray | None = None,
    ) -> None:
        codes = pc.index_in(user_ids, value_set=self.users).to_numpy(zero_copy_only=False)
        day = np.asarray(days.to_numpy() if hasattr(days, "to_numpy") else days, dtype=np.int64)
        flat = codes.astype(np.int64) * self.shape[1] + day
        values = None if weights is None else weights.to_numpy().astype(np.float64)
        total = np.bincount(flat, weights=values, minlength=self.shape[0] * self.shape[1])
        self.sums[name] = total.reshape(self.shape).astype(np.float64)


def _day_index(moments: pa.ChunkedArray, start: date) -> pa.ChunkedArray:
    days = pc.cast(pc.cast(moments, pa.date32()), pa.int32())
    return pc.subtract(days, (start - _EPOCH).days)


def _moments(y: _Array, x: _Array) -> Moments:
    return Moments(
        n=len(y),
        sum_y=float(y.sum()),
        sum_x=float(x.sum()),
        sum_yy=float(np.dot(y, y)),
        sum_xx=float(np.dot(x, x)),
        sum_xy=float(np.dot(x, y)),
    )
