"""The composition root of the web process; the other processes are built in
`app.composition`, from the same shared parts (`app.composition.common`, re-exported here).

Every part can be overridden (tests pass fakes or pre-built adapters). Building opens no
connection: engines and gRPC channels connect lazily, on first use; background work starts
only when the caller starts it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from adapters.kafka.health import KafkaHealth
from adapters.lightfm.client import GrpcRecommender, ModelServiceHealth
from adapters.sql.activity import SqlActivityReader
from adapters.sql.engine import make_engine
from adapters.sql.health import DatabaseHealth
from adapters.sql.session_recorder import SqlFeedSessionRecorder
from adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from adapters.system_clock import SystemClock
from adapters.trending_health import TrendingHealth
from adapters.web.dependencies import WebDependencies
from app.background import PeriodicTask
from app.composition.common import analytics_from, cursor_codec, metrics_from, token_codec
from app.settings import Settings
from domain.experiments import parse_experiment
from domain.feed_service import FeedPolicy, FeedService
from domain.ingestion import InteractionIngestion
from domain.trending import TrendingBoard
from ports.auth import TokenVerifier
from ports.clock import Clock
from ports.health import HealthCheck
from ports.observability import Analytics, Metrics
from ports.recommender import Recommender
from ports.repositories import ActivityReader, FeedSessionRecorder, UnitOfWork

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
    recommender: Recommender | None = None
    analytics: Analytics | None = None
    metrics: Metrics | None = None
    health_checks: Sequence[HealthCheck] | None = None


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
    sessions: FeedSessionRecorder | None = None  # None: through `unit_of_work`
    if unit_of_work is None or activity is None:
        engine = make_engine(settings.resolved_database_url)
        closers.append(engine.dispose)
        checks.append(DatabaseHealth(engine))
        if unit_of_work is None:
            unit_of_work = SqlUnitOfWorkFactory(engine)
            recorder = SqlFeedSessionRecorder(engine)
            closers.append(recorder.close)
            sessions = recorder
        activity = activity or SqlActivityReader(engine)
    metrics = chosen.metrics or metrics_from(settings)
    analytics = chosen.analytics or analytics_from(settings)
    recommender = chosen.recommender
    if recommender is None:
        client = GrpcRecommender(
            settings.lightfm_target,
            breaker_failures=settings.lightfm_breaker_failures,
            breaker_cooldown_s=settings.lightfm_breaker_cooldown_s,
            metrics=metrics,
        )
        closers.append(client.close)
        checks.append(ModelServiceHealth(settings.lightfm_target))
        recommender = client
    trending = TrendingBoard(activity, size=settings.trending_size)
    checks.append(TrendingHealth(trending))
    # The API answers without Kafka (events wait in the outbox); readiness still shows it.
    checks.append(KafkaHealth(settings.kafka_bootstrap_servers))
    feed = FeedService(
        unit_of_work,
        sessions=sessions,
        recommender=recommender,
        trending=trending,
        analytics=analytics,
        metrics=metrics,
        clock=clock,
        cursors=cursor_codec(settings),
        policy=FeedPolicy(
            model_timeout_s=settings.lightfm_deadline_ms / 1000,
            pool_size=settings.feed_pool_size,
            experiment=parse_experiment(settings.feed_experiment),
        ),
    )
    for closable in (analytics, metrics):
        close = getattr(closable, "close", None)
        if close is not None:
            closers.append(close)
    dependencies = WebDependencies(
        token_verifier=chosen.token_verifier or token_codec(settings),
        ingestion=InteractionIngestion(unit_of_work, clock, settings.kafka_topic),
        feed=feed,
        trending=trending,
        metrics=metrics,
        health_checks=chosen.health_checks if chosen.health_checks is not None else checks,
        max_request_bytes=settings.max_request_bytes,
        rate_limit_feed=settings.rate_limit_feed,
        rate_limit_interactions=settings.rate_limit_interactions,
        rate_limit_storage_uri=settings.rate_limit_storage_uri,
    )
    refresher = PeriodicTask(
        "trending-refresh", settings.trending_refresh_s, lambda: trending.refresh(clock.now())
    )
    return WebComposition(dependencies, [refresher], closers)
