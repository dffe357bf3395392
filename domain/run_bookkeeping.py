"""What a retrain run leaves behind besides a model: its rows in the run log, its metrics and
the report of recent runs.

None of it may stop a run: the run log, the report and the lease are outside dependencies, and
what they declare (`DependencyUnavailable`) is logged and worked around. Anything else they
raise is a bug and propagates (see `domain.nightly_retrain`).
"""

from __future__ import annotations

import logging
from dataclasses import fields, replace
from typing import TYPE_CHECKING

from domain.errors import DependencyUnavailable
from domain.model_rollout import describe_error
from domain.retrain import RetrainProgress, RetrainRun, RunStatus, Stage

if TYPE_CHECKING:  # ports are the domain's types, never its runtime imports
    from ports.observability import Metrics
    from ports.retrain import RunLog, RunReport

log = logging.getLogger(__name__)


class RunBookkeeping:
    """Writes a run's rows to `run_log`, its figures to `metrics`, and the `report` of the
    latest `report_runs` runs (no report when None)."""

    def __init__(
        self, run_log: RunLog, metrics: Metrics, report: RunReport | None, report_runs: int
    ) -> None:
        self._run_log = run_log
        self._metrics = metrics
        self._report = report
        self._report_runs = report_runs

    def record_progress(self, run: RetrainRun) -> None:
        """The row of a run in progress; a log that is down only loses this intermediate row."""
        try:
            self._run_log.record(run)
        except DependencyUnavailable as err:
            stage = run.failed_stage.value if run.failed_stage else "?"
            log.warning("could not record run %s entering %s: %s", run.run_id, stage, err)

    def abandon_unfinished(self, run_id: str) -> None:
        """Mark every other run still RUNNING as ABANDONED: its worker died (this run holds the
        lease, so no other run is in progress)."""
        try:
            for stale in self._run_log.unfinished():
                if stale.run_id == run_id:
                    continue
                stage = stale.failed_stage.value if stale.failed_stage else "an unknown stage"
                abandoned = replace(
                    stale,
                    status=RunStatus.ABANDONED,
                    error=f"the run stopped during {stage} without finishing (worker killed, "
                    f"or its lease lapsed); found by run {run_id}",
                )
                self._run_log.record(abandoned)
                self._metrics.increment("retrain.runs", tags=status_tags(abandoned))
        except DependencyUnavailable as err:
            log.warning("could not look for abandoned runs: %s", err)

    def log_final(self, run: RetrainRun, shown: RetrainProgress) -> RetrainRun:
        """The run's last row; when the log does not take it, the returned run's note says so."""
        shown.stage_started(Stage.LOG)
        try:
            self._run_log.record(run)
        except DependencyUnavailable as err:
            log.error("the run log did not take run %s: %s", run.run_id, err)
            shown.stage_finished(Stage.LOG, False)
            problem = f"not in the run log: {describe_error(err)}"
            return replace(run, note=f"{run.note}; {problem}" if run.note else problem)
        shown.stage_finished(Stage.LOG, True)
        return run

    def emit_metrics(self, run: RetrainRun) -> None:
        self._metrics.increment("retrain.runs", tags=status_tags(run))
        if run.status is RunStatus.SKIPPED:
            return
        if run.duration_s is not None:
            tags = {"status": run.status.value}
            self._metrics.timing("retrain.duration_ms", run.duration_s * 1000, tags)
        self._metrics.gauge("retrain.rows_exported", run.rows_exported)
        self._metrics.gauge("retrain.rows_trained", run.rows_trained)
        for which, metrics in (
            ("candidate", run.candidate_metrics),
            ("serving", run.serving_metrics),
        ):
            if metrics is not None:
                for field in fields(metrics):
                    value = float(getattr(metrics, field.name))
                    self._metrics.gauge(f"retrain.model.{field.name}", value, {"model": which})

    def write_report(self) -> None:
        if self._report is None:
            return
        try:
            where = self._report.write(self._run_log.recent(self._report_runs))
        except DependencyUnavailable as err:
            log.warning("could not write the retrain report: %s", err)
            return
        log.info("retrain report written to %s", where)


def status_tags(run: RetrainRun) -> dict[str, str]:
    stage = run.failed_stage.value if run.failed_stage is not None else "none"
    return {"status": run.status.value, "stage": stage}
