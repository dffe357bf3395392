"""Offline ranking quality of a model (or of a fixed baseline ranking) on held-out interactions.

The protocol, shared by the model and the baselines so their figures compare:
- evaluated users: those with a held-out positive pair (pair weight > 0) who are known to the
  model; items they already interacted with in training are neither ranked nor relevant;
- relevant items: the user's remaining held-out positives, including videos the model does not
  know (they count against recall, as they would in production);
- precision@k = hits / k, recall@k = hits / relevant, averaged over evaluated users;
- AUC: per user, the probability that a relevant known item outscores a random unseen one
  (`auc_negatives` sampled negatives per user, ties counting one half), averaged over users;
- at most `max_users` evaluated users, a seeded sample: ranking a user costs a pass over the
  whole catalogue (10,000 users x 1M items x 64 components is about 1.3 TFLOP).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt

from adapters.lightfm.artifact import ModelArtifact
from adapters.lightfm.interactions import TrainingInteractions, aggregate_pairs
from adapters.lightfm.neighbours import CoOccurrence, spread_ratio
from domain.model import ModelMetrics

#: Scores computed per batch of users: bounds memory at about 64 MiB of float32.
_BATCH_CELLS = 1 << 24


def user_batches(count: int, n_items: int, cells: int = _BATCH_CELLS) -> Iterator[slice]:
    """Consecutive slices of `count` users whose score matrices (users x `n_items`) hold at
    most `cells` entries each (one user at least): a whole catalogue's scores for 10,000 users
    would be gigabytes."""
    step = max(1, cells // max(n_items, 1))
    for first in range(0, count, step):
        yield slice(first, min(first + step, count))


def popularity_scores(
    artifact: ModelArtifact, training: TrainingInteractions
) -> npt.NDArray[np.float32]:
    """Per model item (artifact order): how many training users had a positive pair with it.
    The popularity baseline ranks every user's catalogue by these."""
    pairs = aggregate_pairs(training)
    counts = np.bincount(pairs.cols[pairs.weights > 0], minlength=len(pairs.item_ids))
    by_id = dict(zip(pairs.item_ids.tolist(), counts.tolist(), strict=True))
    return np.array([by_id.get(item, 0) for item in artifact.item_ids], dtype=np.float32)


def evaluate(
    artifact: ModelArtifact,
    held_out: TrainingInteractions,
    k: int = 10,
    *,
    item_scores: npt.NDArray[np.float32] | None = None,
    auc_negatives: int = 100,
    max_users: int = 10_000,
    seed: int = 0,
) -> ModelMetrics:
    """Precision@k, recall@k and sampled AUC of the artifact's model on `held_out` (see the
    module docstring), or of the fixed ranking `item_scores` [n_items] when given. The metric
    fields are named for k = 10; with no evaluable user every metric is 0."""
    if k < 1:
        raise ValueError("k must be positive")
    n_items = len(artifact.item_ids)
    rng = np.random.default_rng(seed)
    users, items = _relevant_pairs(artifact, held_out)
    if len(users) == 0 or n_items == 0:
        return ModelMetrics(0.0, 0.0, 0.0)
    candidates = np.unique(users)
    if len(candidates) > max_users:
        chosen = np.isin(users, rng.choice(candidates, size=max_users, replace=False))
        users, items = users[chosen], items[chosen]
    known = items >= 0
    seen_keys = _seen_keys(artifact)
    relevant_keys = np.sort(users[known] * n_items + items[known])
    eval_users, n_relevant = np.unique(users, return_counts=True)
    hits = np.concatenate(
        [
            _hits(artifact, eval_users[part], k, item_scores, relevant_keys)
            for part in user_batches(len(eval_users), n_items)
        ]
    )
    auc = _sampled_auc(
        artifact,
        users[known],
        items[known],
        seen_keys=seen_keys,
        relevant_keys=relevant_keys,
        item_scores=item_scores,
        negatives=auc_negatives,
        rng=rng,
    )
    return ModelMetrics(
        precision_at_10=float(np.mean(hits / k)),
        recall_at_10=float(np.mean(hits / n_relevant)),
        auc=auc,
    )


def _relevant_pairs(
    artifact: ModelArtifact, held_out: TrainingInteractions
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(model user index, model item index or -1 if unknown) of every relevant pair."""
    pairs = aggregate_pairs(held_out)
    user_index = {user: i for i, user in enumerate(artifact.user_ids)}
    item_index = {item: i for i, item in enumerate(artifact.item_ids)}
    user_map = np.array([user_index.get(u, -1) for u in pairs.user_ids.tolist()], dtype=np.int64)
    item_map = np.array([item_index.get(v, -1) for v in pairs.item_ids.tolist()], dtype=np.int64)
    positive = pairs.weights > 0
    users = user_map[pairs.rows[positive]]
    items = item_map[pairs.cols[positive]]
    users, items = users[users >= 0], items[users >= 0]
    n_items = len(artifact.item_ids)
    seen = (items >= 0) & np.isin(users * n_items + items, _seen_keys(artifact))
    return users[~seen], items[~seen]


def _seen_keys(artifact: ModelArtifact) -> npt.NDArray[np.int64]:
    """user * n_items + item for every training pair, ascending (CSR order)."""
    per_user = np.diff(artifact.seen_indptr)
    owners = np.repeat(np.arange(len(artifact.user_ids), dtype=np.int64), per_user)
    return owners * len(artifact.item_ids) + artifact.seen_indices


def _hits(
    artifact: ModelArtifact,
    users: npt.NDArray[np.int64],
    k: int,
    item_scores: npt.NDArray[np.float32] | None,
    relevant_keys: npt.NDArray[np.int64],
) -> npt.NDArray[np.int64]:
    n_items = len(artifact.item_ids)
    if item_scores is None:
        scores = artifact.user_embeddings[users] @ artifact.item_embeddings.T
        scores += artifact.ranking_biases
    else:
        scores = np.tile(np.asarray(item_scores, dtype=np.float32), (len(users), 1))
    starts, ends = artifact.seen_indptr[users], artifact.seen_indptr[users + 1]
    lengths = ends - starts
    row = np.repeat(np.arange(len(users)), lengths)
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    scores[row, artifact.seen_indices[np.repeat(starts, lengths) + offsets]] = -np.inf
    top = np.argpartition(-scores, min(k, n_items) - 1, axis=1)[:, :k]
    found = np.isin(users[:, None] * n_items + top, relevant_keys)
    return np.asarray(found.sum(axis=1), dtype=np.int64)


def _sampled_auc(
    artifact: ModelArtifact,
    users: npt.NDArray[np.int64],
    items: npt.NDArray[np.int64],
    *,
    seen_keys: npt.NDArray[np.int64],
    relevant_keys: npt.NDArray[np.int64],
    item_scores: npt.NDArray[np.float32] | None,
    negatives: int,
    rng: np.random.Generator,
) -> float:
    n_items = len(artifact.item_ids)
    auc_users = np.unique(users)
    if len(auc_users) == 0 or negatives < 1:
        return 0.0
    neg_users = np.repeat(auc_users, negatives)
    neg_items = rng.integers(0, n_items, size=len(neg_users))
    neg_keys = neg_users * n_items + neg_items
    unseen = ~np.isin(neg_keys, seen_keys) & ~np.isin(neg_keys, relevant_keys)
    neg_users, neg_items = neg_users[unseen], neg_items[unseen]

    def score(u: npt.NDArray[np.int64], i: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        if item_scores is not None:
            return np.asarray(item_scores, dtype=np.float32)[i]
        dots = np.einsum("ij,ij->i", artifact.user_embeddings[u], artifact.item_embeddings[i])
        return np.asarray(dots + artifact.ranking_biases[i], dtype=np.float32)

    pos_scores, neg_scores = score(users, items), score(neg_users, neg_items)
    # Rank all scores jointly, then key by (user, rank): one sorted array answers "how many of
    # this user's negatives score below / at most this" for every positive at once.
    _, ranks = np.unique(np.concatenate((pos_scores, neg_scores)), return_inverse=True)
    stride = int(ranks.max()) + 2
    pos_keys = users * stride + ranks[: len(pos_scores)]
    neg_sorted = np.sort(neg_users * stride + ranks[len(pos_scores) :])
    first = np.searchsorted(neg_sorted, users * stride, "left")
    n_neg = np.searchsorted(neg_sorted, users * stride + stride - 1, "left") - first
    below = np.searchsorted(neg_sorted, pos_keys, "left") - first
    at_most = np.searchsorted(neg_sorted, pos_keys, "right") - first
    usable = n_neg > 0
    share = (below[usable] + at_most[usable]) / (2.0 * n_neg[usable])
    groups, group_of = np.unique(users[usable], return_inverse=True)
    if len(groups) == 0:
        return 0.0
    per_user = np.bincount(group_of, weights=share) / np.bincount(group_of)
    return float(per_user.mean())


def ranking_quality(
    artifact: ModelArtifact, held_out: TrainingInteractions, k: int = 10, *, max_users: int = 10_000
) -> tuple[float, float]:
    """(precision@k, NDCG@k) on `held_out` under the module's protocol (binary relevance;
    the ideal DCG puts min(relevant, k) hits first), ranking as the scorer does."""
    return blend_quality(artifact, held_out, (1.0,), k, max_users=max_users)[0]


def blend_quality(
    artifact: ModelArtifact,
    held_out: TrainingInteractions,
    prior_weights: Sequence[float],
    k: int = 10,
    *,
    max_users: int = 10_000,
    neighbours: CoOccurrence | None = None,
    neighbour_weights: Sequence[float] = (0.0,),
) -> list[tuple[float, float]]:
    """`ranking_quality` with the artifact's prior times each of `prior_weights` in place of
    the prior, and, with `neighbours` (a co-occurrence component in the artifact's user and
    item order), that component times each of `neighbour_weights` (in units of the model's
    score spread) added: one score matrix for every blend (what the nightly search ranks trials
    by). One (precision@k, NDCG@k) per (neighbour weight, prior weight), neighbour weight
    outermost."""
    users, items = _relevant_pairs(artifact, held_out)
    n_items = len(artifact.item_ids)
    blends = [(n, w) for n in neighbour_weights for w in prior_weights]
    if len(users) == 0 or n_items == 0:
        return [(0.0, 0.0)] * len(blends)
    eval_users, n_relevant = np.unique(users, return_counts=True)
    if len(eval_users) > max_users:
        keep = np.random.default_rng(0).choice(len(eval_users), size=max_users, replace=False)
        eval_users, n_relevant = eval_users[keep], n_relevant[keep]
    known = items >= 0
    relevant_keys = np.sort(users[known] * n_items + items[known])
    shown = min(k, n_items)
    discounts = 1.0 / np.log2(np.arange(2, shown + 2))
    assert artifact.item_prior is not None
    hits = np.zeros((len(blends), len(eval_users)))
    gains = np.zeros((len(blends), len(eval_users)))
    ratio = (
        spread_ratio(artifact.user_embeddings, artifact.item_embeddings, neighbours)
        if neighbours is not None
        else 0.0
    )
    for part in user_batches(len(eval_users), n_items):
        batch = eval_users[part]
        ideal = np.cumsum(discounts)[np.minimum(n_relevant[part], shown) - 1]
        plain = artifact.user_embeddings[batch] @ artifact.item_embeddings.T
        plain += artifact.item_biases
        for row, user in enumerate(batch.tolist()):
            plain[row, artifact.seen_by(user)] = -np.inf
        extra = neighbours.scores(batch) * np.float32(ratio) if neighbours is not None else None
        for w, (neighbour, weight) in enumerate(blends):
            scores = plain + np.float32(weight) * artifact.item_prior
            if extra is not None and neighbour > 0:
                scores += np.float32(neighbour) * extra
            top = np.argpartition(-scores, shown - 1, axis=1)[:, :shown]
            order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
            top = np.take_along_axis(top, order, axis=1)
            found = np.isin(batch[:, None] * n_items + top, relevant_keys)
            hits[w, part], gains[w, part] = found.sum(axis=1), (found @ discounts) / ideal
    return [(float(h.mean() / k), float(g.mean())) for h, g in zip(hits, gains, strict=True)]
