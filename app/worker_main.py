"""The `worker` process (`feedrec worker`, Procfile `worker`): the nightly retrain, daily at
`RETRAIN_AT` UTC; and `feedrec retrain --now`, the same run at once with a progress bar per
stage.

Every worker may schedule the run: the `nightly-retrain` lease lets one of them do it and the
others record a SKIPPED run. The worker also delivers run log rows kept in the local spool
(`<FEEDREC_DATA_DIR>/retrain-runlog-spool.jsonl`) at start and every few minutes, so a run
that finished while Snowflake was down reaches it once it is back.

SIGTERM or SIGINT stops the worker between runs; a run in progress finishes first (LightFM
cannot be interrupted mid-epoch). A worker killed mid-run leaves its lease to expire
(`RETRAIN_LEASE_TTL_S`) and its run log row RUNNING, which the next run marks ABANDONED.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TextIO

import schedule
from tqdm import tqdm

from adapters.lightfm.admin_client import GrpcModelServiceAdmin
from adapters.lightfm.trainer import LightFMTrainer
from adapters.model_store import model_store_from_uri
from adapters.parquet_export import ParquetExporter
from adapters.report_plot import MetricsReport
from adapters.retrain_lab import LightFMLab
from adapters.run_log_spool import SpooledRunLog
from adapters.snowflake_run_log import SnowflakeRunLog
from adapters.sql.engine import make_engine
from adapters.sql.export_source import SqlExportSource
from adapters.sql.leases import SqlLeases
from adapters.sql.run_log import SqlRunLog
from adapters.system_clock import SystemClock
from app.bootstrap import metrics_from
from app.settings import Settings
from app.signals import stop_on_signals
from domain.nightly_retrain import NightlyRetrain
from domain.retrain import RetrainPolicy, RetrainRun, RunStatus, Stage, run_to_json
from ports.clock import Clock
from ports.observability import Metrics
from ports.retrain import RunLog

log = logging.getLogger("feedrec.worker")

SPOOL_FILE = "retrain-runlog-spool.jsonl"
#: Seconds between attempts to deliver spooled run log rows.
SPOOL_DELIVERY_S = 300
#: The longest sleep of the scheduling loop, seconds (bounds how late a stop is noticed).
MAX_IDLE_S = 30.0


@dataclass
class RetrainComposition:
    retrain: NightlyRetrain
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
    """What `snowflake.connector.connect` gets for the run log."""
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
    if settings.snowflake_warehouse:
        kwargs["warehouse"] = settings.snowflake_warehouse
    if settings.snowflake_host:
        kwargs["host"] = settings.snowflake_host
    return kwargs


def build_retrain(
    settings: Settings, *, metrics: Metrics | None = None, clock: Clock | None = None
) -> RetrainComposition:
    """The nightly retrain wired from `settings`. Opens no connection yet."""
    # The connector narrates every login and query at INFO; its warnings and errors still show.
    connector_log = logging.getLogger("snowflake.connector")
    connector_log.setLevel(max(connector_log.getEffectiveLevel(), logging.WARNING))
    clock = clock or SystemClock()
    engine = make_engine(settings.resolved_database_url)
    s3 = settings.s3_endpoint_url or None
    store = model_store_from_uri(settings.resolved_model_store_uri, s3)
    trainer = LightFMTrainer(
        no_components=settings.train_components,
        epochs=settings.train_epochs,
        num_threads=settings.train_threads,
    )
    admin = GrpcModelServiceAdmin(settings.lightfm_target, admin_token=settings.lightfm_admin_token)
    inner: RunLog = (
        SnowflakeRunLog(snowflake_connect_kwargs(settings))
        if settings.snowflake_account
        else SqlRunLog(engine)
    )
    run_log = SpooledRunLog(inner, settings.data_dir / SPOOL_FILE)
    metrics = metrics or metrics_from(settings)
    retrain = NightlyRetrain(
        export=ParquetExporter(
            SqlExportSource(engine),
            settings.resolved_export_uri,
            s3_endpoint=s3,
            chunk_rows=settings.export_chunk_rows,
            lag=timedelta(seconds=settings.export_lag_s),
        ),
        lab=LightFMLab(settings.resolved_export_uri, store, trainer, s3_endpoint=s3),
        store=store,
        admin=admin,
        run_log=run_log,
        leases=SqlLeases(engine),
        metrics=metrics,
        clock=clock,
        holder=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
        policy=RetrainPolicy(
            window=timedelta(days=settings.training_window_days),
            tolerance=settings.quality_tolerance,
            lease_ttl=timedelta(seconds=settings.retrain_lease_ttl_s),
        ),
        report=MetricsReport(settings.resolved_model_store_uri, s3),
    )
    closers: list[Callable[[], object]] = [admin.close, engine.dispose]
    close_metrics = getattr(metrics, "close", None)
    if close_metrics is not None:
        closers.append(close_metrics)
    return RetrainComposition(retrain, run_log, clock, closers)


class TqdmProgress:
    """Implements `domain.retrain.RetrainProgress` with one tqdm bar per stage: rows for the
    export, done/not done for the others."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._bars: dict[Stage, tqdm[Any]] = {}

    def stage_started(self, stage: Stage) -> None:
        counted = stage is Stage.EXPORT
        self._bars[stage] = tqdm(
            desc=f"{stage.value:<8}",
            total=None if counted else 1,
            unit="rows" if counted else "stage",
            # a stage is one step: its rate means nothing, its time does
            bar_format=None if counted else "{desc}: |{bar:10}| {elapsed}{postfix}",
            file=self._stream,
            dynamic_ncols=True,
        )

    def rows(self, stage: Stage, total: int) -> None:
        bar = self._bars.get(stage)
        if bar is not None:
            bar.update(total - bar.n)

    def stage_finished(self, stage: Stage, ok: bool) -> None:
        bar = self._bars.pop(stage, None)
        if bar is None:
            return
        if bar.total == 1 and ok:
            bar.update(1)
        bar.set_postfix_str("ok" if ok else "FAILED")
        bar.close()


def retrain_now(settings: Settings, stream: TextIO | None = None) -> RetrainRun:
    """One run at once, with progress bars on `stream` (stderr by default)."""
    composition = build_retrain(settings)
    try:
        composition.deliver_spooled()
        return composition.retrain.run(composition.clock.now(), TqdmProgress(stream))
    finally:
        composition.close()


def serve(settings: Settings, stop: threading.Event | None = None) -> None:
    """Run the retrain daily at `RETRAIN_AT` UTC until `stop` is set (or, without one, until
    SIGTERM/SIGINT)."""
    stop = stop or stop_on_signals()
    composition = build_retrain(settings)
    scheduler = schedule.Scheduler()

    def nightly() -> None:
        try:
            run = composition.retrain.run(composition.clock.now())
        except Exception:  # NightlyRetrain.run does not raise; the loop must survive if it did
            log.exception("retrain run broke")
            return
        log.info("retrain run finished", extra={"run": run_to_json(run)})

    try:
        plan(scheduler, settings.retrain_at, nightly, composition.deliver_spooled)
        composition.deliver_spooled()
        log.info("worker scheduled", extra={"retrain_at_utc": settings.retrain_at})
        while not stop.is_set():
            scheduler.run_pending()
            idle = scheduler.idle_seconds
            stop.wait(MAX_IDLE_S if idle is None else min(max(idle, 0.05), MAX_IDLE_S))
    finally:
        scheduler.clear()
        composition.close()
        log.info("worker stopped")


def plan(
    scheduler: schedule.Scheduler,
    retrain_at: str,
    nightly: Callable[[], None],
    deliver_spooled: Callable[[], None],
) -> None:
    """The worker's timetable: `nightly` daily at `retrain_at` (HH:MM) UTC, and the spool
    delivery every SPOOL_DELIVERY_S seconds."""
    # "UTC" as a name: schedule refuses datetime.timezone.utc and needs pytz (schedule[timezone]).
    scheduler.every().day.at(retrain_at, "UTC").do(nightly)
    scheduler.every(SPOOL_DELIVERY_S).seconds.do(deliver_spooled)


def print_run(run: RetrainRun) -> None:
    print(json.dumps(run_to_json(run), indent=2, sort_keys=True))  # noqa: T201 - the CLI's output


def exit_code(run: RetrainRun) -> int:
    return 1 if run.status in (RunStatus.FAILED, RunStatus.ABANDONED) else 0


def main() -> int:
    from app.logs import configure_logging

    settings = Settings.from_env()
    configure_logging(settings.log_level)
    serve(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
