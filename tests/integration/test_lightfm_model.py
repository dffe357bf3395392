"""The LightFM model core against the real LightFM library: training, the artifact, serving
rankings that agree with LightFM's own `predict`, and quality on data with planted tastes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from adapters.lightfm.artifact import ModelArtifact
from adapters.lightfm.interactions import TrainingInteractions, aggregate_pairs
from adapters.lightfm.scorer import LoadedModel, UnknownUser
from adapters.lightfm.trainer import FittedModel, LightFMTrainer, evaluate, popularity_scores
from app.demo_data import generate_interactions
from domain.interactions import InteractionType
from domain.model import interaction_weight, precision_at_k
from tests.servers import RecordProperty

pytestmark = pytest.mark.integration

END = datetime(2026, 11, 24, tzinfo=UTC)
DAYS = 10
HELD_OUT_FROM = END - timedelta(days=1)
TRAINER = LightFMTrainer(no_components=32, epochs=20, learning_rate=0.05, seed=1)


@dataclass(frozen=True)
class Trained:
    train: TrainingInteractions
    held_out: TrainingInteractions
    fitted: FittedModel

    @property
    def artifact(self) -> ModelArtifact:
        return self.fitted.artifact


def fit(trainer: LightFMTrainer, train: TrainingInteractions) -> FittedModel:
    return trainer.fit(train, END - timedelta(days=DAYS), HELD_OUT_FROM, END)


@pytest.fixture(scope="module")
def trained() -> Trained:
    """300 users, 1,000 videos, 20 taste clusters, 40,000 events over 10 days; the last day is
    held out."""
    data = generate_interactions(300, 1_000, 40_000, days=DAYS, seed=3, end=END)
    train, held_out = data.to_training().split_at(HELD_OUT_FROM)
    return Trained(train, held_out, fit(TRAINER, train))


def test_the_artifact_survives_its_byte_form_exactly(trained: Trained) -> None:
    artifact = trained.artifact
    restored = ModelArtifact.from_bytes(artifact.to_bytes())
    assert restored.info == artifact.info
    assert (restored.user_ids, restored.item_ids) == (artifact.user_ids, artifact.item_ids)
    for name in (
        "user_embeddings",
        "user_biases",
        "item_embeddings",
        "item_biases",
        "seen_indptr",
        "seen_indices",
    ):
        original, copy = getattr(artifact, name), getattr(restored, name)
        assert copy.dtype == original.dtype
        np.testing.assert_array_equal(copy, original)
    assert restored.to_bytes() == artifact.to_bytes()


@pytest.mark.parametrize("blob", [b"", b"not a model", b"PK\x03\x04 truncated zip"])
def test_bytes_that_are_not_an_artifact_are_a_value_error(blob: bytes) -> None:
    with pytest.raises(ValueError, match="not a model artifact"):
        ModelArtifact.from_bytes(blob)


def test_the_artifact_describes_its_training(trained: Trained) -> None:
    info = trained.artifact.info
    assert info.n_interactions == len(trained.train)
    assert (info.n_users, info.n_items) == (300, len(trained.artifact.item_ids))
    assert info.version.startswith("20261124T000000Z-")
    assert info.params["loss"] == "warp" and info.params["no_components"] == "32"
    assert info.metrics is None
    assert trained.artifact.user_embeddings.shape == (300, 32)


def test_same_data_and_seed_give_identical_bytes_and_another_seed_does_not(
    trained: Trained,
) -> None:
    again = fit(TRAINER, trained.train).artifact
    assert again.to_bytes() == trained.artifact.to_bytes()
    reseeded = fit(LightFMTrainer(no_components=32, epochs=20, seed=2), trained.train).artifact
    assert reseeded.info.version != trained.artifact.info.version


def test_every_video_a_user_touched_in_training_is_remembered_as_seen(trained: Trained) -> None:
    artifact, train = trained.artifact, trained.train
    for user_index in (0, 150, 299):
        user_id = artifact.user_ids[user_index]
        rows = train.user_vocab[train.user_codes] == user_id
        touched = set(train.video_vocab[train.video_codes[rows]].tolist())  # skips and hides too
        seen = {artifact.item_ids[i] for i in artifact.seen_by(user_index).tolist()}
        assert seen == touched


def test_vectorised_weights_follow_the_domain_rule() -> None:
    kinds = [kind for kind in InteractionType for _ in range(6)]
    watches = [0, 999, 1_000, 12_345, 30_000, 90_000] * len(InteractionType)
    events = TrainingInteractions.from_columns(
        ["u"] * len(kinds), [f"v{i}" for i in range(len(kinds))], kinds, watches, [END] * len(kinds)
    )
    expected = [interaction_weight(k, w) for k, w in zip(kinds, watches, strict=True)]
    np.testing.assert_allclose(events.weights(), expected, rtol=1e-6)


def test_a_pair_sums_its_events_up_to_the_cap_and_a_hide_cancels_it() -> None:
    events = TrainingInteractions.from_columns(
        ["u1", "u1", "u1", "u1", "u1", "u2", "u2"],
        ["a", "a", "b", "b", "b", "a", "a"],
        ["like", "view", "share", "share", "like", "like", "hide"],
        [0, 15_000, 0, 0, 0, 0, 0],
        [END] * 7,
    )
    pairs = aggregate_pairs(events)
    got = {
        (pairs.user_ids[r], pairs.item_ids[c]): float(w)
        for r, c, w in zip(pairs.rows, pairs.cols, pairs.weights, strict=True)
    }
    assert got == {("u1", "a"): 3.5, ("u1", "b"): 5.0, ("u2", "a"): 0.0}


def test_served_top_k_equals_lightfms_own_predict_ranking(trained: Trained) -> None:
    artifact, lightfm = trained.artifact, trained.fitted.lightfm
    model = LoadedModel.from_artifact(ModelArtifact.from_bytes(artifact.to_bytes()))
    n_items, rng = len(artifact.item_ids), np.random.default_rng(0)
    train = trained.train
    for user_index in range(0, 300, 15):
        user_id = artifact.user_ids[user_index]
        exclude = rng.choice(artifact.item_ids, size=5, replace=False).tolist()
        rows = train.user_vocab[train.user_codes] == user_id
        banned = set(train.video_vocab[train.video_codes[rows]].tolist()) | set(exclude)
        predicted = lightfm.predict(
            np.full(n_items, user_index, dtype=np.int32), np.arange(n_items, dtype=np.int32)
        )
        allowed = [i for i in range(n_items) if artifact.item_ids[i] not in banned]
        expected = sorted(allowed, key=lambda i: (-predicted[i], i))[:50]

        ranked = model.rank(user_id, 50, exclude).items

        assert [video for video, _ in ranked] == [artifact.item_ids[i] for i in expected]
        np.testing.assert_allclose(
            [score for _, score in ranked], predicted[expected], rtol=1e-5, atol=1e-5
        )


def test_ranking_leaves_out_seen_and_excluded_videos_and_never_raises_scores(
    trained: Trained,
) -> None:
    artifact = trained.artifact
    model = LoadedModel.from_artifact(artifact)
    seen = {artifact.item_ids[i] for i in artifact.seen_by(7).tolist()}
    first = model.rank(artifact.user_ids[7], 20).items
    exclude = [first[0][0], first[3][0], "v-not-in-the-catalogue"]

    ranked = model.rank(artifact.user_ids[7], 20, exclude).items

    videos = [video for video, _ in ranked]
    assert len(videos) == 20 and len(set(videos)) == 20
    assert not (set(videos) & (seen | set(exclude)))
    scores = [score for _, score in ranked]
    assert scores == sorted(scores, reverse=True)


def test_ranking_runs_out_with_the_catalogue_and_refuses_unknown_users(trained: Trained) -> None:
    artifact = trained.artifact
    model = LoadedModel.from_artifact(artifact)
    unseen = len(artifact.item_ids) - len(artifact.seen_by(0))
    assert len(model.rank(artifact.user_ids[0], 10_000).items) == unseen
    assert model.rank(artifact.user_ids[0], 0).items == []
    assert model.has_user(artifact.user_ids[0]) and not model.has_user("u-new")
    with pytest.raises(UnknownUser):
        model.rank("u-new", 10)
    assert model.score_matrix_bytes() == len(artifact.item_ids) * 33 * 4


def test_equal_scores_keep_catalogue_order(trained: Trained) -> None:
    base = trained.artifact
    tied = ModelArtifact(
        info=base.info,
        user_ids=["u"],
        item_ids=[f"v{i}" for i in range(8)],
        user_embeddings=np.ones((1, 2), dtype=np.float32),
        user_biases=np.zeros(1, dtype=np.float32),
        item_embeddings=np.zeros((8, 2), dtype=np.float32),
        item_biases=np.array([0, 1, 1, 1, 1, 0, 1, 2], dtype=np.float32),
        seen_indptr=np.array([0, 1], dtype=np.int64),
        seen_indices=np.array([2], dtype=np.int32),
    )
    ranked = LoadedModel.from_artifact(tied).rank("u", 4).items
    assert [video for video, _ in ranked] == ["v7", "v1", "v3", "v4"]


def test_evaluation_agrees_with_ranking_the_held_out_users_one_by_one(trained: Trained) -> None:
    artifact, held_out = trained.artifact, trained.held_out
    model = LoadedModel.from_artifact(artifact)
    relevant: dict[str, set[str]] = {}
    pairs = aggregate_pairs(held_out)
    for r, c, w in zip(pairs.rows, pairs.cols, pairs.weights, strict=True):
        user, video = str(pairs.user_ids[r]), str(pairs.item_ids[c])
        if w > 0 and model.has_user(user):
            relevant.setdefault(user, set()).add(video)
    precisions = []
    for user, videos in relevant.items():
        seen = {artifact.item_ids[i] for i in artifact.seen_by(artifact.user_ids.index(user))}
        if videos - seen:
            ranked = [video for video, _ in model.rank(user, 10).items]
            precisions.append(precision_at_k(ranked, videos - seen, 10))

    metrics = evaluate(artifact, held_out)

    assert metrics.precision_at_10 == pytest.approx(float(np.mean(precisions)))


def test_evaluation_samples_at_most_max_users_reproducibly(trained: Trained) -> None:
    sampled = evaluate(trained.artifact, trained.held_out, max_users=5)
    assert evaluate(trained.artifact, trained.held_out, max_users=5) == sampled
    hits = sampled.precision_at_10 * 10 * 5  # a mean over 5 users of hits / 10
    assert hits == pytest.approx(round(hits))
    assert evaluate(trained.artifact, trained.held_out, max_users=10_000) == evaluate(
        trained.artifact, trained.held_out
    )


def test_the_model_beats_popularity_at_least_twice_on_planted_tastes(
    trained: Trained, record_property: RecordProperty
) -> None:
    model = evaluate(trained.artifact, trained.held_out)
    popular = evaluate(
        trained.artifact,
        trained.held_out,
        item_scores=popularity_scores(trained.artifact, trained.train),
    )
    print(
        f"\nprecision@10 model {model.precision_at_10:.4f} vs popularity "
        f"{popular.precision_at_10:.4f}; recall@10 {model.recall_at_10:.4f} vs "
        f"{popular.recall_at_10:.4f}; AUC {model.auc:.3f} vs {popular.auc:.3f}"
    )
    record_property("precision_at_10_model", round(model.precision_at_10, 4))
    record_property("precision_at_10_popularity", round(popular.precision_at_10, 4))
    assert model.precision_at_10 >= 2 * popular.precision_at_10 > 0
    assert model.auc > popular.auc
