"""Training a pure collaborative (ids only, no side features) LightFM model into an artifact."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from lightfm import LightFM
from scipy.sparse import coo_matrix

from adapters.lightfm.artifact import ModelArtifact
from adapters.lightfm.evaluation import evaluate, popularity_scores
from adapters.lightfm.interactions import (
    InteractionPairs,
    PairWindow,
    TrainingInteractions,
    aggregate_pairs,
)
from adapters.lightfm.neighbours import COMPONENTS, CoOccurrence, co_occurrence, spread_ratio
from adapters.lightfm.prior import popularity_prior
from adapters.lightfm.rank import best_rank
from domain.model import ModelInfo, new_model_version

__all__ = ["FittedModel", "LightFMTrainer", "TrainingInteractions", "evaluate", "popularity_scores"]

#: LightFM's losses. k-OS WARP (`warp-kos`) takes no per-interaction weights: it trains on the
#: positives alone.
LOSSES = ("warp", "bpr", "logistic", "warp-kos")
#: How a positive pair's `domain.model.pair_weight` reaches WARP/BPR: as the sample weight
#: (`graded`) or as 1.0 (`binary`). A weight of 3 makes WARP's step three times larger; on the
#: planted demo data the two measured within noise (p@10 0.0273 vs 0.0269, 3 seeds each), so
#: the nightly search decides.
WEIGHTINGS = ("graded", "binary")
SCHEDULES = ("adagrad", "adadelta")
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
        weighting: str = "graded",
        learning_schedule: str = "adagrad",
        seeds: int = 1,
        prior_weight: float = 0.0,
        prior_half_life_days: float = 7.0,
        serve_components: int | None = None,
        neighbour_weight: float = 0.0,
        neighbour_components: int = COMPONENTS,
    ) -> None:
        if loss not in LOSSES or weighting not in WEIGHTINGS or learning_schedule not in SCHEDULES:
            raise ValueError(
                f"loss must be one of {LOSSES}, weighting of {WEIGHTINGS}, "
                f"learning_schedule of {SCHEDULES}"
            )
        if min(no_components, epochs, num_threads, max_sampled, seeds) < 1:
            raise ValueError("no_components, epochs, num_threads, max_sampled, seeds must be >= 1")
        if prior_weight < 0 or prior_half_life_days <= 0 or neighbour_weight < 0:
            raise ValueError(
                "prior_weight and neighbour_weight must not be negative, the half-life must be"
                " positive"
            )
        if neighbour_components < 1:
            raise ValueError("neighbour_components must be >= 1")
        if learning_rate <= 0 or item_alpha < 0 or user_alpha < 0:
            raise ValueError("learning_rate must be positive and the alphas not negative")
        if serve_components is not None and serve_components < 0:
            raise ValueError("serve_components must not be negative (0: the full width)")
        self.loss = loss
        self.no_components = no_components
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.item_alpha = item_alpha
        self.user_alpha = user_alpha
        self.num_threads = num_threads
        self.seed = seed
        self.max_sampled = max_sampled
        self.weighting = weighting
        self.learning_schedule = learning_schedule
        self.seeds = seeds
        self.prior_weight = prior_weight
        self.prior_half_life_days = prior_half_life_days
        #: The published vectors' width (None: `no_components`; 0: seeds x components).
        self.serve_components = serve_components
        #: The co-occurrence component's weight (0: LightFM alone) and directions
        #: (`adapters.lightfm.neighbours`).
        self.neighbour_weight = neighbour_weight
        self.neighbour_components = neighbour_components

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
            "weighting": self.weighting,
            "learning_schedule": self.learning_schedule,
            "seeds": str(self.seeds),
            "prior_weight": repr(self.prior_weight),
            "prior_half_life_days": repr(self.prior_half_life_days),
            "serve_components": str(self.served_width),
            "neighbour_weight": repr(self.neighbour_weight),
            "neighbour_components": str(self.neighbour_components),
        }

    @property
    def served_width(self) -> int:
        """The most columns the published vectors have (0: no bound)."""
        return self.no_components if self.serve_components is None else self.serve_components

    def with_params(self, **changes: Any) -> LightFMTrainer:
        """A trainer with some hyper-parameters changed (the search's trials)."""
        current = {name: getattr(self, name) for name in _PARAMS}
        current.update(changes)
        return LightFMTrainer(**current)

    def train(
        self,
        interactions: TrainingInteractions | PairWindow,
        window_start: datetime,
        window_end: datetime,
        trained_at: datetime,
        *,
        budget_s: float | None = None,
    ) -> ModelArtifact:
        """A model of `interactions` (events from [window_start, window_end)), versioned by
        `trained_at` and a fingerprint of its parameters. `metrics` is left None: evaluation
        needs held-out data, see `evaluate`. Raises ValueError when there is no positive pair.
        With `budget_s`, see `fit`."""
        return self.fit(
            interactions, window_start, window_end, trained_at, budget_s=budget_s
        ).artifact

    def fit(
        self,
        interactions: TrainingInteractions | PairWindow,
        window_start: datetime,
        window_end: datetime,
        trained_at: datetime,
        *,
        checkpoint: Callable[[int, ModelArtifact], bool] | None = None,
        every: int = 5,
        budget_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> FittedModel:
        """`train`, also returning the fitted `lightfm.LightFM`. With `checkpoint`, training
        pauses every `every` epochs to call `checkpoint(epochs so far, artifact so far)` and
        stops early when it returns False (the search's early stopping).

        With `budget_s`, training goes an epoch at a time and ends within about that many
        seconds: when the first epoch shows that `seeds` models would not fit, it keeps as many
        as would (at least one); it starts no epoch that the last one's pace says would end
        past the budget. The artifact's params record the epochs and seeds actually trained."""
        pairs = aggregate_pairs(interactions)
        positive = pairs.weights > 0
        if not positive.any():
            raise ValueError("no positive interactions to train on")
        shape = (len(pairs.user_ids), len(pairs.item_ids))
        rows, cols = pairs.rows[positive], pairs.cols[positive]
        # LightFM requires the weights to share the interactions' row and col arrays exactly.
        matrix = coo_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=shape)
        graded = self.weighting == "graded" and self.loss != "warp-kos"
        weights = (
            coo_matrix((pairs.weights[positive], (rows, cols)), shape=shape) if graded else None
        )
        # An average of `seeds` models is one model: user vectors side by side (scaled by
        # 1/seeds), item vectors side by side, biases averaged. It lowers the run-to-run spread;
        # its scores are then cut to their best rank-`served_width` approximation, since every
        # Recommend's cost grows with the width.
        models = [self._lightfm(self.seed + offset) for offset in range(self.seeds)]
        # What was watched together: computed once, blended into every artifact of this fit.
        part = (
            co_occurrence(pairs, self.neighbour_components) if self.neighbour_weight > 0 else None
        )
        done = 0
        if budget_s is not None:
            models, done = self._fit_within(budget_s, models, matrix, weights, clock)
        while budget_s is None and done < self.epochs:
            step = self.epochs - done if checkpoint is None else min(every, self.epochs - done)
            for model in models:
                model.fit_partial(
                    matrix, sample_weight=weights, epochs=step, num_threads=self.num_threads
                )
            done += step
            if checkpoint is not None and done < self.epochs:
                partial = self._artifact(
                    interactions, pairs, models, part, (window_start, window_end), trained_at, done
                )
                if not checkpoint(done, partial):
                    break
        return FittedModel(
            self._artifact(
                interactions, pairs, models, part, (window_start, window_end), trained_at, done
            ),
            models[0],
        )

    def _fit_within(
        self,
        budget_s: float,
        models: list[Any],
        matrix: coo_matrix,
        weights: coo_matrix | None,
        clock: Callable[[], float],
    ) -> tuple[list[Any], int]:
        """(models kept, epochs trained) within about `budget_s` seconds (see `fit`): the first
        model's first epoch sets how many seeds fit; no epoch starts that the last one's pace
        says would end past the budget."""
        began = clock()

        def epoch(model: Any) -> None:
            model.fit_partial(matrix, sample_weight=weights, epochs=1, num_threads=self.num_threads)

        epoch(models[0])
        fitting = int(budget_s / max((clock() - began) * self.epochs, 1e-9))
        models = models[: max(1, fitting)]
        for model in models[1:]:
            epoch(model)
        done, round_s = 1, clock() - began
        while done < self.epochs and clock() - began + round_s <= budget_s:
            started = clock()
            for model in models:
                epoch(model)
            done, round_s = done + 1, clock() - started
        return models, done

    def _artifact(  # noqa: PLR0917 (one call site, the fit's own state)
        self,
        interactions: TrainingInteractions | PairWindow,
        pairs: InteractionPairs,
        models: list[Any],
        part: CoOccurrence | None,
        window: tuple[datetime, datetime],
        trained_at: datetime,
        epochs: int,
    ) -> ModelArtifact:
        window_start, window_end = window
        shape = (len(pairs.user_ids), len(pairs.item_ids))
        arrays = _averaged(models, self.served_width, part, self.neighbour_weight)
        arrays["item_prior"] = self.prior_weight * popularity_prior(
            interactions, pairs.item_ids, window_end, self.prior_half_life_days, arrays
        )
        user_ids: list[str] = pairs.user_ids.tolist()
        item_ids: list[str] = pairs.item_ids.tolist()
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
            params={**self.params(), "epochs": str(epochs), "seeds": str(len(models))},
        )
        return ModelArtifact(
            info=info,
            user_ids=user_ids,
            item_ids=item_ids,
            seen_indptr=pairs.indptr(),
            seen_indices=pairs.cols,
            **arrays,
        )

    def _lightfm(self, seed: int) -> LightFM:
        return LightFM(
            no_components=self.no_components,
            learning_rate=self.learning_rate,
            learning_schedule=self.learning_schedule,
            loss=self.loss,
            item_alpha=self.item_alpha,
            user_alpha=self.user_alpha,
            max_sampled=self.max_sampled,
            random_state=np.random.RandomState(seed),
        )


_PARAMS = (
    "loss",
    "no_components",
    "epochs",
    "learning_rate",
    "item_alpha",
    "user_alpha",
    "num_threads",
    "seed",
    "max_sampled",
    "weighting",
    "learning_schedule",
    "seeds",
    "prior_weight",
    "prior_half_life_days",
    "serve_components",
    "neighbour_weight",
    "neighbour_components",
)


def _averaged(
    models: list[Any], width: int, part: CoOccurrence | None = None, weight: float = 0.0
) -> dict[str, Any]:
    """The seeds' average, with the co-occurrence `part` times `weight` beside it, its vectors
    at most `width` wide (0: all seeds x components, plus the part's directions)."""
    n = len(models)
    users = np.hstack([m.user_embeddings for m in models]).astype(np.float32) / n
    items = np.hstack([m.item_embeddings for m in models]).astype(np.float32)
    if part is not None and weight > 0 and part.users.shape[1] > 0:
        scale = np.float32(weight * spread_ratio(users, items, part))
        users = np.hstack([users, scale * part.users])
        items = np.hstack([items, part.items])
    served_users, served_items = best_rank(users, items, width)
    return {
        "user_embeddings": served_users,
        "user_biases": np.mean([m.user_biases for m in models], axis=0).astype(np.float32),
        "item_embeddings": served_items,
        "item_biases": np.mean([m.item_biases for m in models], axis=0).astype(np.float32),
    }


def _fingerprint(user_ids: list[str], item_ids: list[str], arrays: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    for ids in (user_ids, item_ids):
        digest.update("\n".join(ids).encode())
        digest.update(b"\0")
    for name in sorted(arrays):
        digest.update(np.ascontiguousarray(arrays[name]).tobytes())
    return digest.hexdigest()
