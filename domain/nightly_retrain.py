"""The nightly retrain, stage by stage (`domain.retrain.Stage`), against ports.

What it guarantees:

- `NightlyRetrain.run` never raises (but for KeyboardInterrupt/SystemExit): every failure
  becomes a FAILED run naming its stage and error, and the run log gets one row for it.
- One run at a time: the `nightly-retrain` lease is taken first and renewed at every stage. A
  worker that dies keeps it only until it expires (`RetrainPolicy.lease_ttl`), so the next run
  can always start; a run that finds its lease taken over stops.
- A killed run stays visible: the run's row is written when it starts and at every stage
  (status RUNNING, `failed_stage` = the stage in progress); the next run that holds the lease
  marks such rows ABANDONED.
- The serving model is unchanged unless publish and confirm both succeed
  (`domain.model_rollout` explains the order that makes it so).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import fields, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from domain.errors import DependencyUnavailable
from domain.model import ModelMetrics
from domain.model_rollout import ModelRollout, describe_error
from domain.retrain import (
    RetrainPolicy,
    RetrainProgress,
    RetrainRun,
    RunStatus,
    SilentProgress,
    Stage,
    TrainingDataError,
    gate,
)

if TYPE_CHECKING:  # ports are the domain's types, never its runtime imports
    from ports.clock import Clock
    from ports.model_store import ModelStore
    from ports.observability import Metrics
    from ports.repositories import Leases
    from ports.retrain import (
        CandidateModel,
        InteractionExport,
        ModelLab,
        ModelServiceAdmin,
        RunLog,
        RunReport,
        TrainingWindow,
    )

log = logging.getLogger(__name__)

LEASE_NAME = "nightly-retrain"
_T = TypeVar("_T")


class _Failed(Exception):
    def __init__(self, stage: Stage, error: str) -> None:
        super().__init__(error)
        self.stage = stage
        self.error = error


class NightlyRetrain:
    """Export, read, train, evaluate, gate, publish, confirm, log: one `run` per night."""

    def __init__(
        self,
        *,
        export: InteractionExport,
        lab: ModelLab,
        store: ModelStore,
        admin: ModelServiceAdmin,
        run_log: RunLog,
        leases: Leases,
        metrics: Metrics,
        clock: Clock,
        holder: str,
        policy: RetrainPolicy | None = None,
        report: RunReport | None = None,
    ) -> None:
        self._export = export
        self._lab = lab
        self._admin = admin
        self._run_log = run_log
        self._leases = leases
        self._metrics = metrics
        self._clock = clock
        self._holder = holder
        self._policy = policy or RetrainPolicy()
        self._report = report
        self._rollout = ModelRollout(lab, store, admin)

    def run(self, now: datetime, progress: RetrainProgress | None = None) -> RetrainRun:
        """One run starting at `now` (aware); returns its record, as logged."""
        shown = progress or SilentProgress()
        run_id = f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
        run = RetrainRun(run_id, now, RunStatus.RUNNING, failed_stage=Stage.LOCK)
        held = False
        try:
            held = self._stage(Stage.LOCK, shown, lambda: self._take_lease(now))
            if held:
                run = self._work(run, now, shown)
            else:
                run = self._finish(
                    run, RunStatus.SKIPPED, note="another worker holds the nightly-retrain lease"
                )
        except _Failed as failed:
            run = self._finish(run, RunStatus.FAILED, failed_stage=failed.stage, error=failed.error)
        except Exception as err:  # a bug outside any stage: still a logged, failed run
            log.exception("retrain run %s broke", run_id)
            run = self._finish(run, RunStatus.FAILED, error=describe_error(err))
        run = self._log_final(run, shown)
        self._emit_metrics(run)
        if held:
            self._write_report()
            try:
                self._leases.release(LEASE_NAME, self._holder)
            except Exception as err:
                log.warning("could not release the retrain lease (it expires): %s", err)
        return run

    def _work(self, run: RetrainRun, now: datetime, shown: RetrainProgress) -> RetrainRun:
        self._abandon_unfinished(run.run_id)
        run = self._enter(run, Stage.EXPORT)
        exported = self._stage(
            Stage.EXPORT,
            shown,
            lambda: self._export.export_new(now, lambda total: shown.rows(Stage.EXPORT, total)),
        )
        run = self._enter(replace(run, rows_exported=exported), Stage.READ)
        window = self._stage(Stage.READ, shown, lambda: self._read(now))
        run = self._enter(run, Stage.TRAIN)
        candidate = self._stage(
            Stage.TRAIN, shown, lambda: self._lab.train(window, self._clock.now())
        )
        run = replace(run, rows_trained=window.training_rows, model_version=candidate.info.version)
        run = self._enter(run, Stage.EVALUATE)
        serving, candidate_metrics, serving_metrics = self._stage(
            Stage.EVALUATE, shown, lambda: self._evaluate(window, candidate)
        )
        run = replace(
            run,
            serving_version=serving,
            candidate_metrics=candidate_metrics,
            serving_metrics=serving_metrics,
        )
        run = self._enter(run, Stage.GATE)
        tolerance = self._policy.tolerance
        decision = self._stage(
            Stage.GATE, shown, lambda: gate(candidate_metrics, serving_metrics, tolerance)
        )
        if not decision.publish:
            return self._finish(run, RunStatus.REJECTED, note=decision.reason)
        run = self._enter(run, Stage.PUBLISH)
        try:
            version = self._stage(
                Stage.PUBLISH, shown, lambda: self._rollout.announce(candidate, candidate_metrics)
            )
            run = self._enter(run, Stage.CONFIRM)
            self._stage(Stage.CONFIRM, shown, lambda: self._rollout.confirm(version))
        except _Failed as failed:
            note = self._rollout.roll_back(serving)
            return self._finish(
                run,
                RunStatus.FAILED,
                failed_stage=failed.stage,
                error=failed.error,
                note=note,
            )
        return self._finish(run, RunStatus.SUCCEEDED, note=decision.reason)

    # --- stages ----------------------------------------------------------------------------

    def _take_lease(self, now: datetime) -> bool:
        return self._leases.acquire(LEASE_NAME, self._holder, now, self._policy.lease_ttl)

    def _read(self, now: datetime) -> TrainingWindow:
        start, held_out_from = now - self._policy.window, now - self._policy.held_out
        window = self._lab.read(start, held_out_from, now)
        if window.training_rows == 0:
            raise TrainingDataError(
                f"empty training window: no interactions from {start.isoformat()} "
                f"to {held_out_from.isoformat()}"
            )
        if window.held_out_rows == 0:
            raise TrainingDataError(
                f"nothing to evaluate on: no interactions from {held_out_from.isoformat()} "
                f"to {now.isoformat()}"
            )
        return window

    def _evaluate(
        self, window: TrainingWindow, candidate: CandidateModel
    ) -> tuple[str | None, ModelMetrics, ModelMetrics | None]:
        candidate_metrics = self._lab.evaluate(window, candidate)
        serving = self._rollout.serving()
        if serving is None:
            return None, candidate_metrics, None
        return serving, candidate_metrics, self._lab.evaluate_stored(window, serving)

    # --- bookkeeping -----------------------------------------------------------------------

    def _stage(self, stage: Stage, shown: RetrainProgress, work: Callable[[], _T]) -> _T:
        shown.stage_started(stage)
        try:
            result = work()
        except Exception as err:
            shown.stage_finished(stage, False)
            log.warning("retrain stage %s failed: %s", stage.value, err, exc_info=True)
            raise _Failed(stage, describe_error(err)) from err
        shown.stage_finished(stage, True)
        return result

    def _enter(self, run: RetrainRun, stage: Stage) -> RetrainRun:
        """Renew the lease and record that the run is now in `stage`."""
        try:
            renewed = self._take_lease(self._clock.now())
        except DependencyUnavailable as err:
            # The lease still runs until its ttl; the database may be back by the next stage.
            log.warning("could not renew the retrain lease before %s: %s", stage.value, err)
        else:
            if not renewed:
                raise _Failed(stage, "lost the nightly-retrain lease to another worker")
        run = replace(run, failed_stage=stage)
        try:
            self._run_log.record(run)
        except Exception as err:
            log.warning("could not record run %s entering %s: %s", run.run_id, stage.value, err)
        return run

    def _finish(
        self,
        run: RetrainRun,
        status: RunStatus,
        *,
        failed_stage: Stage | None = None,
        error: str | None = None,
        note: str | None = None,
    ) -> RetrainRun:
        """The finished run; a FAILED one without `failed_stage` failed in the stage it was in."""
        return replace(
            run,
            status=status,
            finished_at=self._clock.now(),
            failed_stage=(failed_stage or run.failed_stage) if status is RunStatus.FAILED else None,
            error=error,
            note=note,
        )

    def _abandon_unfinished(self, run_id: str) -> None:
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
                self._metrics.increment("retrain.runs", tags=_status_tags(abandoned))
        except Exception as err:
            log.warning("could not look for abandoned runs: %s", err)

    def _log_final(self, run: RetrainRun, shown: RetrainProgress) -> RetrainRun:
        shown.stage_started(Stage.LOG)
        try:
            self._run_log.record(run)
        except Exception as err:
            log.error("the run log did not take run %s: %s", run.run_id, err)
            shown.stage_finished(Stage.LOG, False)
            problem = f"not in the run log: {describe_error(err)}"
            return replace(run, note=f"{run.note}; {problem}" if run.note else problem)
        shown.stage_finished(Stage.LOG, True)
        return run

    def _emit_metrics(self, run: RetrainRun) -> None:
        self._metrics.increment("retrain.runs", tags=_status_tags(run))
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

    def _write_report(self) -> None:
        if self._report is None:
            return
        try:
            where = self._report.write(self._run_log.recent(self._policy.report_runs))
        except Exception as err:
            log.warning("could not write the retrain report: %s", err)
            return
        log.info("retrain report written to %s", where)


def _status_tags(run: RetrainRun) -> dict[str, str]:
    stage = run.failed_stage.value if run.failed_stage is not None else "none"
    return {"status": run.status.value, "stage": stage}
