"""Shared set-up of the nightly retrain's end-to-end tests: synthetic history with taste
clusters, a SQLite database holding it, the real gRPC model service on 127.0.0.1 and a port it
picked (always stopped), and the retrain built exactly as the `worker` process builds it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc

from adapters.lightfm.model_service import ModelService
from adapters.sql.bulk import bulk_insert_interactions
from adapters.sql.engine import make_engine
from adapters.sql.migrations import upgrade_database
from adapters.sql.run_log import SqlRunLog
from app.composition.model_service import build_model_service
from app.composition.worker import build_worker
from app.demo_data import SyntheticInteractions, generate_interactions
from app.settings import ENV_NAMES, Settings
from domain.interactions import InteractionEvent, StoredInteraction
from domain.retrain import RetrainRun
from proto.lightfm.v2025_9 import recommender_pb2_grpc as pb_grpc


@dataclass
class ModelServer:
    models: ModelService
    target: str
    stub: Any


@contextmanager
def running_model_server(store_root: Path) -> Iterator[ModelServer]:
    """The real model service over the store at `store_root`, with no model loaded yet, built
    as the `lightfm` process builds it."""
    settings = Settings(
        model_store_uri=str(store_root), lightfm_bind="127.0.0.1:0", lightfm_max_workers=4
    )
    composition = build_model_service(settings)
    models = composition.models
    server, port = composition.listen()
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield ModelServer(models, f"127.0.0.1:{port}", pb_grpc.RecommenderStub(channel))
    finally:
        channel.close()
        server.stop(grace=None).wait()


def synthetic_history() -> SyntheticInteractions:
    """200 viewers, 600 videos, 20 taste clusters, 20,000 events over the last 8 days."""
    end = datetime.now(UTC) - timedelta(minutes=5)
    return generate_interactions(200, 600, 20_000, days=8, seed=11, end=end)


def seed_newer(settings: Settings, history: SyntheticInteractions, count: int = 3_000) -> int:
    """The newest `count` events of `history` again, as if they happened just now: rows after
    the window of every model trained so far (a window ends when its run starts), on which the
    gate can compare a candidate with the serving model. They claim to have been received two
    minutes ago, so the export (`EXPORT_LAG_S` is 60 s) takes them at once."""
    now = datetime.now(UTC)
    moment = now - timedelta(minutes=2)
    events = list(history.events())[-count:]
    engine = make_engine(settings.resolved_database_url)
    try:
        bulk_insert_interactions(
            engine,
            (
                StoredInteraction(
                    InteractionEvent(f"newer-{moment.timestamp():.0f}-{i}", *event[:5]),
                    received_at=moment,
                    recommendation_score=None,
                )
                for i, event in enumerate(
                    e._replace(occurred_at=now - timedelta(milliseconds=j % 500))
                    for j, e in enumerate(events)
                )
            ),
        )
    finally:
        engine.dispose()
    return len(events)


def settings_for(tmp_path: Path, model_target: str, **changes: Any) -> Settings:
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'feedrec.db'}",
        model_store_uri=str(tmp_path / "models"),
        export_uri=str(tmp_path / "exports"),
        lightfm_target=model_target,
        training_window_days=30,
        train_epochs=10,
        train_components=16,
        train_threads=1,
    )
    upgrade_database(settings.resolved_database_url)
    return replace(settings, **changes)


def seed(settings: Settings, history: SyntheticInteractions) -> None:
    engine = make_engine(settings.resolved_database_url)
    try:
        bulk_insert_interactions(
            engine,
            (
                StoredInteraction(
                    InteractionEvent(f"e{i}", *event),
                    received_at=event.occurred_at,
                    recommendation_score=None,
                )
                for i, event in enumerate(history.events())
            ),
        )
    finally:
        engine.dispose()


def retrain_now(settings: Settings) -> RetrainRun:
    composition = build_worker(settings)
    try:
        return composition.retrain.run(composition.clock.now())
    finally:
        composition.close()


def logged(settings: Settings) -> dict[str, RetrainRun]:
    engine = make_engine(settings.resolved_database_url)
    try:
        return {run.run_id: run for run in SqlRunLog(engine).recent(100)}
    finally:
        engine.dispose()


def environment(settings: Settings) -> dict[str, str]:
    """`settings` as the environment variables a `feedrec` subprocess reads."""
    return {ENV_NAMES[name]: str(value) for name, value in vars(settings).items()}
