"""The composition root of the web process; the other processes are built in
`app.composition`, from the same shared parts (`app.composition.common`, re-exported here).

Every part can be overridden (tests pass fakes or pre-built adapters). Building opens no
connection: engines and gRPC channels connect lazily, on first use; background work starts
only when the caller starts it.
"""

from __future__ import annotations

import functools
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from adapters.experiment_data import SqlExperimentData
from adapters.experiment_stats import ScipyExperimentStatistics
from adapters.kafka.health import KafkaHealth
from adapters.lightfm.client import GrpcRecommender, ModelServiceHealth
from adapters.sql.activity import SqlActivityReader
from adapters.sql.boards import SqlBoardStore
from adapters.sql.engine import make_engine
from adapters.sql.health import DatabaseHealth
from adapters.sql.leases import SqlLeases
from adapters.sql.session_recorder import SqlFeedSessionRecorder
from adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from adapters.sql.viewer_history import SqlViewerHistory
from adapters.system_clock import SystemClock
from adapters.trending_health import TrendingHealth
from adapters.web.dependencies import WebDependencies
from app.background import PeriodicTask
from app.composition.common import (
    analytics_from,
    cursor_codec,
    kafka_security,
    metrics_from,
    model_client_tls,
    token_codec,
)
from app.settings import Settings
from domain.board_sources import POPULARITY, BoardSource
from domain.experiment_report import ExperimentReporter
from domain.experiments import parse_experiment
from domain.exploration import ExplorationBoard
from domain.feed import Algorithm
from domain.feed_pool import FeedSources, PoolBuilder, PoolPolicy
from domain.feed_service import FeedService
from domain.ingestion import InteractionIngestion
from domain.shared_boards import (
    Payload,
    SharedRefresh,
    StoredBoard,
    exploration_from_stored,
    exploration_payload,
    trending_from_stored,
    trending_payload,
)
from domain.trending import TrendingBoard
from domain.viewer_state import ViewerStatePolicy
from ports.auth import TokenVerifier
from ports.clock import Clock
from ports.experiments import ExperimentData
from ports.health import HealthCheck
from ports.observability import Analytics, Metrics
from ports.recommender import ModelCatalogue, RecommendationSource
from ports.repositories import (
    ActivityReader,
    BoardStore,
    EngagementReader,
    FeedSessionRecorder,
    Leases,
    UnitOfWork,
    ViewerHistory,
)

__all__ = [
    "Overrides",
    "WebComposition",
    "analytics_from",
    "build_web",
    "cursor_codec",
    "metrics_from",
    "token_codec",
]


@dataclass
class Overrides:
    """Parts a caller supplies instead of the ones the settings describe."""

    clock: Clock | None = None
    token_verifier: TokenVerifier | None = None
    unit_of_work: Callable[[], UnitOfWork] | None = None
    activity: ActivityReader | None = None
    #: the `lightfm` source
    recommender: RecommendationSource | None = None
    #: the model's catalogue (exploration); by default the `lightfm` client when it is built
    catalogue: ModelCatalogue | None = None
    #: the viewer's recent rows (and the engagement exploration ranks by)
    viewer_history: ViewerHistory | None = None
    engagement: EngagementReader | None = None
    analytics: Analytics | None = None
    metrics: Metrics | None = None
    health_checks: Sequence[HealthCheck] | None = None
    #: what `GET /experiments/report` reads; by default the service's database
    experiment_data: ExperimentData | None = None
    #: where the boards computed once per deployment are kept, and the leases that say which
    #: process computes each (domain/shared_boards.py); by default the service's database.
    #: Without a database (every storage part overridden) each process computes its own.
    boards: BoardStore | None = None
    leases: Leases | None = None
    #: this process's name as a lease holder
    holder: str | None = None


@dataclass
class WebComposition:
    """The web process's parts: what the routes need, and the background work to run."""

    dependencies: WebDependencies
    background: list[PeriodicTask] = field(default_factory=list)
    closers: list[Callable[[], object]] = field(default_factory=list)


def build_web(settings: Settings, overrides: Overrides | None = None) -> WebComposition:
    chosen = overrides or Overrides()
    clock = chosen.clock or SystemClock()
    checks: list[HealthCheck] = []
    closers: list[Callable[[], object]] = []
    unit_of_work, activity = chosen.unit_of_work, chosen.activity
    history, engagement = chosen.viewer_history, chosen.engagement
    sessions: FeedSessionRecorder | None = None  # None: through `unit_of_work`
    boards, leases = chosen.boards, chosen.leases
    if None in (unit_of_work, activity, history, engagement):
        engine = make_engine(settings.resolved_database_url)
        if boards is None and leases is None:
            boards, leases = SqlBoardStore(engine), SqlLeases(engine)
        closers.append(engine.dispose)
        checks.append(DatabaseHealth(engine))
        if unit_of_work is None:
            unit_of_work = SqlUnitOfWorkFactory(engine)
            recorder = SqlFeedSessionRecorder(engine)
            closers.append(recorder.close)
            sessions = recorder
        activity = activity or SqlActivityReader(engine)
        if history is None or engagement is None:
            sql_history = SqlViewerHistory(engine)
            closers.append(sql_history.close)
            history, engagement = history or sql_history, engagement or sql_history
    assert unit_of_work is not None and activity is not None
    assert history is not None and engagement is not None
    metrics = chosen.metrics or metrics_from(settings)
    analytics = chosen.analytics or analytics_from(settings)
    recommender, catalogue = chosen.recommender, chosen.catalogue
    if recommender is None:
        client = GrpcRecommender(
            settings.lightfm_target,
            breaker_failures=settings.lightfm_breaker_failures,
            breaker_cooldown_s=settings.lightfm_breaker_cooldown_s,
            metrics=metrics,
            tls=model_client_tls(settings),
        )
        closers.append(client.close)
        checks.append(ModelServiceHealth(settings.lightfm_target, tls=model_client_tls(settings)))
        recommender, catalogue = client, catalogue or client
    trending = TrendingBoard(activity, size=settings.trending_size)
    popularity = TrendingBoard(activity, size=settings.trending_size, formula=POPULARITY)
    checks.append(TrendingHealth(trending))
    # The API answers without Kafka (events wait in the outbox); readiness still shows it.
    checks.append(KafkaHealth(settings.kafka_bootstrap_servers, security=kafka_security(settings)))
    sources = FeedSources(
        {
            Algorithm.LIGHTFM: recommender,
            Algorithm.TRENDING: BoardSource(Algorithm.TRENDING, trending),
            Algorithm.POPULARITY: BoardSource(Algorithm.POPULARITY, popularity),
        }
    )
    exploration = ExplorationBoard(engagement, catalogue) if catalogue is not None else None
    pools = PoolBuilder(
        sources,
        PoolPolicy(
            timeout_s=settings.lightfm_deadline_ms / 1000,
            size=settings.feed_pool_size,
            exploration_share=settings.feed_exploration,
            viewer=ViewerStatePolicy(
                seen_ttl=timedelta(seconds=settings.feed_seen_ttl_s),
                rotation=timedelta(seconds=settings.feed_rotation_s),
            ),
        ),
        metrics=metrics,
        clock=clock,
        history=history,
        exploration=exploration,
    )
    feed = FeedService(
        unit_of_work,
        sessions=sessions,
        pools=pools,
        analytics=analytics,
        clock=clock,
        cursors=cursor_codec(settings),
        experiment=parse_experiment(settings.feed_experiment),
    )
    closers += [analytics.close, metrics.close]
    dependencies = WebDependencies(
        token_verifier=chosen.token_verifier or token_codec(settings),
        ingestion=InteractionIngestion(unit_of_work, clock, settings.kafka_topic, analytics),
        feed=feed,
        trending=trending,
        metrics=metrics,
        health_checks=chosen.health_checks if chosen.health_checks is not None else checks,
        max_request_bytes=settings.max_request_bytes,
        rate_limit_feed=settings.rate_limit_feed,
        rate_limit_interactions=settings.rate_limit_interactions,
        rate_limit_storage_uri=settings.rate_limit_storage_uri,
        experiment_reporter=_experiment_reporter(settings, chosen.experiment_data, closers),
    )
    holder = chosen.holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    sharing = None if boards is None or leases is None else _Sharing(boards, leases, holder)
    background = _background(
        settings, clock, sharing, trending=trending, popularity=popularity, exploration=exploration
    )
    return WebComposition(dependencies, background, closers)


#: A board's lease outlives this many of its refresh intervals: a holder that dies unnoticed
#: leaves the board this stale at most before another process takes the job over.
LEASE_INTERVALS = 3

S = TypeVar("S")


class _Board(Protocol[S]):
    def refresh(self, now: datetime) -> S: ...

    def install(self, snapshot: S) -> None: ...


@dataclass(frozen=True)
class _Sharing:
    boards: BoardStore
    leases: Leases
    holder: str

    def refresh(
        self,
        name: str,
        interval_s: float,
        board: _Board[S],
        encode: Callable[[S], Payload],
        decode: Callable[[StoredBoard], S],
    ) -> Callable[[datetime], object]:
        """`board`'s refresh, once per deployment (`domain.shared_boards.SharedRefresh`)."""
        shared = SharedRefresh(
            name,
            compute=board.refresh,
            install=board.install,
            encode=encode,
            decode=decode,
            store=self.boards,
            leases=self.leases,
            holder=self.holder,
            lease_ttl=timedelta(seconds=max(LEASE_INTERVALS * interval_s, 1.0)),
        )
        return shared.refresh


def _background(
    settings: Settings,
    clock: Clock,
    sharing: _Sharing | None,
    *,
    trending: TrendingBoard,
    popularity: TrendingBoard,
    exploration: ExplorationBoard | None,
) -> list[PeriodicTask]:
    """The boards' refreshes. Trending and popularity are warmed before serving: the fallback
    serves from them."""
    trending_codec = (trending_payload, trending_from_stored)
    tasks = [
        _refresh_task(
            sharing,
            clock,
            trending,
            name="trending",
            interval_s=settings.trending_refresh_s,
            codec=trending_codec,
            warm=True,
        ),
        _refresh_task(
            sharing,
            clock,
            popularity,
            name="popularity",
            interval_s=settings.popularity_refresh_s,
            codec=trending_codec,
            warm=True,
        ),
    ]
    if exploration is not None:
        tasks.append(
            _refresh_task(
                sharing,
                clock,
                exploration,
                name="exploration",
                interval_s=settings.trending_refresh_s,
                codec=(exploration_payload, exploration_from_stored),
                warm=False,
            )
        )
    return tasks


def _refresh_task(
    sharing: _Sharing | None,
    clock: Clock,
    board: _Board[S],
    *,
    name: str,
    interval_s: float,
    codec: tuple[Callable[[S], Payload], Callable[[StoredBoard], S]],
    warm: bool,
) -> PeriodicTask:
    """One board's refresh: computed in this process when nothing is shared (no database),
    else once per deployment."""
    refresh: Callable[[datetime], object] = board.refresh
    if sharing is not None:
        refresh = sharing.refresh(name, interval_s, board, *codec)
    return PeriodicTask(
        f"{name}-refresh", interval_s, functools.partial(_at_now, refresh, clock), warm=warm
    )


def _at_now(refresh: Callable[[datetime], object], clock: Clock) -> None:
    refresh(clock.now())


def _experiment_reporter(
    settings: Settings, data: ExperimentData | None, closers: list[Callable[[], object]]
) -> ExperimentReporter | None:
    """The readout of `GET /experiments/report`: FEED_EXPERIMENT over the service's database
    (an engine of its own: it connects on the first report, not before)."""
    experiment = parse_experiment(settings.feed_experiment)
    if experiment is None:
        return None
    if data is None:
        engine = make_engine(settings.resolved_database_url)
        closers.append(engine.dispose)
        data = SqlExperimentData(engine)
    return ExperimentReporter(experiment, data, ScipyExperimentStatistics())
