"""What was served and what was done with it, reduced as the data is read, part by part (a
day's exports at a time), to numbers per viewer, session and page: no row is kept.

Interactions are read first (`add_interactions`), kept as small records sorted by (session,
video); then impressions (`add_impressions`), each part marking the records that answer one
of its items. Impressions need `user_id`, `feed_session_id`, `page_number`, `video_id`,
`experiment_variant_id`, `fallback_reason` and `served_at`; interactions `user_id`,
`feed_session_id`, `video_id`, `interaction_type`, `watch_time_ms` and `occurred_at`.

Memory: per viewer and per session a few numbers and the id, per page one key, per
interaction one record (about 24 bytes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from adapters.experiment_data.codes import Codes, day_index, lookup, numpy_ints
from adapters.experiment_data.keys import KeySet, distinct, keyed
from adapters.experiment_data.keys import owner_of as session_of
from domain.feed import FallbackReason
from domain.interactions import InteractionType

KINDS = tuple(InteractionType)
_KIND_VALUES = pa.array([kind.value for kind in KINDS])
_NEVER = np.iinfo(np.int16).max  # a day past any window
_Ints = npt.NDArray[np.int64]
_Floats = npt.NDArray[np.float64]
_Code = TypeVar("_Code", bound=np.integer)


@dataclass(frozen=True)
class Consumed:
    """Interactions on a video served to the same viewer in that session: viewer (numbered
    as `Viewers.renumber` says), window day, index in `KINDS`, watch time in ms."""

    viewer: _Ints
    day: _Ints
    kind: _Ints
    watch_ms: _Floats


@dataclass(frozen=True)
class Viewers:
    """The viewers served, numbered variant by variant (variants in name order) so that a
    variant is a slice: `renumber[code]` is a viewer's number, below `count`."""

    renumber: _Ints
    count: int
    slices: list[tuple[str, int, int]]


class ServedAndConsumed:
    """Reads the interactions, then the impressions, then answers per viewer and day
    (`viewers`, `served`, `consumed`). Days count from `start`; impressions outside the
    `n_days`, or without a variant, are left out."""

    def __init__(self, start: date, n_days: int) -> None:
        self._start, self._n_days = start, n_days
        self._users, self._sessions, self._videos = Codes(), Codes(), Codes()
        self._variants: dict[str, int] = {}
        self._variant_of = np.zeros(0, np.int16)  # per viewer code; -1: never served
        self._first_day = np.zeros(0, np.int16)  # per viewer code
        self._owner = np.zeros(0, np.int32)  # per session code: its viewer, -1 if not served
        self._session_day = np.zeros(0, np.int16)  # per session code: first day served
        self._pages = KeySet()  # (session, page number): first day, fell back
        self._items: dict[int, list[tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]]] = {}
        self._read: list[_Events] = []
        self._events = _Events.none()

    def add_interactions(self, interactions: pa.Table) -> None:
        interactions = interactions.filter(pc.is_valid(interactions["feed_session_id"]))
        (by,) = self._users.encode(interactions["user_id"])
        (session,) = self._sessions.encode(interactions["feed_session_id"])
        (video,) = self._videos.encode(interactions["video_id"])
        kind = lookup(interactions["interaction_type"], _KIND_VALUES)
        # An interaction counts from its viewer's first day on, never earlier: a day before
        # the window is as good as -1, and one past it stays past it.
        day = np.maximum(day_index(interactions["occurred_at"], self._start), -1)
        kept = (session >= 0) & (video >= 0) & (by >= 0) & (kind >= 0) & (day < self._n_days)
        watch = numpy_ints(interactions["watch_time_ms"], 0)[kept]
        self._read.append(
            _Events(keyed(session[kept], video[kept]), by[kept], day[kept], kind[kept], watch)
        )

    def add_impressions(self, impressions: pa.Table) -> None:
        if self._read:
            self._events, self._read = _Events.sorted(self._read), []
        impressions = impressions.filter(pc.is_valid(impressions["experiment_variant_id"]))
        day = day_index(impressions["served_at"], self._start)
        inside = (day >= 0) & (day < self._n_days)
        if not inside.all():
            impressions, day = impressions.filter(pa.array(inside)), day[inside]
        if not impressions.num_rows:
            return
        (user,) = self._users.encode(impressions["user_id"])
        (session,) = self._sessions.encode(impressions["feed_session_id"])
        (video,) = self._videos.encode(impressions["video_id"])
        self._variant_of = _grown(self._variant_of, self._users.size, -1)
        self._first_day = _grown(self._first_day, self._users.size, _NEVER)
        self._owner = _grown(self._owner, self._sessions.size, -1)
        self._session_day = _grown(self._session_day, self._sessions.size, _NEVER)
        names = [str(name) for name in pc.unique(impressions["experiment_variant_id"]).to_pylist()]
        codes = np.array([self._variants.setdefault(n, len(self._variants)) for n in names])
        variant = codes[lookup(impressions["experiment_variant_id"], pa.array(names))]
        fell_back = numpy_ints(
            pc.fill_null(
                pc.not_equal(
                    impressions["fallback_reason"], FallbackReason.EXPERIMENT_CONTROL.value
                ),
                False,
            )
        )
        page = numpy_ints(impressions["page_number"], 0)
        one_day = int(day.min()) == int(day.max())
        for today in np.flatnonzero(np.bincount(day)).tolist():
            rows = slice(None) if one_day else np.flatnonzero(day == today)
            viewer, in_session = user[rows], session[rows]
            self._variant_of[viewer] = variant[rows]  # a viewer seen under two keeps one
            self._first_day[viewer] = np.minimum(self._first_day[viewer], today)
            items = np.bincount(viewer)
            seen = np.flatnonzero(items)
            self._items.setdefault(today, []).append(
                (seen.astype(np.int32), items[seen].astype(np.int32))
            )
            self._owner[in_session] = viewer  # a session belongs to one viewer
            self._session_day[in_session] = np.minimum(self._session_day[in_session], today)
            pages, page_row = distinct(keyed(in_session, page[rows]))
            raised = np.bincount(page_row, weights=fell_back[rows], minlength=len(pages)) > 0
            self._pages.add(pages, today, raised)
            self._events.answer(distinct(keyed(in_session, video[rows]))[0])

    def any_served(self) -> bool:
        return bool(self._items)

    def served_on(self, day: int) -> bool:
        return day in self._items

    def viewers(self) -> Viewers:
        names = sorted(self._variants)
        rank = np.zeros(len(names) + 1, np.int64)  # [-1]: never served, after every variant
        for position, name in enumerate(names):
            rank[self._variants[name]] = position
        rank[-1] = len(names)
        ranked = rank[self._variant_of[: self._users.size]]
        order = np.argsort(ranked, kind="stable")
        renumber = np.empty_like(order)
        renumber[order] = np.arange(len(order))
        edges = np.r_[0, np.cumsum(np.bincount(ranked, minlength=len(names) + 1))]
        slices = [
            (name, int(edges[n]), int(edges[n + 1]))
            for n, name in enumerate(names)
            if edges[n + 1] > edges[n]
        ]
        return Viewers(renumber, int(edges[len(names)]), slices)

    def served(self, day: int, viewers: Viewers) -> dict[str, _Floats]:
        """Per viewer number: items served on `day`, and the sessions, pages and pages served
        by a fallback first served that day."""
        n, renumber = viewers.count, viewers.renumber
        items = np.zeros(n)
        for seen, count in self._items.get(day, []):
            items += np.bincount(renumber[seen], weights=count, minlength=n)
        sessions = np.flatnonzero(self._session_day[: self._sessions.size] == day)
        found = {"items": items, "sessions": _count(renumber[self._owner[sessions]], n)}
        pages, fallback_pages = np.zeros(n), np.zeros(n)
        for keys, first, fell_back in zip(
            self._pages.keys, self._pages.days, self._pages.flags, strict=True
        ):
            today = first == day
            pages += _count(renumber[self._owner[session_of(keys[today])]], n)
            raised = today & fell_back
            fallback_pages += _count(renumber[self._owner[session_of(keys[raised])]], n)
        return found | {"pages": pages, "fallback_pages": fallback_pages}

    def consumed(self, viewers: Viewers) -> Consumed:
        """The interactions that answer an item served to their viewer in that session; one
        counts on its own day, or on the viewer's first day if the client's clock puts it
        earlier."""
        events, self._events = self._events, _Events.none()
        owner = self._owner[session_of(events.key)]
        answered = events.answered & (owner == events.by)
        viewer = owner[answered]
        return Consumed(
            viewers.renumber[viewer],
            np.maximum(events.day[answered], self._first_day[viewer]).astype(np.int64),
            events.kind[answered].astype(np.int64),
            events.watch[answered].astype(np.float64),
        )


class _Events:
    """Interactions as (session, video) key, viewer code, day, kind index and watch ms, and
    whether each answers an item served."""

    def __init__(self, key: _Ints, by: _Ints, day: _Ints, kind: _Ints, watch: _Ints) -> None:
        self.key, self.watch = key, watch
        self.by, self.day, self.kind = (
            by.astype(np.int32),
            day.astype(np.int16),
            kind.astype(np.int8),
        )
        self.answered = np.zeros(len(key), bool)

    @classmethod
    def none(cls) -> _Events:
        empty = np.zeros(0, np.int64)
        return cls(empty, empty, empty, empty, empty)

    @classmethod
    def sorted(cls, parts: list[_Events]) -> _Events:
        """All the parts' records, by key."""
        key = np.concatenate([part.key for part in parts])
        order = np.argsort(key, kind="stable")
        fields = [
            np.concatenate([getattr(part, name) for part in parts])[order]
            for name in ("by", "day", "kind", "watch")
        ]
        return cls(key[order], *fields)

    def answer(self, served: _Ints) -> None:
        """Mark the records whose key is among the sorted, distinct `served`."""
        lo = np.searchsorted(self.key, served, side="left")
        hi = np.searchsorted(self.key, served, side="right")
        hit = hi > lo
        edge = np.zeros(len(self.key) + 1, np.int8)  # +1 where a key's run starts, -1 after
        edge[lo[hit]] += 1
        edge[hi[hit]] -= 1
        self.answered |= np.cumsum(edge[:-1], dtype=np.int8) > 0


def _count(keys: _Ints, n: int) -> _Floats:
    return np.bincount(keys, minlength=n).astype(np.float64)


def _grown(values: npt.NDArray[_Code], size: int, fill: int) -> npt.NDArray[_Code]:
    """`values` with room for `size`, the new places holding `fill` (an eighth spare: little
    unused memory, few copies)."""
    if len(values) >= size:
        return values
    grown = np.full(max(size, len(values) + len(values) // 8), fill, values.dtype)
    grown[: len(values)] = values
    return grown
