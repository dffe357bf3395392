"""After the nightly retrain: the experiment's report of the window ending yesterday (UTC), its
rows written to the warehouse next to the run log. Its failures are logged and never fail the
retrain: the readout is a by-product of the night, the model is the product."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from domain.errors import DomainError
from domain.experiment_report import (
    DEFAULT_WINDOW_DAYS,
    ExperimentReporter,
    report_rows,
    report_window,
)

if TYPE_CHECKING:  # ports are the domain's types, never its runtime imports
    from domain.nightly_retrain import NightlyRetrain
    from domain.retrain import RetrainProgress, RetrainRun
    from ports.experiments import ExperimentReportLog

log = logging.getLogger("feedrec.worker")


class NightlyReadout:
    def __init__(
        self,
        reporter: ExperimentReporter,
        report_log: ExperimentReportLog,
        window_days: int = DEFAULT_WINDOW_DAYS,
    ) -> None:
        self._reporter = reporter
        self._log = report_log
        self._window_days = window_days

    def run(self, now: datetime) -> int:
        """Rows written for the day before `now`'s UTC day; 0 when the report or the write
        failed on an error the ports declare (logged). Anything else is a bug and raises."""
        day = now.date() - timedelta(days=1)
        start, end = report_window(day, self._window_days)
        try:
            rows = report_rows(self._reporter.report(start, end), day)
            self._log.record(rows)
        except DomainError as err:
            log.error(
                "experiment readout not written: %s",
                err.message,
                extra={"experiment": self._reporter.experiment.name, "day": day.isoformat()},
            )
            return 0
        log.info("experiment readout written", extra={"rows": len(rows), "day": day.isoformat()})
        return len(rows)


class RetrainThenReadout:
    """The night's work: the retrain, then (whatever its outcome: the report reads what was
    exported) the experiment readout, when an experiment is configured."""

    def __init__(self, retrain: NightlyRetrain, readout: NightlyReadout | None) -> None:
        self.retrain = retrain
        self._readout = readout

    def run(self, now: datetime, progress: RetrainProgress | None = None) -> RetrainRun:
        run = self.retrain.run(now, progress)
        if self._readout is not None:
            try:
                self._readout.run(now)
            except Exception:  # a bug in the readout: logged once; the run's result stands
                log.exception("experiment readout broke on an unexpected error")
        return run
