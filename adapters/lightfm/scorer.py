"""Ranking the catalogue for one user with a loaded model, without `LightFM.predict`.

The hot path is one float32 vector-matrix product over a contiguous [k + 1, n_items] matrix
(the item bias folded in as the last row, the user vector carrying 1.0 there), then
`np.argpartition` and a sort of the top slice only. Exclusions overwrite just the excluded
scores, so a call costs one pass over the item matrix plus O(n_items) for the selection.

Real-time personalisation (fold-in). Positives newer than the training window are folded
into the viewer's vector before that product, by the implicit-ALS fold-in (Hu, Koren &
Volinsky 2008): `fold = (G + sum (c_i - 1) v_i v_i^T + lambda I)^-1 sum c_i v_i` with the Gram
`G = V^T V` precomputed at load, `c_i = 1 + 10 w_i`, `lambda = 10 trace(G) / k`, rescaled to the
median norm of the learned user vectors (so it weighs against the item biases like a learned
viewer). A known viewer is blended, `u = (1 - b) u_learned + b fold` with
`b = n / (n + FOLD_IN_PRIOR)` for n fresh positives; an unknown viewer is `fold` alone (user
bias 0). Measured on planted tastes (1,000 users, 5,000 videos, 200,000 events, 64 components;
`bench/foldin.py`): folding a known viewer's own training positives shares 74.5% of the learned
vector's top-10 (chance 0.2%; the weighted mean of the v_i: 72.4%); a new viewer's first like
gives precision@10 0.60 on their later positives (mean 0.60, popularity 0.28). A smaller ridge
agrees more with the learned vectors (75.9%) but over-fits a few positives (precision 0.54).
`docs/realtime.md` has the comparison and the blend's measurements.

Large catalogues (an artifact carrying `ann_index`): the scoring vector, folded or learned, is
the query of an approximate inner-product index (`adapters.lightfm.ann`) that proposes
candidates for `limit + excluded` (about four times as many from its 4-bit codes); those are
scored exactly as above and the exclusions dropped.
Should fewer than `limit` survive, the call falls back to the exact scan, so the answer is
never shorter than the exact path's.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from adapters.lightfm.ann import CandidateIndex
from adapters.lightfm.artifact import ModelArtifact
from domain.model import ModelInfo

#: N0 of the blend `b = n / (n + N0)`: a known viewer's fresh positives outweigh the learned
#: vector from the sixth on. Measured: the best held-out precision of 0, 2, 3, 5, 10 and the
#: learned vector alone (tied with 3), while ten likes of another taste still turn 96% of the
#: top-10 to it.
FOLD_IN_PRIOR = 5.0

#: The implicit-ALS fold-in's confidence slope (c = 1 + alpha * weight) and its ridge, relative to
#: the mean squared item norm trace(V^T V) / k. Of alpha 1, 10 and ridge 0.1, 1, 10, 100
#: (`bench/foldin.py`), (10, 10) agreed more with the learned vectors than the weighted mean at
#: the same precision; a smaller ridge agreed more still but over-fitted a few positives.
FOLD_IN_ALPHA = 10.0
FOLD_IN_RIDGE = 10.0

#: A recent positive as (video id, weight > 0, when it happened: timezone-aware).
RecentPositive = tuple[str, float, datetime]


@dataclass(frozen=True)
class Ranking:
    """(video id, score) best first, and whether fresh positives were folded in (`realtime`)."""

    items: list[tuple[str, float]]
    realtime: bool


class UnknownUser(Exception):
    """The model has no representation of this user (a cold start)."""

    def __init__(self, user_id: str) -> None:
        super().__init__(f"user {user_id!r} is not known to the model")
        self.user_id = user_id


class LoadedModel:
    """An immutable, thread-safe scorer for one model version."""

    def __init__(self, artifact: ModelArtifact) -> None:
        self.info: ModelInfo = artifact.info
        k = artifact.no_components
        n_items = len(artifact.item_ids)
        if artifact.ann_index is None:
            # Items as columns: `user @ items` then streams each row once, front to back,
            # which BLAS does at memory bandwidth; the [n_items, k + 1] layout measured 1.5x
            # slower.
            items = np.empty((k + 1, n_items), dtype=np.float32)
            items[:k, :] = artifact.item_embeddings.T
            # The popularity prior is folded into the bias row: ranking stays one product.
            items[k, :] = artifact.ranking_biases
        else:
            # With an index a call scores ~1,000 candidates, not the catalogue: stored as rows
            # (seen through a [k + 1, n_items] view), a candidate is one contiguous read, and
            # gathering 2,280 of 10M took 0.32 ms against 2.2 ms from 65 strided columns.
            rows = np.empty((n_items, k + 1), dtype=np.float32)
            rows[:, :k] = artifact.item_embeddings
            rows[:, k] = artifact.ranking_biases
            items = rows.T
        users = np.empty((len(artifact.user_ids), k + 1), dtype=np.float32)
        users[:, :k] = artifact.user_embeddings
        users[:, k] = 1.0
        if not (np.isfinite(items).all() and np.isfinite(users).all()):
            raise ValueError(f"model {artifact.info.version} has non-finite parameters")
        for array in (items, users):
            array.flags.writeable = False
        self._items = items
        self._users = users
        # The user bias shifts all of a user's scores equally: it is added to the returned
        # scores (so they equal LightFM's) but plays no part in the ranking.
        self._user_biases = artifact.user_biases.astype(np.float64)
        self._k = k
        # The scale a folded vector is brought to; 1.0 only for a model without users.
        norms = np.linalg.norm(artifact.user_embeddings, axis=1)
        self._fold_norm = float(np.median(norms)) if norms.size else 1.0
        # G + ridge I of the fold-in, once per model: a request adds only its positives' terms.
        gram = (items[:k] @ items[:k].T).astype(np.float64)
        ridge = FOLD_IN_RIDGE * max(float(np.trace(gram)) / k, 1e-12)
        self._fold_base = gram + ridge * np.eye(k)
        self._fold_base.flags.writeable = False
        self._seen_indptr = artifact.seen_indptr
        self._seen_indices = artifact.seen_indices
        self._item_ids = list(artifact.item_ids)
        self._item_index = {item_id: index for index, item_id in enumerate(artifact.item_ids)}
        self._user_index = {user_id: index for index, user_id in enumerate(artifact.user_ids)}
        self._ann = (
            CandidateIndex(artifact.ann_index, len(artifact.item_ids), k + 1)
            if artifact.ann_index is not None
            else None
        )

    @classmethod
    def from_artifact(cls, artifact: ModelArtifact) -> LoadedModel:
        return cls(artifact)

    @property
    def n_users(self) -> int:
        return len(self._user_index)

    @property
    def n_items(self) -> int:
        return len(self._item_ids)

    def has_user(self, user_id: str) -> bool:
        return user_id in self._user_index

    def known_videos(self, video_ids: Sequence[str]) -> list[str]:
        """Those of `video_ids` in the model's catalogue, in the given order."""
        return [video_id for video_id in video_ids if video_id in self._item_index]

    @property
    def approximate(self) -> bool:
        """Does ranking retrieve candidates from an approximate index (then score exactly)?"""
        return self._ann is not None

    def score_matrix_bytes(self) -> int:
        """Bytes of the item matrix one ranking call streams through (the bandwidth floor)."""
        return int(self._items.nbytes)

    def rank(
        self,
        user_id: str,
        limit: int,
        exclude: Collection[str] = (),
        recent: Sequence[RecentPositive] = (),
    ) -> Ranking:
        """The user's best `limit` videos as (video id, score), best first.

        Leaves out the videos the user interacted with in training, those in `exclude` and the
        fresh positives' (unknown video ids are ignored). Fresh positives are the `recent` ones
        at or after the model's `window_end`, or all of them for a user the model does not know,
        on videos the model knows; the first of a video counts (`recent` is newest first). With
        none, the scores equal LightFM's `predict` up to float rounding. Scores never increase
        along the list; equal scores keep catalogue order. Returns fewer than `limit` items when
        the catalogue runs out. Raises UnknownUser for an unknown user without a fresh positive
        and ValueError for a weight that is not finite and > 0.
        """
        user = self._user_index.get(user_id)
        fresh, weights = self._fresh(recent, every=user is None) if recent else ((), ())
        if user is None and not fresh:
            raise UnknownUser(user_id)
        if limit <= 0:
            return Ranking([], realtime=bool(fresh))
        if fresh:
            vector, bias = self._folded(user, np.asarray(fresh), np.asarray(weights))
        else:
            assert user is not None
            vector, bias = self._users[user], float(self._user_biases[user])
        excluded = _sorted_unique(self._excluded(user, exclude, fresh))
        fetch = min(limit, self.n_items - excluded.size)
        if fetch <= 0:
            return Ranking([], realtime=bool(fresh))
        found = self._approximate_top(vector, excluded, fetch) if self._ann else None
        if found is None:
            scores = vector @ self._items  # a fresh array: safe to overwrite
            scores[excluded] = -np.inf
            top = _top_indices(scores, fetch)
            found = top, scores[top]
        items = [
            (self._item_ids[i], float(score) + bias)
            for i, score in zip(found[0].tolist(), found[1].tolist(), strict=True)
        ]
        return Ranking(items, realtime=bool(fresh))

    def _approximate_top(
        self, vector: npt.NDArray[np.float32], excluded: npt.NDArray[np.int64], fetch: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]] | None:
        """The best `fetch` of the index's candidates with their exact scores, best first (ties
        in catalogue order), or None when too few candidates survive the exclusions."""
        assert self._ann is not None
        # Over-fetch by every exclusion: then enough candidates survive whichever of them the
        # index returns.
        candidates = self._ann.candidates(vector, fetch, excluded.size)
        candidates = np.sort(candidates[~np.isin(candidates, excluded, assume_unique=True)])
        if candidates.size < fetch:
            return None
        scores = vector @ self._items[:, candidates]
        top = _top_indices(scores, fetch)
        return candidates[top], scores[top]

    def _fresh(
        self, recent: Sequence[RecentPositive], every: bool
    ) -> tuple[list[int], list[float]]:
        """Item indices and weights of the positives that move the ranking, one per video."""
        since = self.info.window_end
        indices: list[int] = []
        weights: list[float] = []
        taken: set[int] = set()
        for video_id, weight, occurred_at in recent:
            if not (math.isfinite(weight) and weight > 0):
                raise ValueError(f"weight of {video_id!r} must be finite and > 0, got {weight}")
            index = self._item_index.get(video_id)
            if index is not None and (every or occurred_at >= since) and index not in taken:
                taken.add(index)
                indices.append(index)
                weights.append(weight)
        return indices, weights

    def _folded(
        self, user: int | None, fresh: npt.NDArray[np.int64], weights: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float32], float]:
        """The [k + 1] scoring vector with the fresh positives folded in, and the user bias."""
        k = self._k
        positives = self._items[:k, fresh].astype(np.float64)  # [k, n]
        confidence = 1.0 + FOLD_IN_ALPHA * weights
        gram = self._fold_base + (positives * (confidence - 1.0)) @ positives.T
        folded = np.linalg.solve(gram, positives @ confidence)
        norm = float(np.linalg.norm(folded))
        if norm > 0:  # zero only for all-zero item vectors: rank by item bias then
            folded *= self._fold_norm / norm
        vector = np.ones(k + 1, dtype=np.float32)
        if user is None:
            vector[:k] = folded
            return vector, 0.0
        share = len(fresh) / (len(fresh) + FOLD_IN_PRIOR)
        vector[:k] = (1.0 - share) * self._users[user, :k] + share * folded
        return vector, float(self._user_biases[user])

    def _excluded(
        self, user: int | None, exclude: Collection[str], fresh: Sequence[int]
    ) -> npt.NDArray[np.int64]:
        seen = (
            self._seen_indices[self._seen_indptr[user] : self._seen_indptr[user + 1]]
            if user is not None
            else np.empty(0, dtype=np.int32)
        )
        # One lookup per id (a feed sends its seen and recently served videos: a hundred).
        position = self._item_index.get
        requested = [i for i in map(position, exclude) if i is not None]
        requested.extend(fresh)
        return np.concatenate((seen, np.asarray(requested, dtype=np.int64)), dtype=np.int64)


def _sorted_unique(values: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """`np.unique(values)` for a few hundred values in a tenth of its time (it hashes)."""
    ordered = np.sort(values)
    if ordered.size < 2:
        return ordered
    keep = np.empty(ordered.size, dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def _top_indices(scores: npt.NDArray[np.float32], fetch: int) -> npt.NDArray[np.intp]:
    """Indices of the `fetch` highest scores, by score descending then index ascending."""
    n = scores.size
    if fetch < n:
        candidates = np.argpartition(scores, n - fetch)[n - fetch :]
        threshold = scores[candidates].min()
        # argpartition picks arbitrarily among scores equal to the threshold; widening to all
        # of them makes the cut depend on the index order, not on the selection algorithm.
        if np.count_nonzero(scores >= threshold) > fetch:
            candidates = np.flatnonzero(scores >= threshold)
    else:
        candidates = np.arange(n)
    order = np.lexsort((candidates, -scores[candidates]))[:fetch]
    return candidates[order]
