"""The numpy code in `adapters.lightfm` vectorises rules the domain states once
(`domain.model`): on random data, the vectorised figures equal the domain's, pair by pair and
user by user."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from adapters.lightfm.artifact import ModelArtifact
from adapters.lightfm.evaluation import evaluate
from adapters.lightfm.interactions import TrainingInteractions, aggregate_pairs
from domain.interactions import InteractionType
from domain.model import (
    ModelInfo,
    interaction_weight,
    pair_weight,
    precision_at_k,
    recall_at_k,
)

pytestmark = pytest.mark.integration

END = datetime(2026, 11, 24, tzinfo=UTC)
KINDS = list(InteractionType)


def random_events(
    rng: np.random.Generator, n: int, users: int, videos: int
) -> TrainingInteractions:
    """`n` events over few users and videos, so most pairs hold several events."""
    return TrainingInteractions.from_columns(
        [f"u{i}" for i in rng.integers(0, users, n)],
        [f"v{i}" for i in rng.integers(0, videos, n)],
        [KINDS[i].value for i in rng.integers(0, len(KINDS), n)],
        rng.integers(0, 45_000, n).tolist(),
        [END - timedelta(minutes=int(m)) for m in rng.integers(0, 10_000, n)],
    )


def domain_pair_weights(events: TrainingInteractions) -> dict[tuple[str, str], float]:
    """`domain.model.pair_weight` of every (user, video) pair, one event at a time."""
    weights: dict[tuple[str, str], list[float]] = defaultdict(list)
    hidden: set[tuple[str, str]] = set()
    for r in range(len(events)):
        pair = (
            str(events.user_vocab[events.user_codes[r]]),
            str(events.video_vocab[events.video_codes[r]]),
        )
        kind = KINDS[int(events.type_codes[r])]
        weights[pair].append(interaction_weight(kind, int(events.watch_time_ms[r])))
        if kind is InteractionType.HIDE:
            hidden.add(pair)
    return {pair: pair_weight(ws, pair in hidden) for pair, ws in weights.items()}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorised_pair_weights_equal_the_domain_rule(seed: int) -> None:
    events = random_events(np.random.default_rng(seed), 3_000, 40, 60)

    pairs = aggregate_pairs(events)

    vectorised = {
        (str(pairs.user_ids[r]), str(pairs.item_ids[c])): float(w)
        for r, c, w in zip(pairs.rows, pairs.cols, pairs.weights, strict=True)
    }
    expected = domain_pair_weights(events)
    assert vectorised.keys() == expected.keys()
    for pair, weight in expected.items():
        assert vectorised[pair] == pytest.approx(weight, rel=1e-5, abs=1e-6), pair


def random_model(rng: np.random.Generator, train: TrainingInteractions) -> ModelArtifact:
    """Random embeddings over the training pairs (no ties in practice); seen = trained pairs."""
    pairs = aggregate_pairs(train)
    n_users, n_items = len(pairs.user_ids), len(pairs.item_ids)
    info = ModelInfo(
        "random", END, END - timedelta(days=7), END, n_users, n_items, len(train), None, {}
    )
    return ModelArtifact(
        info=info,
        user_ids=pairs.user_ids.tolist(),
        item_ids=pairs.item_ids.tolist(),
        user_embeddings=rng.normal(size=(n_users, 8)).astype(np.float32),
        user_biases=rng.normal(size=n_users).astype(np.float32),
        item_embeddings=rng.normal(size=(n_items, 8)).astype(np.float32),
        item_biases=rng.normal(size=n_items).astype(np.float32),
        seen_indptr=pairs.indptr(),
        seen_indices=pairs.cols,
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorised_precision_and_recall_equal_the_domain_metrics(seed: int) -> None:
    rng = np.random.default_rng(seed)
    artifact = random_model(rng, random_events(rng, 1_500, 50, 120))
    held_out = random_events(rng, 600, 60, 140)  # some users and videos the model never saw
    k = 10

    metrics = evaluate(artifact, held_out, k, max_users=1_000)

    scores = artifact.user_embeddings @ artifact.item_embeddings.T + artifact.item_biases
    positives: dict[str, set[str]] = defaultdict(set)
    for (user, video), weight in domain_pair_weights(held_out).items():
        if weight > 0:
            positives[user].add(video)
    precisions, recalls = [], []
    for index, user in enumerate(artifact.user_ids):
        seen = {artifact.item_ids[i] for i in artifact.seen_by(index).tolist()}
        relevant = positives.get(user, set()) - seen
        if not relevant:
            continue
        order = np.argsort(-scores[index], kind="stable")
        ranked = [artifact.item_ids[i] for i in order if artifact.item_ids[i] not in seen]
        precisions.append(precision_at_k(ranked, relevant, k))
        recalls.append(recall_at_k(ranked, relevant, k))
    assert len(precisions) > 10  # the comparison covers many users
    assert metrics.precision_at_10 == pytest.approx(float(np.mean(precisions)))
    assert metrics.recall_at_10 == pytest.approx(float(np.mean(recalls)))
