"""Training a pure collaborative (ids only, no side features) LightFM model into an artifact."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from lightfm import LightFM
from scipy.sparse import coo_matrix

from adapters.lightfm.artifact import ModelArtifact
from adapters.lightfm.evaluation import evaluate, popularity_scores
from adapters.lightfm.interactions import TrainingInteractions, aggregate_pairs
from domain.model import ModelInfo, new_model_version

__all__ = ["FittedModel", "LightFMTrainer", "TrainingInteractions", "evaluate", "popularity_scores"]

#: Losses that honour per-interaction weights (LightFM's k-OS WARP does not).
LOSSES = ("warp", "bpr", "logistic")
#: Names the weighting rule in the model's params, so a change of rule shows in every artifact.
WEIGHT_RULE = "domain.model.interaction_weight/v1"


@dataclass(frozen=True, eq=False)
class FittedModel:
    """The artifact and the LightFM object it was taken from (for checks against LightFM)."""

    artifact: ModelArtifact
    lightfm: Any


class LightFMTrainer:
    """Trains LightFM on weighted (user, video) pairs: every pair a user interacted with is a
    row/column of the model; pairs whose `domain.model.pair_weight` is above 0 are positives,
    weighted by it.

    With a given `seed`, the same interactions give the same artifact, byte for byte. That
    holds for `num_threads=1` only, hence the default: with more threads LightFM updates shared
    item vectors lock-free (Hogwild) in a scheduling-dependent order, so models vary slightly
    from run to run (and, measured on 2 shared cores, trained no faster).
    """

    def __init__(
        self,
        *,
        loss: str = "warp",
        no_components: int = 64,
        epochs: int = 30,
        learning_rate: float = 0.05,
        item_alpha: float = 0.0,
        user_alpha: float = 0.0,
        num_threads: int = 1,
        seed: int = 42,
        max_sampled: int = 10,
    ) -> None:
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}")
        if no_components < 1 or epochs < 1 or num_threads < 1 or max_sampled < 1:
            raise ValueError("no_components, epochs, num_threads and max_sampled must be >= 1")
        if learning_rate <= 0 or item_alpha < 0 or user_alpha < 0:
            raise ValueError("learning_rate must be positive and the alphas not negative")
        self.loss = loss
        self.no_components = no_components
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.item_alpha = item_alpha
        self.user_alpha = user_alpha
        self.num_threads = num_threads
        self.seed = seed
        self.max_sampled = max_sampled

    def params(self) -> dict[str, str]:
        """The hyper-parameters as recorded in `ModelInfo.params`."""
        return {
            "loss": self.loss,
            "no_components": str(self.no_components),
            "epochs": str(self.epochs),
            "learning_rate": repr(self.learning_rate),
            "item_alpha": repr(self.item_alpha),
            "user_alpha": repr(self.user_alpha),
            "max_sampled": str(self.max_sampled),
            "num_threads": str(self.num_threads),
            "seed": str(self.seed),
            "weight_rule": WEIGHT_RULE,
        }

    def train(
        self,
        interactions: TrainingInteractions,
        window_start: datetime,
        window_end: datetime,
        trained_at: datetime,
    ) -> ModelArtifact:
        """A model of `interactions` (events from [window_start, window_end)), versioned by
        `trained_at` and a fingerprint of its parameters. `metrics` is left None: evaluation
        needs held-out data, see `evaluate`. Raises ValueError when there is no positive pair."""
        return self.fit(interactions, window_start, window_end, trained_at).artifact

    def fit(
        self,
        interactions: TrainingInteractions,
        window_start: datetime,
        window_end: datetime,
        trained_at: datetime,
    ) -> FittedModel:
        """`train`, also returning the fitted `lightfm.LightFM`."""
        pairs = aggregate_pairs(interactions)
        positive = pairs.weights > 0
        if not positive.any():
            raise ValueError("no positive interactions to train on")
        shape = (len(pairs.user_ids), len(pairs.item_ids))
        rows, cols = pairs.rows[positive], pairs.cols[positive]
        # LightFM requires the weights to share the interactions' row and col arrays exactly.
        matrix = coo_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=shape)
        weights = coo_matrix((pairs.weights[positive], (rows, cols)), shape=shape)
        model = LightFM(
            no_components=self.no_components,
            learning_rate=self.learning_rate,
            loss=self.loss,
            item_alpha=self.item_alpha,
            user_alpha=self.user_alpha,
            max_sampled=self.max_sampled,
            random_state=np.random.RandomState(self.seed),
        )
        model.fit(matrix, sample_weight=weights, epochs=self.epochs, num_threads=self.num_threads)
        user_ids: list[str] = pairs.user_ids.tolist()
        item_ids: list[str] = pairs.item_ids.tolist()
        arrays = {
            "user_embeddings": np.asarray(model.user_embeddings, dtype=np.float32),
            "user_biases": np.asarray(model.user_biases, dtype=np.float32),
            "item_embeddings": np.asarray(model.item_embeddings, dtype=np.float32),
            "item_biases": np.asarray(model.item_biases, dtype=np.float32),
        }
        if not all(np.isfinite(array).all() for array in arrays.values()):
            raise ValueError("training diverged (non-finite parameters); lower the learning rate")
        info = ModelInfo(
            version=new_model_version(trained_at, _fingerprint(user_ids, item_ids, arrays)),
            trained_at=trained_at,
            window_start=window_start,
            window_end=window_end,
            n_users=shape[0],
            n_items=shape[1],
            n_interactions=len(interactions),
            metrics=None,
            params=self.params(),
        )
        artifact = ModelArtifact(
            info=info,
            user_ids=user_ids,
            item_ids=item_ids,
            seen_indptr=pairs.indptr(),
            seen_indices=pairs.cols,
            **arrays,
        )
        return FittedModel(artifact, model)


def _fingerprint(user_ids: list[str], item_ids: list[str], arrays: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    for ids in (user_ids, item_ids):
        digest.update("\n".join(ids).encode())
        digest.update(b"\0")
    for name in sorted(arrays):
        digest.update(np.ascontiguousarray(arrays[name]).tobytes())
    return digest.hexdigest()
