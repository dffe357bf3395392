"""The co-occurrence component blended into a published model: videos watched together.

LightFM learns vectors by sampled gradient steps; what viewers watched together is also in the
interaction matrix itself, and a closed form reads it with no training at all. With X the
viewers x videos matrix of positive pairs (1 where `domain.model.pair_weight` > 0), the ridge
regression of X on itself, B = (XᵀX + λI)⁻¹ XᵀX (a linear autoencoder: Steck, "Embarrassingly
shallow autoencoders", WWW 2019, without its zero diagonal), is, on X's top `components`
singular directions V with singular values s, B = V diag(s² / (s² + λ)) Vᵀ. A viewer's
co-occurrence score for video j is then (x_u V diag(s² / (s² + λ))) · V_j: the viewer's
positives projected on the directions, shrunk where the data is thin, read back on the video.
λ is `RIDGE` = 500, fixed like EASE's (its paper used 200 to 1,000 on data sets of 136,000 to
571,000 viewers), on the scale of XᵀX's co-occurrence counts.

It is a factor model, so it joins LightFM's in one product: the trainer appends `weight x
scale x` the viewers' part to the user vectors and V to the item vectors, then cuts the whole
to the served width (`adapters.lightfm.rank`). `scale` is the ratio of the two score spreads
over a sample of viewers, so a weight means the same on every model (as the prior's does).
Measured per viewer on MovieLens 100k and planted tastes (LightFM with 3 seeds, 64
components, seed 42, served at 64 wide; `docs/relevance.md`): MovieLens 0.1327 / 0.1829
precision@10 / NDCG@10 alone, 0.1370 / 0.1940 at weight 1; planted 0.1200 / 0.1777 alone,
0.1287 / 0.1912 at weight 0.5. Hard truncation (λ = 0) gained about half as much, λ tied to
the mean positives per video (20 x: 570 on MovieLens, 190 on planted) lost on planted, and 128
directions no more than 64 once cut to the served width. The nightly search picks the weight
(0 is LightFM alone) on its validation rows at no training cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix
from scipy.sparse.linalg import svds

from adapters.lightfm.interactions import InteractionPairs

#: Singular directions kept by default.
COMPONENTS = 64
#: λ, on the scale of XᵀX's counts (measured best of 200, 500, 800 and 1,500 on both data sets).
RIDGE = 500.0
#: Viewers sampled to compare the two score spreads.
_SAMPLE = 256

Floats = npt.NDArray[np.float32]


@dataclass(frozen=True, eq=False)
class CoOccurrence:
    """`users` [n_users, k] = X V diag(s² / (s² + λ)) and `items` [n_items, k] = V, in the
    pairs' order."""

    users: Floats
    items: Floats

    def scores(self, users: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        """The co-occurrence scores of `users` (indices) for every video."""
        return np.asarray(self.users[users] @ self.items.T, dtype=np.float32)


def co_occurrence(
    pairs: InteractionPairs, components: int = COMPONENTS, ridge: float = RIDGE
) -> CoOccurrence:
    """The component of `pairs` (see the module docstring). Fewer directions when the matrix
    is too small for `components` (svds needs k < min(shape)); none (0 wide) without any."""
    shape = (len(pairs.user_ids), len(pairs.item_ids))
    positive = pairs.weights > 0
    k = min(components, min(shape) - 1)
    if k < 1 or not positive.any():
        users, items = np.empty((shape[0], 0), np.float32), np.empty((shape[1], 0), np.float32)
        return CoOccurrence(users, items)
    matrix = csr_matrix(
        (np.ones(int(positive.sum())), (pairs.rows[positive], pairs.cols[positive])), shape=shape
    )
    # ARPACK from a fixed start vector: the same pairs give the same directions.
    start = np.random.default_rng(0).uniform(size=min(shape))
    _, singular, directions = svds(matrix, k=k, v0=start)
    items = np.ascontiguousarray(directions.T, dtype=np.float64)
    users = matrix @ (items * (singular**2 / (singular**2 + ridge)))
    return CoOccurrence(users.astype(np.float32), items.astype(np.float32))


def spread_ratio(
    users: npt.NDArray[np.floating], items: npt.NDArray[np.floating], part: CoOccurrence
) -> float:
    """std(users · items) / std(co-occurrence scores) over a sample of viewers: what makes a
    weight of 1 give the component the model's own spread (1.0 when it has none)."""
    if part.users.shape[1] == 0 or len(users) == 0:
        return 1.0
    sample = np.random.default_rng(0).integers(0, len(users), size=_SAMPLE)
    model = float(np.std(users[sample] @ items.T))
    own = float(np.std(part.scores(sample)))
    return model / own if own > 0 and model > 0 else 1.0
