"""Each variant's `Moments` per metric, day by day: the served and consumed data reduced part
by part as it is read (`served.ServedAndConsumed`), then the days walked in order, adding
each day's events to per-viewer running totals (memory: a few numbers per viewer, never
viewers x days). The SQL and the parquet readers share it.

Viewers are numbered variant by variant, so a variant is a slice of every total; the rest is
numpy on integer codes, with no Python per row.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from adapters.experiment_data.served import KINDS, ServedAndConsumed
from domain.experiment_report import METRICS, Moments, VariantDay
from domain.interactions import InteractionType

#: Interaction types that count as positive engagement for the click-through-like rate.
POSITIVE = (
    InteractionType.VIEW,
    InteractionType.LIKE,
    InteractionType.SHARE,
    InteractionType.COMMENT,
    InteractionType.COMPLETE,
)
_Floats = npt.NDArray[np.float64]
_Ints = npt.NDArray[np.int64]
#: metric -> (numerator, denominator); None: one per viewer (a per-viewer mean).
_RATIOS: dict[str, tuple[str, str | None]] = {
    "ctr": ("positive", "items"),
    **{f"{kind.value}_rate": (kind.value, "items") for kind in InteractionType},
    "watch_time_per_session_ms": ("watch_ms", "sessions"),
    "watch_time_per_viewer_ms": ("watch_ms", None),
    "fallback_rate": ("fallback_pages", "pages"),
}


def variant_days(
    impressions: Iterable[pa.Table], interactions: Iterable[pa.Table], start: date, end: date
) -> list[VariantDay]:
    """See `ports.experiments.ExperimentData.variant_days`. The tables are read one at a time
    (a day's exports each, or everything in one), every interaction before any impression."""
    n_days = (end - start).days + 1
    if n_days < 1:
        return []
    data = ServedAndConsumed(start, n_days)
    for part in interactions:
        data.add_interactions(part)
        del part  # not held while the next part is read
    for part in impressions:
        data.add_impressions(part)
        del part
    if not data.any_served():
        return []
    viewers = data.viewers()
    n = viewers.count
    consumed = data.consumed(viewers)
    by_kind = _Days(consumed.kind * n + consumed.viewer, consumed.day, n_days)
    watch = _Days(consumed.viewer, consumed.day, n_days, consumed.watch_ms)
    del consumed

    names = ("items", "sessions", "pages", "fallback_pages", "positive", "watch_ms")
    totals = {name: np.zeros(n) for name in (*names, *(k.value for k in KINDS))}
    positive = [KINDS.index(kind) for kind in POSITIVE]
    rows: list[VariantDay] = []
    for today in range(n_days):
        for name, happened in data.served(today, viewers).items():
            totals[name] += happened
        kinds = by_kind.on(today, n * len(KINDS)).reshape(len(KINDS), n)
        for index, kind in enumerate(KINDS):
            totals[kind.value] += kinds[index]
        totals["positive"] += kinds[positive].sum(axis=0)
        totals["watch_ms"] += watch.on(today, n)
        if not data.served_on(today):
            continue
        for name, lo, hi in viewers.slices:
            column = {key: values[lo:hi] for key, values in totals.items()}
            seen = int(np.count_nonzero(column["items"]))
            if seen:
                rows.append(_variant_day(start + timedelta(days=today), name, seen, column))
    return rows


def _variant_day(day: date, variant: str, seen: int, column: dict[str, _Floats]) -> VariantDay:
    # Viewers not seen yet hold zeros everywhere, so sums over the whole slice are theirs too;
    # only a per-viewer denominator (1 per viewer seen) needs the count.
    return VariantDay(
        day=day,
        variant=variant,
        viewers=seen,
        sessions=int(column["sessions"].sum()),
        pages=int(column["pages"].sum()),
        items=int(column["items"].sum()),
        metrics={
            metric: _moments(column[y], column[x] if x else None, seen)
            for metric, (y, x) in _RATIOS.items()
            if metric in METRICS
        },
    )


class _Days:
    """Events on integer keys (viewer numbers), weighted or counted, grouped by day."""

    def __init__(
        self, keys: _Ints, days: _Ints, n_days: int, weights: _Floats | None = None
    ) -> None:
        order = np.argsort(days, kind="stable")  # a radix sort: days are small integers
        self._keys = keys[order]
        self._weights = None if weights is None else weights[order]
        self._edges = np.searchsorted(days[order], np.arange(n_days + 1))

    def on(self, day: int, size: int) -> _Floats:
        """Per key below `size`, the events' summed weight (or count) on `day`."""
        lo, hi = self._edges[day], self._edges[day + 1]
        weights = None if self._weights is None else self._weights[lo:hi]
        total = np.bincount(self._keys[lo:hi], weights=weights, minlength=size)
        return total.astype(np.float64, copy=False)


def _moments(y: _Floats, x: _Floats | None, seen: int) -> Moments:
    sum_y = float(y.sum())
    if x is None:  # one per viewer seen
        return Moments(seen, sum_y, seen, _dot(y, y), seen, sum_y)
    return Moments(seen, sum_y, float(x.sum()), _dot(y, y), _dot(x, x), _dot(x, y))


def _dot(a: _Floats, b: _Floats) -> float:
    # Not np.dot: BLAS's worker threads spin against arrow's for the same cores (measured:
    # 100x slower inside the readout on 2 cores); einsum sums in numpy's own loop.
    return float(np.einsum("i,i->", a, b))
