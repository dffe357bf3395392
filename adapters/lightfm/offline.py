"""`feedrec evaluate`'s protocol: two splits of a data set, one ranking per method, six figures.

- Splits. Per viewer: each viewer's events in time order, the last 20% (rounded down) held out.
  Global: every event in the last 20% of the data set's time span held out.
- Catalogue: the videos that occur in the training part; viewers: those of the training part.
- Candidates for a viewer: every catalogue video the viewer has no training event with (seen
  videos, positive or not, are neither ranked nor relevant).
- Relevant: the viewer's held-out positive pairs (`domain.model.pair_weight` > 0 over the
  held-out events), minus the videos seen in training. A relevant video outside the catalogue
  cannot be ranked, and still counts in recall's and NDCG's denominators (as in production).
- Evaluated viewers: viewers of the training part with at least one relevant video; at most
  `max_users` of them, a seeded sample.
- precision@10 = hits / 10; recall@10 = hits / relevant; NDCG@10 with binary gains, the ideal
  DCG placing min(relevant, 10) hits first; AUC over all candidates (ties count one half)
  per viewer with a relevant catalogue video; all averaged over viewers.
- Coverage: the share of the catalogue that is in at least one evaluated viewer's top 10.
  Novelty: the mean of -log2((n_i + 1) / (n_viewers + 1)) over every top-10 slot, n_i the
  number of training viewers with a positive pair on the video.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
from scipy.stats import rankdata

from adapters.lightfm.artifact import ModelArtifact
from adapters.lightfm.evaluation import user_batches
from adapters.lightfm.interactions import TrainingInteractions, aggregate_pairs
from adapters.lightfm.prior import decayed_positives

HELD_OUT_SHARE = 0.2
K = 10
#: The decayed-trending baseline's half-life, days: the product's prior uses the same.
TRENDING_HALF_LIFE_DAYS = 7.0
#: Cells of float64 scores per batch of users (`user_batches`): about 64 MiB.
_BATCH_CELLS = 1 << 23

#: Scores of the catalogue for a batch of viewer indices: [len(users), n_items] float32.
Ranking = Callable[[npt.NDArray[np.int64]], npt.NDArray[np.float32]]


@dataclass(frozen=True, eq=False)
class Split:
    name: str
    training: TrainingInteractions
    held_out: TrainingInteractions

    @property
    def start(self) -> datetime:
        return _moment(int(self.training.occurred_at_ms.min()))

    @property
    def end(self) -> datetime:
        """Just after the last training event."""
        return _moment(int(self.training.occurred_at_ms.max()) + 1)


@dataclass(frozen=True)
class Figures:
    precision_at_10: float
    recall_at_10: float
    ndcg_at_10: float
    auc: float
    coverage: float
    novelty: float
    users: int


def per_user_split(rows: TrainingInteractions, share: float = HELD_OUT_SHARE) -> Split:
    """Each viewer's last `share` of events (by time, rounded down) held out."""
    order = np.lexsort((rows.occurred_at_ms, rows.user_codes))
    users = rows.user_codes[order]
    counts = np.bincount(users, minlength=len(rows.user_vocab))
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    position = np.arange(len(order)) - first[users]
    held = position >= counts[users] - np.floor(counts[users] * share).astype(np.int64)
    return Split("per-user", rows.take(np.sort(order[~held])), rows.take(np.sort(order[held])))


def time_split(rows: TrainingInteractions, share: float = HELD_OUT_SHARE) -> Split:
    """Every event of the last `share` of the time span held out."""
    first, last = int(rows.occurred_at_ms.min()), int(rows.occurred_at_ms.max())
    cut = first + (last - first) * (1.0 - share)
    held = rows.occurred_at_ms >= cut
    return Split("global-time", rows.take(~held), rows.take(held))


class Catalogue:
    """The training part's viewers and videos (`aggregate_pairs` order, the order a model
    trained on it has) and what each viewer saw."""

    def __init__(self, training: TrainingInteractions) -> None:
        pairs = aggregate_pairs(training)
        self.user_ids = pairs.user_ids
        self.item_ids = pairs.item_ids
        self.indptr = pairs.indptr()
        self.seen = pairs.cols
        # Pairs are distinct, so counting positive pairs per video counts viewers.
        self.viewers_per_item = np.bincount(
            pairs.cols[pairs.weights > 0], minlength=len(self.item_ids)
        )
        self.training = training

    def popularity(self) -> Ranking:
        """The popularity baseline: training viewers with a positive pair, per video."""
        return _fixed(self.viewers_per_item.astype(np.float32))

    def trending(self, at: datetime, half_life_days: float = TRENDING_HALF_LIFE_DAYS) -> Ranking:
        """The decayed-trending baseline: positive events decayed by age at `at`."""
        videos, counts = decayed_positives(self.training, at, half_life_days)
        by_id = dict(zip(videos.tolist(), counts.tolist(), strict=True))
        return _fixed(np.array([by_id.get(v, 0.0) for v in self.item_ids.tolist()], np.float32))

    def model(self, artifact: ModelArtifact) -> Ranking:
        """A LightFM model trained on this training part, scored as the service scores it."""
        same = (artifact.item_ids, artifact.user_ids) == (
            self.item_ids.tolist(),
            self.user_ids.tolist(),
        )
        if not same:
            raise ValueError("the model was not trained on this catalogue")

        def scores(users: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
            product = artifact.user_embeddings[users] @ artifact.item_embeddings.T
            return np.asarray(product + artifact.ranking_biases, dtype=np.float32)

        return scores

    def measure(
        self, ranking: Ranking, held_out: TrainingInteractions, *, max_users: int = 10_000
    ) -> Figures:
        """The module docstring's figures of `ranking` on `held_out`."""
        users, items = self._relevant(held_out)
        eval_users, n_relevant = np.unique(users, return_counts=True)
        if len(eval_users) > max_users:
            keep = np.sort(np.random.default_rng(0).choice(len(eval_users), max_users, False))
            eval_users, n_relevant = eval_users[keep], n_relevant[keep]
        if len(eval_users) == 0 or len(self.item_ids) == 0:
            return Figures(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0)
        n_items = len(self.item_ids)
        known = items >= 0
        relevant_keys = np.sort(users[known] * n_items + items[known])
        k = min(K, n_items)
        discounts = 1.0 / np.log2(np.arange(2, K + 2))
        hits, dcg, aucs, shown = [], [], [], np.zeros(n_items, dtype=bool)
        novelty_sum = 0.0
        information = -np.log2((self.viewers_per_item + 1) / (len(self.user_ids) + 1))
        for part in user_batches(len(eval_users), n_items, _BATCH_CELLS):
            batch = eval_users[part]
            scores = np.array(ranking(batch), dtype=np.float64)
            seen_rows, seen_cols = self._seen_cells(batch)
            scores[seen_rows, seen_cols] = -np.inf
            top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            top = np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, 1), 1), 1)
            found = np.isin(batch[:, None] * n_items + top, relevant_keys)
            hits.append(found.sum(axis=1))
            dcg.append(found @ discounts[:k])
            shown[top.ravel()] = True
            novelty_sum += float(information[top].sum())
            aucs.append(self._auc(batch, scores, relevant_keys))
        hit = np.concatenate(hits)
        ideal = np.cumsum(discounts)[np.minimum(n_relevant, K) - 1]
        auc = np.concatenate(aucs)
        return Figures(
            precision_at_10=float(np.mean(hit / K)),
            recall_at_10=float(np.mean(hit / n_relevant)),
            ndcg_at_10=float(np.mean(np.concatenate(dcg) / ideal)),
            auc=float(np.nanmean(auc)) if np.isfinite(auc).any() else 0.0,
            coverage=float(shown.mean()),
            novelty=novelty_sum / (len(eval_users) * k),
            users=len(eval_users),
        )

    def _relevant(
        self, held_out: TrainingInteractions
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """(viewer index, catalogue index or -1) of every relevant pair."""
        pairs = aggregate_pairs(held_out)
        user_map = _index_of(self.user_ids, pairs.user_ids)
        item_map = _index_of(self.item_ids, pairs.item_ids)
        positive = pairs.weights > 0
        users, items = user_map[pairs.rows[positive]], item_map[pairs.cols[positive]]
        users, items = users[users >= 0], items[users >= 0]
        n_items = len(self.item_ids)
        owners = np.repeat(np.arange(len(self.user_ids), dtype=np.int64), np.diff(self.indptr))
        seen_keys = owners * n_items + self.seen
        seen = (items >= 0) & np.isin(users * n_items + items, seen_keys)
        return users[~seen], items[~seen]

    def _seen_cells(
        self, users: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        starts, ends = self.indptr[users], self.indptr[users + 1]
        lengths = ends - starts
        rows = np.repeat(np.arange(len(users)), lengths)
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return rows, self.seen[np.repeat(starts, lengths) + offsets]

    def _auc(
        self,
        users: npt.NDArray[np.int64],
        scores: npt.NDArray[np.float64],
        relevant_keys: npt.NDArray[np.int64],
    ) -> npt.NDArray[np.float64]:
        """Per viewer: P(a relevant candidate outscores another candidate), NaN without one."""
        n_items = scores.shape[1]
        relevant = np.isin(users[:, None] * n_items + np.arange(n_items), relevant_keys)
        n_seen = np.diff(self.indptr)[users]
        n_pos = relevant.sum(axis=1)
        n_neg = n_items - n_seen - n_pos
        finite = np.where(np.isfinite(scores), scores, np.finfo(np.float64).min)
        ranks = rankdata(finite, axis=1)  # average ranks: ties count one half
        # Rank - 1 counts items below (ties half): minus the seen (all lowest) and the
        # relevant ones among themselves leaves the (relevant, other candidate) wins.
        below = np.where(relevant, ranks - 1, 0).sum(axis=1)
        wins = below - n_pos * n_seen - n_pos * (n_pos - 1) / 2
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where((n_pos > 0) & (n_neg > 0), wins / (n_pos * n_neg), np.nan)


def _fixed(item_scores: npt.NDArray[np.float32]) -> Ranking:
    def scores(users: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        return np.tile(item_scores, (len(users), 1))

    return scores


def _index_of(known: npt.NDArray[np.str_], ids: npt.NDArray[np.str_]) -> npt.NDArray[np.int64]:
    """Position of each of `ids` in `known`, -1 where absent."""
    position = {item: i for i, item in enumerate(known.tolist())}
    return np.array([position.get(item, -1) for item in ids.tolist()], dtype=np.int64)


def _moment(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
