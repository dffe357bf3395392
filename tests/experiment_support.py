"""A planted experiment run through the real service: feeds served by the web composition
(SQLite unit of work, the feed service, experiment assignment), the viewers' reactions
ingested by the real ingestion service, both exported to parquet by the real exporter.

Reactions follow the demo generator's in-cluster mix (`app.demo_data`): each item served is
viewed, liked or skipped; a variant's like probability can be raised to plant a lift, and a
variant's traffic can be dropped to plant a broken assignment.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from adapters.experiment_data import ParquetExperimentData
from adapters.experiment_stats import ScipyExperimentStatistics
from adapters.parquet_export import IMPRESSION_SCHEMA, ParquetExporter
from adapters.sql.engine import make_engine
from adapters.sql.export_source import SqlExportSource
from adapters.sql.impressions import WATERMARK, SqlImpressionSource
from adapters.sql.migrations import upgrade_database
from app.bootstrap import Overrides, build_web
from app.settings import Settings
from domain.auth import Principal
from domain.experiment_report import ExperimentReport, ExperimentReporter
from domain.experiments import parse_experiment
from domain.feed import VideoActivity
from domain.feed_service import FeedRequest
from domain.interactions import InteractionEvent, InteractionType
from tests.fakes import FixedClock
from tests.fakes_feed import FakeRecommender, RecordingAnalytics, RecordingMetrics, ScriptedActivity

DAY = date(2026, 11, 24)
START = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
EXPERIMENT = {
    "name": "ranker-test",
    "variants": [
        {"id": "control", "weight": 50, "algorithm": "trending"},
        {"id": "lightfm", "weight": 50},
    ],
}


@dataclass
class PlantedExperiment:
    viewers: int
    like_rate: Mapping[str, float] = field(default_factory=dict)  # per variant, default 0.12
    #: variant -> every k-th of its viewers is lost (10 drops a tenth of its traffic)
    dropped_every: Mapping[str, int] = field(default_factory=dict)
    seed: int = 1


def run_planted(tmp_path: Path, plan: PlantedExperiment) -> tuple[ExperimentReport, Settings]:
    """Serve, react, export; the report over the day from the parquet exports."""
    settings = Settings(
        data_dir=tmp_path, jwt_secret="k" * 40, feed_experiment=json.dumps(EXPERIMENT)
    )
    upgrade_database(settings.resolved_database_url)
    clock = FixedClock(START)
    activity = ScriptedActivity(
        [
            (START - timedelta(minutes=30), VideoActivity(f"t{i:02d}", "like", 100 - i, 0))
            for i in range(80)
        ]
    )
    composition = build_web(
        settings,
        Overrides(
            clock=clock,
            activity=activity,
            recommender=FakeRecommender(),
            analytics=RecordingAnalytics(),
            metrics=RecordingMetrics(),
            health_checks=[],
        ),
    )
    for task in composition.background:
        task.run_once()
    experiment = parse_experiment(settings.feed_experiment)
    assert experiment is not None
    rng = random.Random(plan.seed)
    deps = composition.dependencies
    assigned: dict[str, int] = {}
    for n in range(plan.viewers):
        user = f"viewer-{n}"
        variant = experiment.assign(user).id
        assigned[variant] = assigned.get(variant, 0) + 1
        every = plan.dropped_every.get(variant)
        if every and assigned[variant] % every == 0:
            continue  # this viewer's page never got logged
        clock.moment = START + timedelta(seconds=n)
        page = deps.feed.page(Principal(user), FeedRequest(user, limit=10)).page
        like = plan.like_rate.get(variant, 0.12)
        events = []
        for rank, item in enumerate(page.items):
            draw = rng.random()
            kind = (
                InteractionType.LIKE
                if draw < like
                else InteractionType.VIEW
                if draw < 0.6
                else InteractionType.SKIP
            )
            watch = 0 if kind is InteractionType.SKIP else rng.randrange(2_000, 30_000)
            events.append(
                InteractionEvent(
                    f"{user}-{rank}",
                    user,
                    item.video_id,
                    kind,
                    watch,
                    clock.moment,
                    feed_session_id=page.feed_session_id,
                )
            )
        if events:
            deps.ingestion.ingest(Principal(user), events, as_batch=True)
    for close in composition.closers:
        close()
    export(settings, START + timedelta(hours=6))
    data = ParquetExperimentData(str(impressions_dir(settings)), settings.resolved_export_uri)
    reporter = ExperimentReporter(experiment, data, ScipyExperimentStatistics())
    return reporter.report(DAY, DAY), settings


def impressions_dir(settings: Settings) -> Path:
    return settings.data_dir / "impressions"


def export(settings: Settings, now: datetime) -> tuple[int, int]:
    """(interactions, impressions) exported by the real exporter."""
    engine = make_engine(settings.resolved_database_url)
    try:
        interactions = ParquetExporter(
            SqlExportSource(engine), settings.resolved_export_uri, lag=timedelta(0)
        ).export_new(now)
        impressions = ParquetExporter(
            SqlImpressionSource(engine),
            str(impressions_dir(settings)),
            lag=timedelta(0),
            name=WATERMARK,
            schema=IMPRESSION_SCHEMA,
            id_column="page_id",
            time_column="served_at",
        ).export_new(now)
    finally:
        engine.dispose()
    return interactions, impressions
