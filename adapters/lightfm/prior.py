"""The popularity prior blended into a published model's ranking: what is rising now.

`item_prior[j] = scale * log1p(d_j) / max(log1p(d))`, where `d_j` sums video j's positive events
of the training window, each decayed by `0.5 ** (age / half_life)` from the window's end, and
`scale` is the spread (standard deviation) of the model's own scores over a sample of
(viewer, video) pairs, so a prior weight means the same on every model. The trainer multiplies
it by the chosen weight and stores it in the artifact; the scorer adds it to the item-bias row
at load, so ranking stays one product.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from adapters.interaction_columns import TrainingInteractions
from adapters.pair_window import PairWindow

_DAY_MS = 86_400_000
_SAMPLE = 256


def decayed_positives(
    interactions: TrainingInteractions | PairWindow, window_end: datetime, half_life_days: float
) -> tuple[npt.NDArray[np.str_], npt.NDArray[np.float64]]:
    """(video ids that occur, their decayed positive-event counts at `window_end`)."""
    if isinstance(interactions, PairWindow):
        return interactions.decayed_positives(window_end, half_life_days)
    used = np.flatnonzero(
        np.bincount(interactions.video_codes, minlength=len(interactions.video_vocab))
    )
    position = np.full(len(interactions.video_vocab), -1, dtype=np.int64)
    position[used] = np.arange(len(used))
    positive = interactions.weights() > 0
    age_days = (window_end.timestamp() * 1000 - interactions.occurred_at_ms) / _DAY_MS
    decay = np.power(0.5, np.maximum(age_days, 0.0) / half_life_days)
    counts = np.bincount(
        position[interactions.video_codes[positive]], weights=decay[positive], minlength=len(used)
    )
    return interactions.video_vocab[used], np.asarray(counts, dtype=np.float64)


def popularity_prior(
    interactions: TrainingInteractions | PairWindow,
    item_ids: npt.NDArray[np.str_],
    window_end: datetime,
    half_life_days: float,
    arrays: dict[str, Any],
) -> npt.NDArray[np.float32]:
    """The unweighted prior per model item (`item_ids` order; see the module docstring)."""
    videos, counts = decayed_positives(interactions, window_end, half_life_days)
    by_id = dict(zip(videos.tolist(), np.log1p(counts).tolist(), strict=True))
    raw = np.array([by_id.get(item, 0.0) for item in item_ids.tolist()], dtype=np.float64)
    if raw.size == 0 or raw.max() <= 0:
        return np.zeros(len(item_ids), dtype=np.float32)
    users, items = arrays["user_embeddings"], arrays["item_embeddings"]
    rng = np.random.default_rng(0)
    sample_u = rng.integers(0, len(users), size=_SAMPLE)
    scores = users[sample_u] @ items.T + arrays["item_biases"]
    scale = float(np.std(scores)) or 1.0
    return np.asarray(scale * raw / raw.max(), dtype=np.float32)
