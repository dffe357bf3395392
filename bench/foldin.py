"""Fold-in benchmark: which rule folds a viewer's positives into a vector, and the blend's N0.

    python bench/foldin.py [users videos events components]   (default 1000 5000 200000 64)

On planted tastes (`app.demo_data`), a model is trained on the first 9 of 10 days without a
fifth of the users (the "new viewers"). Rules: `mean` (the weighted mean of the positives' item
vectors) and `als` (the implicit-ALS fold-in of Hu, Koren & Volinsky 2008 with confidence
1 + alpha * w and ridge lam * trace(V^T V) / k; `LoadedModel` serves alpha 10, lam 10); all
rescaled to the median learned user norm. Measures:

- consistency: top-10 overlap of a known viewer's learned vector and the fold-in of their own
  training positives (seen videos excluded from both);
- new viewers: precision@10 on their later positives after folding in their first m, and the
  share of the top-10 in their planted cluster; popularity as the cold-start baseline;
- blend: a known viewer's last-day positives, the first half fresh, precision@10 on the rest
  for `b = n / (n + N0)` (N0 = None: the learned vector alone);
- drift: n likes of another cluster's videos; the share of the top-10 in that cluster.

Human-readable lines, then one JSON line. The served rule is checked against `LoadedModel.rank`.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from adapters.lightfm.interactions import aggregate_pairs
from adapters.lightfm.scorer import LoadedModel
from adapters.lightfm.trainer import LightFMTrainer
from app.demo_data import generate_interactions

END = datetime(2026, 11, 24, tzinfo=UTC)
DAYS = 10
Floats = npt.NDArray[np.float64]
SERVED = "als a=10 lam=10"
RULES: dict[str, dict[str, float]] = {
    "mean": {},
    **{
        f"als a={a:g} lam={lam:g}": {"alpha": a, "lam": lam}
        for a in (1, 10)
        for lam in (1, 10, 100)
    },
}


def main(n_users: int, n_videos: int, n_events: int, k: int) -> dict[str, float]:
    data = generate_interactions(n_users, n_videos, n_events, days=DAYS, seed=5, end=END)
    events = data.to_training()
    cut = END - timedelta(days=1)
    new_codes = np.random.default_rng(0).choice(n_users, size=n_users // 5, replace=False)
    is_new = np.isin(events.user_codes, new_codes)
    before = events.occurred_at_ms < int(cut.timestamp() * 1000)
    train = events.take(before & ~is_new)
    trainer = LightFMTrainer(no_components=k, epochs=20, learning_rate=0.05, seed=1)
    artifact = trainer.train(train, END - timedelta(days=DAYS), cut, END)
    model = LoadedModel.from_artifact(artifact)
    item_vectors = artifact.item_embeddings.astype(np.float64)
    item_biases = artifact.item_biases.astype(np.float64)
    users = artifact.user_embeddings.astype(np.float64)
    median_norm = float(np.median(np.linalg.norm(users, axis=1)))
    gram = item_vectors.T @ item_vectors
    ridge = np.trace(gram) / k * np.eye(k)
    item_of = {v: i for i, v in enumerate(artifact.item_ids)}
    cluster_of = dict(zip(data.video_ids.tolist(), data.video_clusters.tolist(), strict=True))
    taste_of = dict(zip(data.user_ids.tolist(), data.user_clusters.tolist(), strict=True))

    def fold(items: list[int], weights: list[float], rule: str) -> Floats:
        v, w = item_vectors[items], np.asarray(weights)
        if rule == "mean":
            u = w @ v
        else:
            alpha, lam = RULES[rule]["alpha"], RULES[rule]["lam"]
            c = 1 + alpha * w
            u = np.linalg.solve(gram + (v.T * (c - 1)) @ v + lam * ridge, c @ v)
        return np.asarray(u * (median_norm / np.linalg.norm(u)), dtype=np.float64)

    def top(u: Floats, banned: set[int]) -> list[int]:
        scores = item_vectors @ u + item_biases
        scores[list(banned)] = -np.inf
        return [int(i) for i in np.argsort(-scores, kind="stable")[:10]]

    def positives_in_order(rows: npt.NDArray[np.bool_]) -> list[tuple[int, float]]:
        """A user's positive (item, weight) in time order, first event per known video."""
        found: dict[int, float] = {}
        videos = events.video_vocab[events.video_codes[rows]].tolist()
        for video, weight in zip(videos, events.weights()[rows].tolist(), strict=True):
            if weight > 0 and video in item_of and item_of[video] not in found:
                found[item_of[video]] = weight
        return list(found.items())

    result: dict[str, float] = {}
    pairs = aggregate_pairs(train)
    indptr = pairs.indptr()
    seen_of = [set(artifact.seen_by(u).tolist()) for u in range(len(artifact.user_ids))]
    for rule in RULES:
        overlaps = []
        for u in range(len(artifact.user_ids)):
            span = slice(indptr[u], indptr[u + 1])
            positive = pairs.weights[span] > 0
            if positive.sum() >= 3:
                items, weights = pairs.cols[span][positive], pairs.weights[span][positive]
                folded = fold(items.tolist(), weights.tolist(), rule)
                overlaps.append(len(set(top(users[u], seen_of[u])) & set(top(folded, seen_of[u]))))
        result[f"overlap {rule}"] = float(np.mean(overlaps)) / 10
    unseen = len(artifact.item_ids) - np.mean([len(s) for s in seen_of])
    result["overlap chance"] = float(10 / unseen)

    popularity = np.bincount(pairs.cols[pairs.weights > 0], minlength=len(artifact.item_ids))
    newcomers = [
        (str(data.user_ids[c]), positives_in_order(events.user_codes == c)) for c in new_codes
    ]
    for rule in [*RULES, "popularity"]:
        for m in (1, 3, 10):
            precision, share = [], []
            for user, order in newcomers:
                if len(order) < m + 3:
                    continue
                first, rest = order[:m], {i for i, _ in order[m:]}
                banned = {i for i, _ in first}
                if rule == "popularity":
                    ranked = _popular(popularity, banned)
                else:
                    ranked = top(fold([i for i, _ in first], [w for _, w in first], rule), banned)
                precision.append(len(set(ranked) & rest) / 10)
                share.append(
                    np.mean([cluster_of[artifact.item_ids[i]] == taste_of[user] for i in ranked])
                )
            result[f"new m={m} p@10 {rule}"] = float(np.mean(precision))
            result[f"new m={m} cluster {rule}"] = float(np.mean(share))

    user_of = {u: i for i, u in enumerate(artifact.user_ids)}
    fresh_events = ~before & ~is_new
    for n0 in (0.0, 2.0, 3.0, 5.0, 10.0, None):
        precision = []
        for user, u in user_of.items():
            code = int(np.flatnonzero(data.user_ids == user)[0])
            order = [
                (i, w)
                for i, w in positives_in_order(fresh_events & (events.user_codes == code))
                if i not in seen_of[u]
            ]
            if len(order) < 2:
                continue
            half = len(order) // 2
            fresh, rest = order[:half], {i for i, _ in order[half:]}
            vector = users[u]
            if n0 is not None:
                b = half / (half + n0)
                vector = (1 - b) * users[u] + b * fold(
                    [i for i, _ in fresh], [w for _, w in fresh], SERVED
                )
            precision.append(len(set(top(vector, seen_of[u] | {i for i, _ in fresh})) & rest) / 10)
        result[f"blend N0={n0} p@10"] = float(np.mean(precision))

    by_cluster: dict[int, list[int]] = {}
    for i, video in enumerate(artifact.item_ids):
        by_cluster.setdefault(cluster_of[video], []).append(i)
    rng = np.random.default_rng(1)
    for n0 in (2.0, 3.0, 5.0, 10.0):
        for n in (1, 3, 10):
            shares = []
            for user in artifact.user_ids[:200]:
                u = user_of[user]
                others = [
                    c for c, items in by_cluster.items() if c != taste_of[user] and len(items) >= 30
                ]
                cluster = others[int(rng.integers(len(others)))]
                liked = rng.choice(
                    sorted(by_cluster[cluster], key=lambda i: -popularity[i])[:30], n, replace=False
                )
                b = n / (n + n0)
                vector = (1 - b) * users[u] + b * fold(liked.tolist(), [3.0] * n, SERVED)
                ranked = top(vector, seen_of[u] | set(liked.tolist()))
                shares.append(
                    np.mean([cluster_of[artifact.item_ids[i]] == cluster for i in ranked])
                )
            result[f"drift N0={n0:g} n={n}"] = float(np.mean(shares))

    # The served rule here is LoadedModel's: same top-10 for strangers folding a user's positives.
    for u in range(0, len(artifact.user_ids), 50):
        span = slice(indptr[u], indptr[u + 1])
        positive = pairs.weights[span] > 0
        items, weights = pairs.cols[span][positive].tolist(), pairs.weights[span][positive].tolist()
        recent = [(artifact.item_ids[i], w, END) for i, w in zip(items, weights, strict=True)]
        served = model.rank("stranger", 10, recent=recent).items
        assert [artifact.item_ids[i] for i in top(fold(items, weights, SERVED), set(items))][
            :5
        ] == [v for v, _ in served][:5]
    return result


def _popular(popularity: npt.NDArray[np.int64], banned: set[int]) -> list[int]:
    scores = popularity.astype(np.float64)
    scores[list(banned)] = -np.inf
    return [int(i) for i in np.argsort(-scores, kind="stable")[:10]]


if __name__ == "__main__":
    sizes = [int(a) for a in sys.argv[1:5]] or [1_000, 5_000, 200_000, 64]
    figures = main(*sizes)
    for name, value in figures.items():
        print(f"{name}: {value:.3f}")
    print(json.dumps({name: round(value, 4) for name, value in figures.items()}))
