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
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

import schedule
from tqdm import tqdm

from app.composition.worker import WorkerOverrides, build_worker
from app.settings import Settings
from app.signals import stop_on_signals
from domain.retrain import RetrainRun, RunStatus, Stage, run_to_json

log = logging.getLogger("feedrec.worker")

#: Seconds between attempts to deliver spooled run log rows.
SPOOL_DELIVERY_S = 300
#: The longest sleep of the scheduling loop, seconds (bounds how late a stop is noticed).
MAX_IDLE_S = 30.0


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


def retrain_now(
    settings: Settings, stream: TextIO | None = None, overrides: WorkerOverrides | None = None
) -> RetrainRun:
    """One run at once, with progress bars on `stream` (stderr by default)."""
    composition = build_worker(settings, overrides)
    try:
        composition.deliver_spooled()
        return composition.retrain.run(composition.clock.now(), TqdmProgress(stream))
    finally:
        composition.close()


def serve(
    settings: Settings,
    stop: threading.Event | None = None,
    overrides: WorkerOverrides | None = None,
) -> None:
    """Run the retrain daily at `RETRAIN_AT` UTC until `stop` is set (or, without one, until
    SIGTERM/SIGINT)."""
    stop = stop or stop_on_signals()
    composition = build_worker(settings, overrides)
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
