"""A training window too large to hold as events: most of it reduced to weighted (user, video)
pairs while it is read, the newest rows kept as events.

`PairWindowBuilder` takes the window a part at a time (a day of the export, say) as
`TrainingInteractions` and keeps, per distinct pair, only its summed event weight: about 16
bytes a pair instead of ~40 bytes and two id strings an event. Ids get compact integer codes
from one vocabulary that grows as parts arrive. Rows at or after `aggregate_before` stay events:
the nightly job evaluates and validates on them, which needs them one by one.

What the rows would give is kept exactly: `domain.model.pair_weight` (sum, capped at
`PAIR_WEIGHT_CAP`, 0 when hidden) and the popularity prior's decayed counts (exponential decay
factorises, so counts decayed to `aggregate_before` rescale to any later window end).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from adapters.interaction_columns import INTERACTION_TYPES, TrainingInteractions
from domain.interactions import InteractionType
from domain.model import PAIR_WEIGHT_CAP

_HIDE = INTERACTION_TYPES.index(InteractionType.HIDE)
_DAY_MS = 86_400_000
_LOW = np.int64(0xFFFFFFFF)
#: Pending parts are merged into the sorted pairs once they hold a quarter as many: a merge
#: sorts a few sorted runs (near linear), and the transient copies stay ~1.25x the pairs.
_MERGE_SHARE = 4
_MIN_MERGE = 2_000_000


def pair_keys(users: npt.NDArray[np.int32], videos: npt.NDArray[np.int32]) -> npt.NDArray[np.int64]:
    """One int64 per (user code, video code), ordered by user then video."""
    return (users.astype(np.int64) << 32) | videos.astype(np.int64)


def split_keys(keys: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]:
    return (keys >> 32).astype(np.int32), (keys & _LOW).astype(np.int32)


def event_sums(rows: TrainingInteractions) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """(sorted distinct pair keys, summed event weights, capped; -inf for a pair with a hide)."""
    return _sums(pair_keys(rows.user_codes, rows.video_codes), rows.weights(), rows.type_codes)


def _sums(
    keys: npt.NDArray[np.int64], weights: npt.NDArray[np.float32], types: npt.NDArray[np.int8]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    distinct, inverse = np.unique(keys, return_inverse=True)
    sums = np.bincount(inverse, weights=weights, minlength=len(distinct))
    hidden = np.bincount(inverse, weights=types == _HIDE, minlength=len(distinct)) > 0
    return distinct, np.where(hidden, -np.inf, np.minimum(sums, PAIR_WEIGHT_CAP))


def merge_sums(
    parts: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Sorted (keys, sums) parts -> one: sums of a key added (-inf absorbs: hidden stays hidden),
    capped at PAIR_WEIGHT_CAP (weights are never negative, so capping early changes nothing)."""
    keys = np.concatenate([part[0] for part in parts])
    order = np.argsort(keys, kind="stable")  # timsort: the parts are sorted runs
    keys = keys[order]
    sums = np.concatenate([part[1] for part in parts])[order]
    del order
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    return keys[starts], np.minimum(np.add.reduceat(sums, starts), PAIR_WEIGHT_CAP)


@dataclass(frozen=True, eq=False)
class PairWindow:
    """The events of [window start, `aggregate_before`) as pairs, those after it as `rows`.

    Pair p is user `rows.user_vocab[keys[p] >> 32]` and video `rows.video_vocab[keys[p] &
    0xFFFFFFFF]` (`split_keys`), keys ascending, its events' summed weight `sums[p]` (capped;
    -inf when one of them hid the video). `decayed[j]` sums video code j's positive aggregated
    events decayed by `0.5 ** (age / half_life_days)` to `aggregate_before`.
    """

    keys: npt.NDArray[np.int64]
    sums: npt.NDArray[np.float64]
    decayed: npt.NDArray[np.float64]
    aggregated_events: int
    aggregate_before_ms: int
    half_life_days: float
    rows: TrainingInteractions

    def __len__(self) -> int:
        return self.aggregated_events + len(self.rows)

    def with_rows(self, rows: TrainingInteractions) -> PairWindow:
        """The same pairs with other event rows (sharing the vocabularies)."""
        return replace(self, rows=rows)

    def sample_users(self, share: float, seed: int = 0) -> PairWindow:
        """The pairs and rows of a seeded random `share` of the users (the search's trials on a
        window too large to try configurations on whole)."""
        chosen = np.random.default_rng(seed).random(len(self.rows.user_vocab)) < share
        kept = chosen[self.keys >> 32]
        return replace(
            self,
            keys=self.keys[kept],
            sums=self.sums[kept],
            aggregated_events=round(self.aggregated_events * share),
            rows=self.rows.take(chosen[self.rows.user_codes]),
        )

    def pair_sums(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """The pairs and the rows together: sorted keys and their capped sums (-inf: hidden)."""
        if len(self.rows) == 0:
            return self.keys, self.sums
        return merge_sums([(self.keys, self.sums), event_sums(self.rows)])

    def decayed_positives(
        self, window_end: datetime, half_life_days: float
    ) -> tuple[npt.NDArray[np.str_], npt.NDArray[np.float64]]:
        """As `adapters.lightfm.prior.decayed_positives` of all the window's events: (video ids
        that occur, their decayed positive-event counts at `window_end`)."""
        if half_life_days != self.half_life_days:
            raise ValueError(
                f"the window was aggregated with a half-life of {self.half_life_days} days, "
                f"not {half_life_days}"
            )
        end_ms = window_end.timestamp() * 1000
        vocab = self.rows.video_vocab
        counts = np.zeros(len(vocab), dtype=np.float64)
        age = max(end_ms - self.aggregate_before_ms, 0.0) / _DAY_MS
        counts[: len(self.decayed)] = self.decayed * 0.5 ** (age / half_life_days)
        occurs = np.zeros(len(vocab), dtype=bool)
        occurs[split_keys(self.keys)[1]] = True
        rows = self.rows
        occurs[rows.video_codes] = True
        positive = rows.weights() > 0
        ages = np.maximum(end_ms - rows.occurred_at_ms[positive], 0.0) / _DAY_MS
        counts += np.bincount(
            rows.video_codes[positive], weights=0.5 ** (ages / half_life_days), minlength=len(vocab)
        )
        used = np.flatnonzero(occurs)
        return vocab[used], counts[used]


class PairWindowBuilder:
    """Builds a `PairWindow` from parts given in any order (each part's own vocabularies)."""

    def __init__(self, aggregate_before: datetime, half_life_days: float) -> None:
        self._before_ms = int(aggregate_before.timestamp() * 1000)
        self._half_life_days = half_life_days
        self._users = _Vocabulary()
        self._videos = _Vocabulary()
        self._pairs: tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]] = (
            np.empty(0, np.int64),
            np.empty(0, np.float64),
        )
        self._pending: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = []
        self._pending_size = 0
        self._decayed = np.zeros(0, dtype=np.float64)
        self._events = 0
        # Rows at or after `aggregate_before`: (users, videos, types, watch ms, moment ms).
        self._recent: list[tuple[npt.NDArray[Any], ...]] = []

    def add(self, part: TrainingInteractions) -> None:
        """Take a part's events: those before `aggregate_before` as pairs, the rest as rows."""
        users = self._users.codes(part.user_vocab)[part.user_codes]
        videos = self._videos.codes(part.video_vocab)[part.video_codes]
        old = part.occurred_at_ms < self._before_ms
        if not old.all():
            new = ~old
            self._recent.append(
                (
                    users[new],
                    videos[new],
                    part.type_codes[new],
                    part.watch_time_ms[new],
                    part.occurred_at_ms[new],
                )
            )
        if not old.any():
            return
        weights = part.weights()[old]
        users, videos = users[old], videos[old]
        summed = _sums(pair_keys(users, videos), weights, part.type_codes[old])
        self._pending.append(summed)
        self._pending_size += len(summed[0])
        self._events += len(users)
        positive = weights > 0
        ages = (self._before_ms - part.occurred_at_ms[old][positive]) / _DAY_MS
        decay = np.bincount(
            videos[positive],
            weights=0.5 ** (ages / self._half_life_days),
            minlength=len(self._videos),
        )
        self._decayed = np.pad(self._decayed, (0, len(decay) - len(self._decayed))) + decay
        if self._pending_size * _MERGE_SHARE >= max(len(self._pairs[0]), _MIN_MERGE):
            self._merge()

    def build(self) -> PairWindow:
        """The window so far (call once, after the last part)."""
        self._merge()
        user_vocab, video_vocab = self._users.array(), self._videos.array()
        columns = [np.concatenate(parts) for parts in zip(*self._recent, strict=True)]
        if not columns:
            columns = [np.empty(0, np.int64)] * 5
        rows = TrainingInteractions(
            user_vocab, columns[0], video_vocab, columns[1], columns[2], columns[3], columns[4]
        )
        decayed = np.pad(self._decayed, (0, len(video_vocab) - len(self._decayed)))
        return PairWindow(
            *self._pairs, decayed, self._events, self._before_ms, self._half_life_days, rows
        )

    def _merge(self) -> None:
        if self._pending:
            self._pairs = merge_sums([self._pairs, *self._pending])
            self._pending, self._pending_size = [], 0


class _Vocabulary:
    """Ids in order of first appearance; an id's code is its position."""

    def __init__(self) -> None:
        self._ids = pa.array([], pa.string())

    def __len__(self) -> int:
        return len(self._ids)

    def codes(self, ids: npt.NDArray[np.str_]) -> npt.NDArray[np.int32]:
        """The code of each of `ids` (distinct), adding those not seen before."""
        given = pa.array(ids, pa.string())
        found = pc.index_in(given, value_set=self._ids)
        missing = found.is_null()
        if pc.any(missing).as_py():
            new = given.filter(missing)
            added = pc.add(pc.cumulative_sum(pc.cast(missing, pa.int64())), len(self._ids) - 1)
            found = pc.coalesce(pc.cast(found, pa.int64()), added)
            self._ids = pa.concat_arrays([self._ids, new])
        codes: npt.NDArray[np.int32] = found.to_numpy(zero_copy_only=False).astype(np.int32)
        return codes

    def array(self) -> npt.NDArray[np.str_]:
        return np.asarray(self._ids.to_numpy(zero_copy_only=False), dtype=np.str_)
