"""Impressions and interactions (arrow tables) summed per viewer and day, then into each
variant's `Moments` per metric: the columnar core the SQL and the parquet readers share.

Impressions need `user_id`, `feed_session_id`, `page_number`, `video_id`,
`experiment_variant_id`, `fallback_reason` and `served_at`; interactions `user_id`,
`feed_session_id`, `video_id`, `interaction_type`, `watch_time_ms` and `occurred_at`.
String columns may come dictionary-encoded (the parquet reader asks for that).

Every id becomes an integer code once (arrow's hash tables); the rest is numpy on those
codes, with no Python per row. Viewers are numbered variant by variant, so a variant is a
slice; the days are walked in order, adding each day's events to per-viewer running totals
(memory: a few numbers per viewer, never viewers x days).
"""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise

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
_KINDS = tuple(InteractionType)
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
    impressions: pa.Table, interactions: pa.Table, start: date, end: date
) -> list[VariantDay]:
    """See `ports.experiments.ExperimentData.variant_days`."""
    n_days = (end - start).days + 1
    if n_days < 1:
        return []
    impressions = impressions.filter(pc.is_valid(impressions["experiment_variant_id"]))
    day = _day_index(impressions["served_at"], start)
    impressions = impressions.filter(pa.array((day >= 0) & (day < n_days)))
    if impressions.num_rows == 0:
        return []
    day = _day_index(impressions["served_at"], start)
    user, variants, user_ids, renumber = _viewers(impressions)
    n = len(variants)
    session_ids, session = _encode(impressions["feed_session_id"])
    page = _page_codes(session, _numpy(impressions["page_number"]))
    fell_back = _numpy(
        pc.fill_null(
            pc.not_equal(impressions["fallback_reason"], FallbackReason.EXPERIMENT_CONTROL.value),
            False,
        )
    ).astype(bool)
    session_user, session_day = _first_seen(session, user, day)
    page_user, page_day = _first_seen(page, user, day)
    page_fell_back = np.zeros(len(page_user), bool)
    page_fell_back[page] = fell_back
    served = {
        "items": _Days(user, day, n_days),
        "sessions": _Days(session_user, session_day, n_days),
        "pages": _Days(page_user, page_day, n_days),
        "fallback_pages": _Days(page_user[page_fell_back], page_day[page_fell_back], n_days),
    }
    c_user, c_day, c_kind, c_watch = _consumed(
        interactions,
        impressions["video_id"],
        session_ids,
        session,
        viewers=(user, user_ids, renumber),
        served_day=day,
        start=start,
        n_days=n_days,
    )
    by_kind = _Days(c_kind * n + c_user, c_day, n_days)
    watch = _Days(c_user, c_day, n_days, c_watch)

    totals = {name: np.zeros(n) for name in (*served, *(k.value for k in _KINDS))}
    totals["positive"], totals["watch_ms"] = np.zeros(n), np.zeros(n)
    positive = [_KINDS.index(kind) for kind in POSITIVE]
    slices = _slices(variants)
    rows: list[VariantDay] = []
    for today in range(n_days):
        for name, happened in served.items():
            totals[name] += happened.on(today, n)
        kinds = by_kind.on(today, n * len(_KINDS)).reshape(len(_KINDS), n)
        for index, kind in enumerate(_KINDS):
            totals[kind.value] += kinds[index]
        totals["positive"] += kinds[positive].sum(axis=0)
        totals["watch_ms"] += watch.on(today, n)
        if not served["items"].any_on(today):
            continue
        for name, lo, hi in slices:
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
    """Events on integer keys (viewer codes), weighted or counted, grouped by day."""

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

    def any_on(self, day: int) -> bool:
        return bool(self._edges[day + 1] > self._edges[day])


def _viewers(
    impressions: pa.Table,
) -> tuple[_Ints, npt.NDArray[np.object_], pa.Array, _Ints]:
    """Each impression's viewer code, each viewer's variant, the distinct user ids and the
    code of each (`renumber[index in user ids]`). Viewers are numbered variant by variant
    (variants in name order), so that a variant's viewers are one slice."""
    users, user = _encode(impressions["user_id"])
    names, variant = _encode(impressions["experiment_variant_id"])
    variant_of = np.zeros(len(users), np.int64)
    variant_of[user] = variant  # a viewer seen under two variants keeps one of them
    rank = np.argsort(np.argsort(np.asarray(names.to_pylist(), dtype=object)))
    order = np.argsort(rank[variant_of], kind="stable")
    renumber = np.empty_like(order)
    renumber[order] = np.arange(len(order))
    variant_names = np.asarray(names.to_pylist(), dtype=object)[variant_of[order]]
    return renumber[user], variant_names, users, renumber


def _slices(variants: npt.NDArray[np.object_]) -> list[tuple[str, int, int]]:
    edges = np.flatnonzero(np.r_[True, variants[1:] != variants[:-1], True])
    return [(str(variants[a]), int(a), int(b)) for a, b in pairwise(edges)]


def _page_codes(session: _Ints, page_number: _Ints) -> _Ints:
    """A dense code per (session, page number). Page numbers are small, so the pair is an
    index into sessions x pages, renumbered over the pairs that occur; only a page number far
    beyond the rest needs arrow's hash table."""
    width = int(page_number.max()) + 1
    cells = (int(session.max()) + 1) * width
    pair = session * width + page_number
    if cells > 8 * len(pair) + 1_000_000:
        return _encode(pa.array(pair))[1]
    used = np.zeros(cells, bool)
    used[pair] = True
    renumbered: _Ints = np.cumsum(used, dtype=np.int64) - 1
    codes: _Ints = renumbered[pair]
    return codes


def _first_seen(code: _Ints, user: _Ints, day: _Ints) -> tuple[_Ints, _Ints]:
    """For codes 0..max (a session, a page), its viewer and the first day it was served."""
    size = int(code.max()) + 1
    first = np.full(size, np.iinfo(np.int64).max)
    np.minimum.at(first, code, day)
    owner = np.zeros(size, np.int64)
    owner[code] = user  # a session or page belongs to one viewer
    return owner, first


def _consumed(
    interactions: pa.Table,
    videos: pa.ChunkedArray,
    session_ids: pa.Array,
    session: _Ints,
    *,
    viewers: tuple[_Ints, pa.Array, _Ints],
    served_day: _Ints,
    start: date,
    n_days: int,
) -> tuple[_Ints, _Ints, _Ints, _Floats]:
    """(viewer, day, kind index, watch ms) of the interactions on a video the viewer was served
    in that session. One counts on its own day, or on the viewer's first day in the window if
    the client's clock puts it earlier (a viewer's totals start when the viewer is seen)."""
    interactions = interactions.filter(pc.is_valid(interactions["feed_session_id"]))
    user, user_ids, renumber = viewers
    video_ids, video = _encode(videos)
    width = len(video_ids) + 1
    i_session = _lookup(interactions["feed_session_id"], session_ids)
    i_video = _lookup(interactions["video_id"], video_ids)
    candidates = np.flatnonzero((i_session >= 0) & (i_video >= 0))
    wanted = pa.array(i_session[candidates] * width + i_video[candidates])
    shown = _numpy(pc.index_in(wanted, value_set=pa.array(session * width + video)), -1)
    candidates, shown = candidates[shown >= 0], shown[shown >= 0]
    kept = interactions.take(pa.array(candidates))
    # A session is one viewer's: the interaction must be that viewer's too.
    by = _lookup(kept["user_id"], user_ids)
    same_viewer = (by >= 0) & (renumber[np.maximum(by, 0)] == user[shown])
    kept, shown = kept.filter(pa.array(same_viewer)), shown[same_viewer]
    viewer = user[shown]
    first_day = np.full(len(renumber), np.iinfo(np.int64).max)
    np.minimum.at(first_day, user, served_day)
    day = np.maximum(_day_index(kept["occurred_at"], start), first_day[viewer])
    kind = _lookup(kept["interaction_type"], pa.array([k.value for k in _KINDS]))
    valid = (day < n_days) & (kind >= 0)
    watch = _numpy(pc.fill_null(kept["watch_time_ms"], 0)).astype(np.float64)
    return viewer[valid], day[valid], kind[valid], watch[valid]


def _encode(column: pa.ChunkedArray | pa.Array) -> tuple[pa.Array, _Ints]:
    """(distinct values, each row's index among them)."""
    if not (isinstance(column, pa.ChunkedArray) and pa.types.is_dictionary(column.type)):
        distinct = pc.unique(column)
        if isinstance(distinct, pa.ChunkedArray):
            distinct = distinct.combine_chunks()
        return distinct, _lookup(column, distinct)
    groups = _dictionaries(column)
    if not groups:
        return pa.array([], column.type.value_type), np.zeros(0, np.int64)
    # One hash pass over the distinct dictionaries gives the values and their codes at once.
    encoded = pc.dictionary_encode(pa.concat_arrays([words for words, _ in groups]))
    return encoded.dictionary, _indexed(column, groups, _numpy(encoded.indices, -1))


def _lookup(column: pa.ChunkedArray | pa.Array, distinct: pa.Array) -> _Ints:
    """Each row's index in `distinct`, -1 when absent or null. A dictionary column is never
    decoded: each of its dictionaries is looked up once, then indexed by its chunks."""
    if not (isinstance(column, pa.ChunkedArray) and pa.types.is_dictionary(column.type)):
        return _numpy(pc.index_in(column, value_set=distinct), -1)
    groups = _dictionaries(column)
    if not groups:
        return np.zeros(0, np.int64)
    # One hash table of `distinct` for every dictionary: they are looked up together.
    found = pc.index_in(pa.concat_arrays([words for words, _ in groups]), value_set=distinct)
    return _indexed(column, groups, _numpy(found, -1))


def _indexed(
    column: pa.ChunkedArray, groups: list[tuple[pa.Array, list[int]]], found: _Ints
) -> _Ints:
    """Each row's code, from `found`: the codes of the groups' dictionaries, concatenated."""
    codes: list[_Ints] = [np.zeros(0, np.int64)] * column.num_chunks
    start = 0
    for words, positions in groups:
        mapping = np.append(found[start : start + len(words)], -1)  # [-1]: a null index
        start += len(words)
        for position in positions:
            codes[position] = mapping[_numpy(column.chunk(position).indices, -1)]
    return np.concatenate(codes)


def _dictionaries(column: pa.ChunkedArray) -> list[tuple[pa.Array, list[int]]]:
    """The distinct dictionaries of a dictionary column, each with its chunks' positions. The
    batches read from one parquet row group share its dictionary: looking each up once is
    what keeps the readout linear (42 batches held 3x the rows in dictionary entries)."""
    groups: dict[tuple[int, ...], tuple[pa.Array, list[int]]] = {}
    for position, chunk in enumerate(column.chunks):
        words = chunk.dictionary
        key = (words.offset, len(words), *(b.address if b else 0 for b in words.buffers()))
        groups.setdefault(key, (words, []))[1].append(position)
    return list(groups.values())


def _numpy(column: pa.ChunkedArray | pa.Array, fill: int | None = None) -> _Ints:
    if fill is not None:
        column = pc.fill_null(column, fill)
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    return np.asarray(column.to_numpy(zero_copy_only=False)).astype(np.int64, copy=False)


def _day_index(moments: pa.ChunkedArray, start: date) -> _Ints:
    days = _numpy(pc.cast(pc.cast(moments, pa.date32()), pa.int32()))
    return days - (start - _EPOCH).days


def _moments(y: _Floats, x: _Floats | None, seen: int) -> Moments:
    sum_y = float(y.sum())
    if x is None:  # one per viewer seen
        return Moments(seen, sum_y, seen, _dot(y, y), seen, sum_y)
    return Moments(seen, sum_y, float(x.sum()), _dot(y, y), _dot(x, x), _dot(x, y))


def _dot(a: _Floats, b: _Floats) -> float:
    # Not np.dot: BLAS's worker threads spin against arrow's for the same cores (measured:
    # 100x slower inside the readout on 2 cores); einsum sums in numpy's own loop.
    return float(np.einsum("i,i->", a, b))
