"""The served width: a seed average's scores cut to their best rank-k approximation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt
import pytest

from adapters.lightfm.ann import with_index
from adapters.lightfm.artifact import ModelArtifact
from adapters.lightfm.rank import best_rank
from adapters.lightfm.scorer import LoadedModel
from adapters.lightfm.trainer import LightFMTrainer
from app.demo_data import generate_interactions

END = datetime(2026, 11, 24, tzinfo=UTC)


def random_vectors(rows: int, width: int, seed: int) -> npt.NDArray[np.float32]:
    return np.random.default_rng(seed).normal(size=(rows, width)).astype(np.float32)


def truncated_svd(scores: npt.NDArray[np.float64], k: int) -> npt.NDArray[np.float64]:
    left, singular, right_t = np.linalg.svd(scores, full_matrices=False)
    return np.asarray((left[:, :k] * singular[:k]) @ right_t[:k])


def top_10(model: LoadedModel, user: str) -> set[str]:
    return {video for video, _ in model.rank(user, 10).items}


@pytest.mark.parametrize(("width", "k"), [(40, 8), (30, 29), (12, 1)])
def test_the_scores_are_numpys_truncated_svd_of_the_full_scores(width: int, k: int) -> None:
    users, items = random_vectors(150, width, 1), random_vectors(90, width, 2)
    served_users, served_items = best_rank(users, items, k)
    full = users.astype(np.float64) @ items.T.astype(np.float64)
    assert served_users.shape == (150, k) and served_items.shape == (90, k)
    assert served_users.dtype == served_items.dtype == np.float32
    np.testing.assert_allclose(served_users @ served_items.T, truncated_svd(full, k), atol=1e-4)


def test_scores_of_rank_below_k_are_kept_exactly_and_the_width_is_still_k() -> None:
    # Two seeds that learned the same 5 dimensions: the average's scores have rank 5.
    users, items = random_vectors(80, 5, 3), random_vectors(60, 5, 4)
    served_users, served_items = best_rank(np.hstack([users, users]) / 2, np.hstack([items] * 2), 8)
    assert served_users.shape == (80, 8) and served_items.shape == (60, 8)
    np.testing.assert_allclose(served_users @ served_items.T, users @ items.T, atol=1e-4)


@pytest.mark.parametrize("k", [16, 20, 0])
def test_vectors_at_most_k_wide_or_an_unbounded_width_are_returned_unchanged(k: int) -> None:
    users, items = random_vectors(10, 16, 5), random_vectors(7, 16, 6)
    served_users, served_items = best_rank(users, items, k)
    assert served_users is users and served_items is items


def test_all_zero_vectors_serve_zero_scores() -> None:
    served_users, served_items = best_rank(
        np.zeros((4, 6), np.float32), np.zeros((3, 6), np.float32), 2
    )
    assert served_users.shape == (4, 2) and not (served_users @ served_items.T).any()


def test_a_seed_average_is_published_at_the_served_width_and_ranks_like_the_full_one() -> None:
    rows = generate_interactions(60, 120, 3000, days=6, seed=3, end=END).to_training()
    base = LightFMTrainer(no_components=8, epochs=5, seeds=3)

    def train(trainer: LightFMTrainer) -> ModelArtifact:
        return trainer.train(rows, END - timedelta(days=6), END, END)

    full, served = train(base.with_params(serve_components=0)), train(base)
    assert full.no_components == 24 and served.no_components == 8
    assert served.info.params["serve_components"] == "8"
    assert full.info.params["serve_components"] == "0"
    assert train(base.with_params(serve_components=32)).no_components == 24
    # The same biases; the top 10 overlaps most of the full width's for most users.
    np.testing.assert_array_equal(full.item_biases, served.item_biases)
    overlap = [
        len(top_10(LoadedModel(full), user) & top_10(LoadedModel(served), user))
        for user in full.user_ids
    ]
    assert np.mean(overlap) >= 5


def test_a_negative_served_width_is_refused() -> None:
    with pytest.raises(ValueError, match="serve_components"):
        LightFMTrainer(serve_components=-1)


def test_a_served_width_model_folds_in_fresh_positives_exactly_and_through_its_index() -> None:
    rows = generate_interactions(60, 300, 3000, days=6, seed=4, end=END).to_training()
    trainer = LightFMTrainer(no_components=8, epochs=5, seeds=3)
    served = trainer.train(rows, END - timedelta(days=6), END, END)
    exact, approximate = LoadedModel(served), LoadedModel(with_index(served, nprobe=1))
    assert approximate.approximate and served.no_components == 8
    recent = [(video, 1.0, END + timedelta(hours=1)) for video in served.item_ids[:3]]
    for model in (exact, approximate):
        found = model.rank("newcomer", 20, recent=recent)
        assert found.realtime and len(found.items) == 20
        assert not {video for video, _ in found.items} & set(served.item_ids[:3])
