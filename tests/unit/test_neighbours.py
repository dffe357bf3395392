"""The co-occurrence component: what it computes, how the trainer publishes it, and that the
search's checks score a weight exactly as the published model ranks with it."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from adapters.interaction_columns import TrainingInteractions
from adapters.lightfm.evaluation import blend_quality, ranking_quality
from adapters.lightfm.interactions import aggregate_pairs
from adapters.lightfm.neighbours import co_occurrence, spread_ratio
from adapters.lightfm.offline import time_split
from adapters.lightfm.trainer import LightFMTrainer
from app.demo_data import generate_interactions

END = datetime(2026, 1, 31, tzinfo=UTC)
pytestmark = pytest.mark.unit


def rows() -> TrainingInteractions:
    return generate_interactions(80, 150, 4000, days=6, seed=7, end=END).to_training()


def test_the_component_is_the_ridge_regression_of_the_positives_on_their_directions() -> None:
    pairs = aggregate_pairs(rows())
    positive = pairs.weights > 0
    dense = np.zeros((len(pairs.user_ids), len(pairs.item_ids)))
    dense[pairs.rows[positive], pairs.cols[positive]] = 1.0
    _, s, vt = np.linalg.svd(dense, full_matrices=False)
    users = np.arange(len(pairs.user_ids))
    for ridge in (0.0, 500.0):
        # X V diag(s² / (s² + λ)) Vᵀ: the same whatever the directions' signs
        expected = dense @ vt[:8].T @ np.diag(s[:8] ** 2 / (s[:8] ** 2 + ridge)) @ vt[:8]
        part = co_occurrence(pairs, 8, ridge)
        assert part.users.shape == (len(pairs.user_ids), 8)
        assert part.items.shape == (len(pairs.item_ids), 8)
        np.testing.assert_allclose(part.scores(users), expected, atol=1e-4)
    again = co_occurrence(pairs, 8)
    np.testing.assert_array_equal(again.users, co_occurrence(pairs, 8).users)  # deterministic


def test_a_matrix_too_small_for_the_directions_gets_fewer_and_none_without_positives() -> None:
    pairs = aggregate_pairs(
        generate_interactions(4, 30, 60, days=2, seed=1, end=END).to_training()
    )
    assert co_occurrence(pairs, 32).users.shape[1] == min(4, len(pairs.item_ids)) - 1
    none = type(pairs)(pairs.user_ids, pairs.item_ids, pairs.rows, pairs.cols, pairs.weights * 0)
    assert co_occurrence(none, 32).users.shape == (len(pairs.user_ids), 0)


def test_a_weight_of_one_gives_the_component_the_models_own_spread() -> None:
    pairs = aggregate_pairs(rows())
    part = co_occurrence(pairs, 8)
    rng = np.random.default_rng(0)
    users = rng.standard_normal((len(pairs.user_ids), 4))
    items = rng.standard_normal((len(pairs.item_ids), 4))
    ratio = spread_ratio(users, items, part)
    every = np.arange(len(pairs.user_ids))
    model_spread = np.std(users @ items.T)
    assert np.std(part.scores(every) * ratio) == pytest.approx(model_spread, rel=0.15)


def test_the_search_scores_a_neighbour_weight_as_the_published_model_ranks() -> None:
    split = time_split(rows())
    plain_trainer = LightFMTrainer(no_components=4, epochs=5, serve_components=0)
    plain = plain_trainer.train(split.training, split.start, split.end, END)
    part = co_occurrence(aggregate_pairs(split.training), plain_trainer.neighbour_components)
    scored = blend_quality(
        plain, split.held_out, (0.0,), neighbours=part, neighbour_weights=(0.0, 0.5)
    )
    blended = plain_trainer.with_params(neighbour_weight=0.5).train(
        split.training, split.start, split.end, END
    )
    assert scored[0] == ranking_quality(plain, split.held_out)
    # Published at full width, the blend ranks exactly as the check scored it.
    assert blended.user_embeddings.shape[1] == 4 + part.users.shape[1]
    assert scored[1] == pytest.approx(ranking_quality(blended, split.held_out), abs=1e-9)
    assert scored[1] != scored[0]  # the component moves the ranking
    assert blended.info.params["neighbour_weight"] == "0.5"


def test_a_blended_model_is_published_at_the_served_width() -> None:
    split = time_split(rows())
    trainer = LightFMTrainer(no_components=4, epochs=5, neighbour_weight=1.0)
    published = trainer.train(split.training, split.start, split.end, END)
    assert published.user_embeddings.shape[1] == 4
    assert published.item_embeddings.shape[1] == 4
    assert published.info.params["neighbour_components"] == "64"
