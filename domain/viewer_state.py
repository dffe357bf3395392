"""What the feed knows of a viewer right now: what they must not see again, what they were
served lately, and what they liked since the model last trained.

The state is read from the service's own database at the start of each feed session (one query,
see `ports.repositories.ViewerHistory`), so it is exact from the moment an interaction's 202 is
sent, survives the restart of every process and needs no new store. Per viewer it is bounded by
`ViewerStatePolicy`: at most `max_seen` seen videos, `max_served` recently served ones and
`max_positives` fresh positives, the newest of each kept.

Rules:
- **Never again.** Any interaction (any type) with a video hides it from the viewer's later
  sessions for `seen_ttl`; a `hide` for as long as the interaction is stored.
- **Rotation.** Videos served in the viewer's sessions of the last `rotation` window go to the
  back of a new session's pool: the pool takes every other candidate first, then the recently
  served ones, least recently served first (`rotate`).
- **Fresh positives.** Per video, the pair weight of the viewer's events (`domain.model`); a
  video with a positive weight is evidence of taste that a source may fold in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from itertools import starmap
from operator import itemgetter
from typing import NamedTuple

from domain.feed import FreshPositive, ScoredVideo
from domain.interactions import InteractionType
from domain.model import interaction_weight, pair_weight


@dataclass(frozen=True)
class ViewerStatePolicy:
    """`seen_ttl`: how long an interacted video stays out of the feed; `rotation`: how far
    back served videos go to the back of a new session's pool; the `max_*` bound the state."""

    seen_ttl: timedelta = timedelta(days=30)
    rotation: timedelta = timedelta(hours=6)
    max_seen: int = 5_000
    max_served: int = 2_000
    max_positives: int = 200
    #: how many of the viewer's newest pages the rotation reads
    max_pages: int = 200


class RecentInteraction(NamedTuple):
    """One stored interaction of the viewer, as the history store returns it. (Named tuples
    here, like `ScoredVideo`: a state read builds hundreds, on the feed's hot path.)"""

    video_id: str
    interaction_type: InteractionType
    watch_time_ms: int
    occurred_at: datetime


class ServedVideo(NamedTuple):
    """A video served on one of the viewer's pages, and when that page was served."""

    video_id: str
    served_at: datetime


@dataclass(frozen=True)
class ViewerState:
    """`seen`: never to be served again; `recently_served`: when each video was last served,
    most recent first, none of them seen; `fresh_positives`: newest first. `known` is False
    when the history could not be read (the feed then serves without it: staler, never
    failing)."""

    seen: frozenset[str] = frozenset()
    recently_served: tuple[ServedVideo, ...] = ()
    fresh_positives: tuple[FreshPositive, ...] = ()
    known: bool = True

    @cached_property
    def exclusions(self) -> tuple[str, ...]:
        """What a source must not return for a new session's pool: seen, then served lately."""
        return (*sorted(self.seen), *(served.video_id for served in self.recently_served))


UNKNOWN = ViewerState(known=False)


def viewer_state(
    interactions: Iterable[RecentInteraction],
    served: Iterable[ServedVideo],
    policy: ViewerStatePolicy,
    now: datetime,
) -> ViewerState:
    """The state from the viewer's stored rows (any order, any age; the rules pick)."""
    seen_since = now - policy.seen_ttl
    newest: dict[str, datetime] = {}
    weights: dict[str, list[float]] = defaultdict(list)
    hidden: set[str] = set()
    for row in interactions:
        if row.interaction_type is InteractionType.HIDE:
            hidden.add(row.video_id)
        if row.occurred_at < seen_since and row.interaction_type is not InteractionType.HIDE:
            continue
        if row.video_id not in newest or row.occurred_at > newest[row.video_id]:
            newest[row.video_id] = row.occurred_at
        weights[row.video_id].append(interaction_weight(row.interaction_type, row.watch_time_ms))
    by_recency = sorted(newest, key=lambda video: (newest[video], video), reverse=True)
    seen = frozenset(by_recency[: policy.max_seen]) | hidden
    positives = tuple(
        FreshPositive(video, weight, newest[video])
        for video in by_recency
        if (weight := pair_weight(weights[video], video in hidden)) > 0
    )[: policy.max_positives]
    served_since = now - policy.rotation
    # Every served item passes through here (twenty per page the viewer was served lately), so
    # the loop does no more than it must; seen videos leave afterwards, in one set operation.
    last_served: dict[str, datetime] = {}
    latest = last_served.get
    for video_id, served_at in served:
        if served_at >= served_since:
            previous = latest(video_id)
            if previous is None or served_at > previous:
                last_served[video_id] = served_at
    for video_id in seen.intersection(last_served):
        del last_served[video_id]
    recently = sorted(last_served.items(), key=itemgetter(1), reverse=True)
    served_lately = tuple(starmap(ServedVideo, recently[: policy.max_served]))
    return ViewerState(seen, served_lately, positives)


def rotate(
    ranked: Sequence[ScoredVideo], state: ViewerState, size: int
) -> tuple[ScoredVideo, ...]:
    """A new session's pool of at most `size`: `ranked` (best first) without seen videos, the
    ones not served lately first in their order, then the recently served ones, least recently
    served first (videos served at the same moment in `ranked`'s order). Scores stay
    non-increasing: a returning video is scored no higher than the item before it. A video
    listed twice counts once, at its first place."""
    served_at = {served.video_id: served.served_at for served in state.recently_served}
    # The usual case on the feed's hot path: the source already left the seen and the recently
    # served out, and lists each video once. Set operations in C tell it without a Python loop
    # over the whole ranking.
    ids = [item.video_id for item in ranked]
    unique = set(ids)
    if len(unique) == len(ids) and unique.isdisjoint(state.seen) and unique.isdisjoint(served_at):
        return tuple(ranked[:size])
    fresh: list[ScoredVideo] = []
    placed: set[str] = set()
    returning: dict[str, ScoredVideo] = {}
    for item in ranked:
        if item.video_id in state.seen or item.video_id in placed:
            continue
        placed.add(item.video_id)
        if item.video_id in served_at:
            returning[item.video_id] = item
        else:
            fresh.append(item)
    pool = fresh[:size]
    floor = pool[-1].score if pool else None
    for video in sorted(returning, key=lambda v: served_at[v]):
        if len(pool) >= size:
            break
        item = returning[video]
        score = item.score if floor is None else min(item.score, floor)
        pool.append(ScoredVideo(item.video_id, score, item.source))
        floor = score
    return tuple(pool)
