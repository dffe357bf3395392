"""The candidate pool of a new feed session: which source ranks it, the fallback, and what the
viewer's recent state removes, rotates and adds.

1. The viewer's state (`domain.viewer_state`) is read once: seen videos are excluded from every
   source, recently served ones are asked to be left out too, fresh positives go to the source
   (the model folds them in). When the history cannot be read, the pool is built without it
   (staler, counted in `feed.viewer_state.unavailable`), never failing.
2. The variant's source (or the default) ranks; a failure, or an empty answer (`cold_start`),
   falls back to the fallback source (trending) with the reason. A variant whose source is
   the fallback itself is a control group (`experiment_control`).
3. If the pool came out short because recently served videos were left out, they come back at
   its end, least recently served first (`rotate`).
4. Exploration places go to videos the model does not know yet, except in a control group,
   whose feed stays exactly the control's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from domain.errors import DependencyUnavailable
from domain.experiments import Variant
from domain.exploration import ExplorationBoard, with_exploration
from domain.feed import (
    Algorithm,
    FallbackReason,
    Personalization,
    Ranking,
    RankRequest,
    RecommendationFailed,
    ScoredVideo,
)
from domain.viewer_state import UNKNOWN, ViewerState, ViewerStatePolicy, rotate, viewer_state

if TYPE_CHECKING:
    from ports.clock import Clock
    from ports.observability import Metrics
    from ports.recommender import RecommendationSource
    from ports.repositories import ViewerHistory

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeedSources:
    """The sources by name, the one serving viewers outside any experiment variant that names
    another (`default`), and the one every failure falls back to (`fallback`)."""

    by_name: Mapping[Algorithm, RecommendationSource]
    default: Algorithm = Algorithm.LIGHTFM
    fallback: Algorithm = Algorithm.TRENDING

    def __post_init__(self) -> None:
        for name in (self.default, self.fallback):
            if name not in self.by_name:
                raise ValueError(f"no recommendation source is configured for {name.value!r}")
        for name, source in self.by_name.items():
            if source.name is not name:
                raise ValueError(f"source {source.name.value!r} is registered as {name.value!r}")


@dataclass(frozen=True)
class PoolPolicy:
    """`timeout_s`: the budget of the source's calls, retries included, counted from the start of
    building the pool (seconds), so reading the viewer's history and a second call come out of
    it rather than adding to it; `size`: the pool
    a session's pages are cut from; `exploration_share`: the share of places for new videos."""

    timeout_s: float = 0.150
    size: int = 500
    exploration_share: float = 0.0
    viewer: ViewerStatePolicy = field(default_factory=ViewerStatePolicy)


@dataclass(frozen=True)
class Pool:
    algorithm: Algorithm
    fallback_reason: FallbackReason | None
    model_version: str | None
    personalization: Personalization
    candidates: tuple[ScoredVideo, ...]


class PoolBuilder:
    def __init__(
        self,
        sources: FeedSources,
        policy: PoolPolicy,
        *,
        metrics: Metrics,
        clock: Clock,
        history: ViewerHistory | None = None,
        exploration: ExplorationBoard | None = None,
    ) -> None:
        self._sources = sources
        self._policy = policy
        self._metrics = metrics
        self._clock = clock
        self._history = history
        self._exploration = exploration

    @property
    def sources(self) -> FeedSources:
        return self._sources

    def build(self, user_id: str, variant: Variant | None, spent_s: float = 0.0) -> Pool:
        """Raises DependencyUnavailable when neither the source nor the fallback can answer.
        `spent_s`: what the request had spent before (the budget runs from its arrival)."""
        budget_s = max(0.0, self._policy.timeout_s - spent_s)
        deadline = self._clock.now() + timedelta(seconds=budget_s)
        state = self._viewer_state(user_id)
        chosen = variant.algorithm if variant and variant.algorithm else self._sources.default
        if chosen is self._sources.fallback and variant is not None:
            reason = FallbackReason.EXPERIMENT_CONTROL
        else:
            started = time.perf_counter()
            try:
                ranking = self._rank(chosen, user_id, state, deadline)
            except RecommendationFailed as failure:
                reason = failure.reason
            else:
                if ranking.items:
                    return self._pool(ranking, None, state, explore=True)
                # The source knows the viewer but has nothing unseen left: the fallback it is.
                reason = FallbackReason.COLD_START
            finally:
                elapsed_ms = (time.perf_counter() - started) * 1000
                self._metrics.timing("feed.model.call_ms", elapsed_ms, {"source": chosen.value})
        self._metrics.fallback(reason, variant.id if variant else None)
        try:
            # The fallback answers from memory: its own budget, not what the source left.
            fallback = self._rank(
                self._sources.fallback,
                user_id,
                state,
                self._clock.now() + timedelta(seconds=self._policy.timeout_s),
            )
        except RecommendationFailed as failure:
            raise DependencyUnavailable(
                self._sources.fallback.value,
                f"the source failed ({reason.value}) and so did the fallback ({failure.detail})",
            ) from failure
        explore = reason is not FallbackReason.EXPERIMENT_CONTROL
        return self._pool(fallback, reason, state, explore=explore)

    def _viewer_state(self, user_id: str) -> ViewerState:
        if self._history is None:
            return ViewerState()
        policy = self._policy.viewer
        now = self._clock.now()
        try:
            interactions, served = self._history.recent(
                user_id,
                now - policy.seen_ttl,
                now - policy.rotation,
                policy.max_seen,
                policy.max_pages,
            )
        except DependencyUnavailable as err:
            log.warning("viewer state unavailable", extra={"error": err.message})
            self._metrics.increment("feed.viewer_state.unavailable")
            return UNKNOWN
        return viewer_state(interactions, served, policy, now)

    def _rank(
        self, name: Algorithm, user_id: str, state: ViewerState, deadline: datetime
    ) -> Ranking:
        source = self._sources.by_name[name]
        request = RankRequest(
            user_id,
            self._policy.size,
            state.exclusions,
            state.fresh_positives,
            self._remaining_s(deadline),
        )
        ranking = source.rank(request)
        if len(ranking.items) < self._policy.size and state.recently_served:
            # Candidates ran out once the recently served were left out: ask again with the
            # seen ones only, so the least recently served can come back at the pool's end.
            try:
                again = source.rank(
                    replace(
                        request,
                        exclude=tuple(sorted(state.seen)),
                        timeout_s=self._remaining_s(deadline),
                    )
                )
            except RecommendationFailed:
                return ranking
            items = (*ranking.items, *again.items)
            return replace(ranking, items=items)
        return ranking

    def _remaining_s(self, deadline: datetime) -> float:
        """What is left of a budget ending at `deadline`; raises `RecommendationFailed`
        (DEADLINE) when nothing is: a call with no time left cannot answer."""
        remaining = (deadline - self._clock.now()).total_seconds()
        if remaining <= 0:
            raise RecommendationFailed(FallbackReason.DEADLINE, "the budget was spent before")
        return remaining

    def _pool(
        self, ranking: Ranking, reason: FallbackReason | None, state: ViewerState, explore: bool
    ) -> Pool:
        candidates = rotate(ranking.items, state, self._policy.size)
        if explore and self._exploration is not None:
            candidates = with_exploration(
                candidates,
                self._exploration.current().items,
                self._policy.exploration_share,
                set(state.exclusions),
            )
        return Pool(
            ranking.algorithm,
            reason,
            ranking.model_version,
            ranking.personalization,
            candidates,
        )
