"""Interactions (`adapters.interaction_columns.TrainingInteractions`, re-exported here) reduced
to weighted (user, video) pairs, the LightFM model's training matrix."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from adapters.interaction_columns import INTERACTION_TYPES, TrainingInteractions
from adapters.pair_window import PairWindow, split_keys
from domain.interactions import InteractionType
from domain.model import PAIR_WEIGHT_CAP

__all__ = [
    "INTERACTION_TYPES",
    "InteractionPairs",
    "PairWindow",
    "TrainingInteractions",
    "aggregate_pairs",
]

_HIDE = INTERACTION_TYPES.index(InteractionType.HIDE)


@dataclass(frozen=True, eq=False)
class InteractionPairs:
    """Distinct (user, video) pairs of some interactions, sorted by user then video.

    Pair p is user `user_ids[rows[p]]` and video `item_ids[cols[p]]` with training weight
    `weights[p]` (`domain.model.pair_weight`; 0 means seen but not a positive). `user_ids` and
    `item_ids` hold exactly the ids that occur, in vocabulary order.
    """

    user_ids: npt.NDArray[np.str_]
    item_ids: npt.NDArray[np.str_]
    rows: npt.NDArray[np.int32]
    cols: npt.NDArray[np.int32]
    weights: npt.NDArray[np.float32]

    def indptr(self) -> npt.NDArray[np.int64]:
        """CSR row pointer over `cols`: user i's pairs are `cols[indptr[i]:indptr[i + 1]]`."""
        counts = np.bincount(self.rows, minlength=len(self.user_ids))
        return np.concatenate(([0], np.cumsum(counts))).astype(np.int64)


def aggregate_pairs(interactions: TrainingInteractions | PairWindow) -> InteractionPairs:
    """Group events by (user, video) and weigh each pair by `domain.model.pair_weight`."""
    if isinstance(interactions, PairWindow):
        return _window_pairs(interactions)
    used_users, user_index = _compact(interactions.user_codes, len(interactions.user_vocab))
    used_items, item_index = _compact(interactions.video_codes, len(interactions.video_vocab))
    n_items = max(len(used_items), 1)
    keys = user_index.astype(np.int64) * n_items + item_index
    pair_keys, pair_of_row = np.unique(keys, return_inverse=True)
    total = np.bincount(pair_of_row, weights=interactions.weights(), minlength=len(pair_keys))
    hides = np.bincount(
        pair_of_row, weights=interactions.type_codes == _HIDE, minlength=len(pair_keys)
    )
    weights = np.where(hides > 0, 0.0, np.minimum(total, PAIR_WEIGHT_CAP))
    return InteractionPairs(
        user_ids=interactions.user_vocab[used_users],
        item_ids=interactions.video_vocab[used_items],
        rows=(pair_keys // n_items).astype(np.int32),
        cols=(pair_keys % n_items).astype(np.int32),
        weights=weights.astype(np.float32),
    )


def _window_pairs(window: PairWindow) -> InteractionPairs:
    """A window's pairs and rows as one set of pairs; the same weights its events would give."""
    keys, sums = window.pair_sums()
    users, videos = split_keys(keys)
    del keys
    used_users, user_index = _compact(users, len(window.rows.user_vocab))
    used_items, item_index = _compact(videos, len(window.rows.video_vocab))
    # Keys were sorted by (user code, video code) and compacting keeps code order: still sorted.
    return InteractionPairs(
        user_ids=window.rows.user_vocab[used_users],
        item_ids=window.rows.video_vocab[used_items],
        rows=user_index,
        cols=item_index,
        weights=np.where(np.isneginf(sums), 0.0, sums).astype(np.float32),
    )


def _compact(
    codes: npt.NDArray[np.int32], vocab_size: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int32]]:
    """(vocabulary codes that occur, ascending; each row's position among them): a bincount
    instead of a sort, since codes are small integers."""
    used = np.flatnonzero(np.bincount(codes, minlength=vocab_size))
    position = np.full(vocab_size, -1, dtype=np.int32)
    position[used] = np.arange(len(used), dtype=np.int32)
    return used, position[codes]
