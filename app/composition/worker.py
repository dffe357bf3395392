"""The `worker` process's parts: the nightly retrain, its run log spool, and the experiment
readout written after it."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine

from adapters.lightfm.admin_client import GrpcModelServiceAdmin
from adapters.lightfm.trainer import LightFMTrainer
from adapters.parquet_export import ParquetExporter
from adapters.report_plot import MetricsReport
from adapters.retrain_lab import LightFMLab
from adapters.run_log_spool import SpooledRunLog
from adapters.snowflake_experiment_report_log import SnowflakeExperimentReportLog
from adapters.snowflake_run_log import SnowflakeRunLog
from adapters.sql.engine import make_engine
from adapters.sql.experiment_report_log import SqlExperimentReportLog
from adapters.sql.export_source import SqlExportSource
from adapters.sql.leases import SqlLeases
from adapters.sql.run_log import SqlRunLog
from adapters.system_clock import SystemClock
from app.composition.common import metrics_from, model_client_tls, model_store_from
from app.composition.experiments import (
    InteractionsAndImpressions,
    export_data,
    impressions_exporter,
    reporter,
)
from app.secrets import snowflake_private_key
from app.settings import Settings
from domain.nightly_readout import NightlyReadout, RetrainThenReadout
from domain.nightly_retrain import NightlyRetrain
from domain.retrain import RetrainPolicy
from ports.clock import Clock
from ports.experiments import ExperimentData, ExperimentReportLog
from ports.model_store import ModelStore
from ports.observability import Metrics
from ports.repositories import Leases
from ports.retrain import InteractionExport, ModelLab, ModelServiceAdmin, RunLog, RunReport

log = logging.getLogger("feedrec.worker")

SPOOL_FILE = "retrain-runlog-spool.jsonl"


@dataclass
class WorkerOverrides:
    """Parts a caller supplies instead of the ones the settings describe. `run_log` is the log
    behind the spool (`<FEEDREC_DATA_DIR>/retrain-runlog-spool.jsonl`), which stays."""

    clock: Clock | None = None
    metrics: Metrics | None = None
    export: InteractionExport | None = None
    lab: ModelLab | None = None
    store: ModelStore | None = None
    admin: ModelServiceAdmin | None = None
    run_log: RunLog | None = None
    leases: Leases | None = None
    report: RunReport | None = None
    holder: str | None = None
    #: what the nightly readout reads (default: the parquet exports) and where its rows go
    #: (default: Snowflake when configured, else the service's database)
    experiment_data: ExperimentData | None = None
    report_log: ExperimentReportLog | None = None


@dataclass
class RetrainComposition:
    retrain: RetrainThenReadout
    run_log: SpooledRunLog
    clock: Clock
    closers: list[Callable[[], object]] = field(default_factory=list)

    def deliver_spooled(self) -> None:
        try:
            waiting = self.run_log.flush()
        except OSError as err:
            log.error("cannot read the run log spool: %s", err)
            return
        if waiting:
            log.warning("run log rows still waiting in the spool", extra={"rows": waiting})

    def close(self) -> None:
        for close in self.closers:
            close()


def snowflake_connect_kwargs(settings: Settings) -> dict[str, Any]:
    """What `snowflake.connector.connect` gets for the run log: a password, or with
    SNOWFLAKE_PRIVATE_KEY_PATH the key-pair sign-in (raises SettingsError for a bad key)."""
    kwargs: dict[str, Any] = {
        "account": settings.snowflake_account,
        "user": settings.snowflake_user,
        "password": settings.snowflake_password,
        "database": settings.snowflake_database,
        "schema": settings.snowflake_schema,
        "port": settings.snowflake_port,
        "protocol": settings.snowflake_protocol,
        # seconds: an unreachable Snowflake must not hold a stage up for minutes
        "login_timeout": 30,
        "network_timeout": 60,
        "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
    }
    private_key = snowflake_private_key(settings)
    if private_key is not None:  # key-pair sign-in: the connector signs a JWT with the key
        del kwargs["password"]
        kwargs.update(authenticator="SNOWFLAKE_JWT", private_key=private_key)
    if settings.snowflake_warehouse:
        kwargs["warehouse"] = settings.snowflake_warehouse
    if settings.snowflake_host:
        kwargs["host"] = settings.snowflake_host
    return kwargs


def build_worker(
    settings: Settings, overrides: WorkerOverrides | None = None
) -> RetrainComposition:
    """The nightly retrain wired from `settings`. Opens no connection yet."""
    chosen = overrides or WorkerOverrides()
    clock = chosen.clock or SystemClock()
    engines: list[Engine] = []  # made on first need: parts a caller supplies need none

    def engine() -> Engine:
        if not engines:
            engines.append(make_engine(settings.resolved_database_url))
        return engines[0]

    s3 = settings.s3_endpoint_url or None
    store = chosen.store or model_store_from(settings)
    admin = chosen.admin or GrpcModelServiceAdmin(
        settings.lightfm_target,
        admin_token=settings.lightfm_admin_token,
        tls=model_client_tls(settings),
    )
    run_log = SpooledRunLog(
        chosen.run_log or _run_log(settings, engine), settings.data_dir / SPOOL_FILE
    )
    metrics = chosen.metrics or metrics_from(settings)
    retrain = NightlyRetrain(
        export=chosen.export
        or InteractionsAndImpressions(
            ParquetExporter(
                SqlExportSource(engine()),
                settings.resolved_export_uri,
                s3_endpoint=s3,
                chunk_rows=settings.export_chunk_rows,
                lag=timedelta(seconds=settings.export_lag_s),
            ),
            impressions_exporter(settings, engine()),
        ),
        lab=chosen.lab or _lab(settings, store),
        store=store,
        admin=admin,
        run_log=run_log,
        leases=chosen.leases or SqlLeases(engine()),
        metrics=metrics,
        clock=clock,
        holder=chosen.holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
        policy=RetrainPolicy(
            window=timedelta(days=settings.training_window_days),
            tolerance=settings.quality_tolerance,
            lease_ttl=timedelta(seconds=settings.retrain_lease_ttl_s),
        ),
        report=chosen.report
        or MetricsReport(settings.resolved_model_store_uri, s3, settings.quality_tolerance),
    )
    readout = _readout(settings, chosen, engine)
    closers: list[Callable[[], object]] = [admin.close, metrics.close]
    closers.extend(built.dispose for built in engines)
    return RetrainComposition(RetrainThenReadout(retrain, readout), run_log, clock, closers)


def _readout(
    settings: Settings, chosen: WorkerOverrides, engine: Callable[[], Engine]
) -> NightlyReadout | None:
    """The experiment readout after the retrain; None when no experiment is configured."""
    built = reporter(settings, chosen.experiment_data or export_data(settings))
    if built is None:
        return None
    report_log = chosen.report_log
    if report_log is None:
        report_log = (
            SnowflakeExperimentReportLog(snowflake_connect_kwargs(settings))
            if settings.snowflake_account
            else SqlExperimentReportLog(engine())
        )
    return NightlyReadout(built, report_log)


def _run_log(settings: Settings, engine: Callable[[], Engine]) -> RunLog:
    if not settings.snowflake_account:
        return SqlRunLog(engine())
    # The connector narrates every login and query at INFO; its warnings and errors still show.
    connector_log = logging.getLogger("snowflake.connector")
    connector_log.setLevel(max(connector_log.getEffectiveLevel(), logging.WARNING))
    return SnowflakeRunLog(snowflake_connect_kwargs(settings))


def _lab(settings: Settings, store: ModelStore) -> ModelLab:
    trainer = LightFMTrainer(
        no_components=settings.train_components,
        epochs=settings.train_epochs,
        num_threads=settings.train_threads,
        seeds=settings.train_seeds,
        serve_components=settings.serve_components,
    )
    s3 = settings.s3_endpoint_url or None
    return LightFMLab(
        settings.resolved_export_uri,
        store,
        trainer,
        s3_endpoint=s3,
        search_budget_s=settings.retrain_search_budget_s,
        fit_budget_s=settings.retrain_fit_budget_s,
        ann_min_items=settings.lightfm_ann_min_items,
        ann_nprobe=settings.lightfm_ann_nprobe,
        train_budget_s=settings.retrain_train_budget_s,
    )
