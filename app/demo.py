"""The embedded run's demo: a synthetic catalogue and history, and a model trained on it, so the
first request already gets LightFM recommendations."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from adapters.lightfm.evaluation import evaluate
from adapters.lightfm.interactions import TrainingInteractions
from adapters.lightfm.trainer import LightFMTrainer
from adapters.model_store import model_store_from_uri
from adapters.sql.bulk import bulk_insert_interactions
from adapters.sql.engine import make_engine
from adapters.sql.history import read_interaction_columns
from adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from app.demo_data import as_stored, demo_interactions
from app.settings import Settings

log = logging.getLogger(__name__)

#: The demo history is evaluated on its newest day, like the nightly retrain.
HELD_OUT = timedelta(days=1)


def seed_demo(settings: Settings, *, force: bool) -> int:
    """Load the demo history into `user_interactions` unless interactions exist already.
    Returns how many rows it inserted. Seeded rows are history, not news: no outbox rows."""
    engine = make_engine(settings.resolved_database_url)
    try:
        with SqlUnitOfWorkFactory(engine)() as uow:
            existing = uow.interactions.count()
        if existing and not force:
            log.info("demo seed skipped", extra={"existing_interactions": existing})
            return 0
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        data = demo_interactions(end=now)
        rows = as_stored(data.events(), "demo")
        inserted = bulk_insert_interactions(engine, rows)
        log.info("demo seeded", extra={"interactions": inserted})
        return inserted
    finally:
        engine.dispose()


def ensure_demo_model(settings: Settings) -> str:
    """Train on the stored history and publish, unless a model is published already.
    Returns the published version."""
    store = model_store_from_uri(settings.resolved_model_store_uri)
    published = store.published()
    if published is not None:
        return published
    engine = make_engine(settings.resolved_database_url)
    try:
        columns = read_interaction_columns(engine)
    finally:
        engine.dispose()
    if not columns.user_ids:
        raise RuntimeError("no interactions to train on: run `feedrec seed` first")
    history = TrainingInteractions.from_columns(
        columns.user_ids,
        columns.video_ids,
        columns.interaction_types,
        columns.watch_time_ms,
        columns.occurred_at,
    )
    # The window's end is exclusive: just after the newest event, which the refit trains on.
    window_start = min(columns.occurred_at)
    window_end = max(columns.occurred_at) + timedelta(milliseconds=1)
    training, held_out = history.split_at(window_end - HELD_OUT)
    trained_at = datetime.now(UTC)
    log.info("training the demo model", extra={"interactions": len(training)})
    # The nightly job's configuration (seeds averaged), evaluated on the newest day and then
    # refit on every day, as the nightly job publishes: not one lucky draw the gate must beat.
    trainer = LightFMTrainer(
        no_components=settings.train_components,
        epochs=settings.train_epochs,
        seeds=settings.train_seeds,
        serve_components=settings.serve_components,
    )
    evaluated = trainer.train(training, window_start, window_end - HELD_OUT, trained_at)
    metrics = evaluate(evaluated, held_out)
    artifact = trainer.train(history, window_start, window_end, trained_at)
    artifact = replace(artifact, info=replace(artifact.info, metrics=metrics))
    store.put(artifact.info.version, artifact.to_bytes(), artifact.info)
    store.publish(artifact.info.version)
    log.info(
        "demo model published",
        extra={"version": artifact.info.version, "precision_at_10": metrics.precision_at_10},
    )
    return artifact.info.version
