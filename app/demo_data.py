"""Synthetic viewing history with planted tastes: the demo catalogue, and the data that tests
and benchmarks train on.

Every user and video belongs to one of `n_clusters` taste clusters. A user's events go to
videos of their own cluster with probability IN_CLUSTER_SHARE, else to any video; within
either pool, videos are chosen with a Zipf-like popularity skew, and clusters themselves differ
in size. In-cluster events are mostly positive (views, completes, likes, ...), out-of-cluster
ones mostly skips and hides. Everything is vectorised numpy: ten million rows take seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from adapters.lightfm.interactions import INTERACTION_TYPES, TrainingInteractions
from domain.interactions import InteractionEvent, InteractionType, StoredInteraction

DEMO_USERS = 1_000
DEMO_VIDEOS = 5_000
DEMO_INTERACTIONS = 200_000
DEMO_DAYS = 30
IN_CLUSTER_SHARE = 0.8
#: Probability of each interaction type for in-cluster and out-of-cluster events.
_TYPE_MIX = {
    InteractionType.VIEW: (0.45, 0.25),
    InteractionType.COMPLETE: (0.20, 0.03),
    InteractionType.LIKE: (0.12, 0.01),
    InteractionType.SHARE: (0.04, 0.00),
    InteractionType.COMMENT: (0.04, 0.01),
    InteractionType.SKIP: (0.13, 0.55),
    InteractionType.HIDE: (0.02, 0.15),
}
_DAY_MS = 86_400_000


class SyntheticEvent(NamedTuple):
    user_id: str
    video_id: str
    interaction_type: InteractionType
    watch_time_ms: int
    occurred_at: datetime


@dataclass(frozen=True, eq=False)
class SyntheticInteractions:
    """Generated events in time order (same column meaning as `TrainingInteractions`), plus
    the planted truth: `user_clusters[u]` and `video_clusters[v]` per vocabulary code."""

    user_ids: npt.NDArray[np.str_]
    video_ids: npt.NDArray[np.str_]
    user_codes: npt.NDArray[np.int32]
    video_codes: npt.NDArray[np.int32]
    type_codes: npt.NDArray[np.int8]
    watch_time_ms: npt.NDArray[np.int64]
    occurred_at_ms: npt.NDArray[np.int64]
    user_clusters: npt.NDArray[np.int32]
    video_clusters: npt.NDArray[np.int32]

    def __len__(self) -> int:
        return int(self.user_codes.shape[0])

    def to_training(self) -> TrainingInteractions:
        return TrainingInteractions(
            self.user_ids,
            self.user_codes,
            self.video_ids,
            self.video_codes,
            self.type_codes,
            self.watch_time_ms,
            self.occurred_at_ms,
        )

    def events(self, batch_size: int = 10_000) -> Iterator[SyntheticEvent]:
        """Every event in time order, converted a batch at a time (for seeding a database)."""
        for start in range(0, len(self), batch_size):
            window = slice(start, start + batch_size)
            users = self.user_ids[self.user_codes[window]].tolist()
            videos = self.video_ids[self.video_codes[window]].tolist()
            types = self.type_codes[window].tolist()
            watches = self.watch_time_ms[window].tolist()
            moments = self.occurred_at_ms[window].tolist()
            for user, video, kind, watch, moment in zip(
                users, videos, types, watches, moments, strict=True
            ):
                occurred = datetime.fromtimestamp(moment / 1000, tz=UTC)
                yield SyntheticEvent(user, video, INTERACTION_TYPES[kind], watch, occurred)


def as_stored(events: Iterable[SyntheticEvent], id_prefix: str) -> Iterator[StoredInteraction]:
    """Generated events as stored history: event ids `<id_prefix>-<n>`, received when they
    happened, no recommendation score (for seeding a database)."""
    for index, event in enumerate(events):
        yield StoredInteraction(
            InteractionEvent(
                f"{id_prefix}-{index:07d}",
                event.user_id,
                event.video_id,
                event.interaction_type,
                event.watch_time_ms,
                event.occurred_at,
            ),
            event.occurred_at,
            None,
        )


def generate_interactions(
    n_users: int,
    n_videos: int,
    n_interactions: int,
    *,
    days: int,
    seed: int,
    end: datetime,
    n_clusters: int = 20,
    event_seed: int | None = None,
) -> SyntheticInteractions:
    """`n_interactions` events of `n_users` users on `n_videos` videos, spread uniformly over
    the `days` days before `end` (aware). Ids look like `u000123` and `v004567`. The same
    arguments always give the same data. With `event_seed`, the events are drawn from it and
    the tastes and popularity from `seed`: calls that differ only in it (and `end`) are days
    of one history, generated a day at a time."""
    if min(n_users, n_videos, days, n_clusters) < 1 or n_interactions < 0:
        raise ValueError("sizes must be positive")
    if end.utcoffset() is None:
        raise ValueError("end must be timezone-aware")
    rng = np.random.default_rng(seed)
    n_clusters = min(n_clusters, n_videos)
    cluster_share = _zipf(n_clusters, 0.7, rng)
    # Every cluster gets videos in proportion to its share, at least one each.
    video_clusters = np.repeat(
        np.arange(n_clusters, dtype=np.int32),
        _apportion(n_videos, cluster_share),
    )
    rng.shuffle(video_clusters)
    user_clusters = rng.choice(n_clusters, size=n_users, p=cluster_share).astype(np.int32)
    video_popularity = _zipf(n_videos, 1.0, rng)
    activity = rng.lognormal(0.0, 1.0, size=n_users)
    if event_seed is not None:
        rng = np.random.default_rng(event_seed)

    users = _sample(activity / activity.sum(), n_interactions, rng).astype(np.int32)
    in_cluster = rng.random(n_interactions) < IN_CLUSTER_SHARE
    videos = _sample(video_popularity, n_interactions, rng)
    videos[in_cluster] = _sample_in_cluster(
        video_clusters, video_popularity, user_clusters[users[in_cluster]], rng
    )
    types = _interaction_types(in_cluster, rng)
    durations = np.clip(rng.lognormal(np.log(30_000), 0.6, size=n_videos), 5_000, 180_000)
    watch = _watch_times(types, durations[videos], rng)
    end_ms = int(end.timestamp() * 1000)
    moments = rng.integers(end_ms - days * _DAY_MS, end_ms, size=n_interactions)
    order = np.argsort(moments, kind="stable")
    return SyntheticInteractions(
        user_ids=_ids("u", n_users),
        video_ids=_ids("v", n_videos),
        user_codes=users[order],
        video_codes=videos[order].astype(np.int32),
        type_codes=types[order],
        watch_time_ms=watch[order],
        occurred_at_ms=moments[order],
        user_clusters=user_clusters,
        video_clusters=video_clusters,
    )


def demo_interactions(end: datetime, seed: int = 7) -> SyntheticInteractions:
    """The demo history the product starts with."""
    return generate_interactions(
        DEMO_USERS,
        DEMO_VIDEOS,
        DEMO_INTERACTIONS,
        days=DEMO_DAYS,
        seed=seed,
        end=end.astimezone(UTC),
    )


def _zipf(n: int, exponent: float, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """Probabilities proportional to 1 / rank**exponent, ranks in random order."""
    weights = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    rng.shuffle(weights)
    return np.asarray(weights / weights.sum(), dtype=np.float64)


def _apportion(total: int, shares: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    counts = 1 + np.floor(shares * (total - len(shares))).astype(np.int64)
    counts[: total - counts.sum()] += 1  # the rounding remainder, a video each
    return counts


def _sample(
    probabilities: npt.NDArray[np.float64], size: int, rng: np.random.Generator
) -> npt.NDArray[np.int64]:
    cumulative = np.cumsum(probabilities)
    drawn = np.searchsorted(cumulative, rng.random(size) * cumulative[-1], "right")
    return np.asarray(np.minimum(drawn, len(cumulative) - 1), dtype=np.int64)


def _sample_in_cluster(
    video_clusters: npt.NDArray[np.int32],
    popularity: npt.NDArray[np.float64],
    wanted: npt.NDArray[np.int32],
    rng: np.random.Generator,
) -> npt.NDArray[np.int64]:
    """One video per entry of `wanted` (a cluster), by popularity within that cluster."""
    by_cluster = np.argsort(video_clusters, kind="stable")
    clusters = video_clusters[by_cluster]
    # Cluster c's videos cover (c, c + 1] of one cumulative scale, in proportion to their
    # popularity: a single searchsorted then samples every row from its own cluster.
    mass = popularity[by_cluster]
    totals = np.bincount(clusters, weights=mass)
    before = np.concatenate(([0.0], np.cumsum(totals)))[clusters]
    within = (np.cumsum(mass) - before) / totals[clusters]
    within[np.r_[clusters[1:] != clusters[:-1], True]] = 1.0  # no rounding gap at the edges
    scale = clusters + within
    targets = wanted + rng.random(len(wanted))
    positions = np.minimum(np.searchsorted(scale, targets, "right"), len(scale) - 1)
    return by_cluster[positions]


def _interaction_types(
    in_cluster: npt.NDArray[np.bool_], rng: np.random.Generator
) -> npt.NDArray[np.int8]:
    codes = np.array([INTERACTION_TYPES.index(kind) for kind in _TYPE_MIX], dtype=np.int8)
    inside = np.array([mix[0] for mix in _TYPE_MIX.values()])
    outside = np.array([mix[1] for mix in _TYPE_MIX.values()])
    types = codes[_sample(outside, len(in_cluster), rng)]
    types[in_cluster] = codes[_sample(inside, int(in_cluster.sum()), rng)]
    return types


def _watch_times(
    types: npt.NDArray[np.int8], durations: npt.NDArray[np.float64], rng: np.random.Generator
) -> npt.NDArray[np.int64]:
    """Watch time follows the type: a complete is the whole video (sometimes replayed), a like
    or share most of it, a view part of it, a skip or hide a moment."""
    share = rng.uniform(0.1, 0.9, size=len(types))
    code = {kind: INTERACTION_TYPES.index(kind) for kind in InteractionType}
    completes = types == code[InteractionType.COMPLETE]
    share[completes] = rng.uniform(1.0, 1.5, size=int(completes.sum()))
    engaged = np.isin(
        types,
        [code[k] for k in (InteractionType.LIKE, InteractionType.SHARE, InteractionType.COMMENT)],
    )
    share[engaged] = rng.uniform(0.5, 1.2, size=int(engaged.sum()))
    watch = share * durations
    brief = np.isin(types, [code[InteractionType.SKIP], code[InteractionType.HIDE]])
    watch[brief] = rng.uniform(0, 3_000, size=int(brief.sum()))
    return watch.astype(np.int64)


def _ids(prefix: str, n: int) -> npt.NDArray[np.str_]:
    width = max(6, len(str(n - 1)))
    return np.array([f"{prefix}{i:0{width}d}" for i in range(n)], dtype=np.str_)
