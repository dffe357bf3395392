"""The nightly retrain, stage by stage (`domain.retrain.Stage`), against ports.

What it guarantees:

- `NightlyRetrain.run` returns the run's record, as logged.
- A failure the ports declare (a `domain.errors.DomainError`: `DependencyUnavailable`,
  `TrainingDataError`, `NotServing`, `NotFound`, ...) fails the stage it happened in: the run is
  FAILED naming the stage and the error in one line, logged as a warning without a traceback.
- Any other exception is a bug (in an adapter, or here). It is logged once, as an error with
  its traceback, and the run is still recorded FAILED at the stage it was in, its error reading
  `unexpected <type>: <message>`, and the lease is given back. It is not re-raised, so the
  worker's schedule goes on to the next night; the run log and the error log show it. Only a
  bug in what follows the final row (metrics, the report) leaves `run` as an exception.
- One run at a time: the `nightly-retrain` lease is taken first and renewed at every stage. A
  worker that dies keeps it only until it expires (`RetrainPolicy.lease_ttl`), so the next run
  can always start; a run that finds its lease taken over stops.
- A killed run stays visible: the run's row is written when it starts and at every stage
  (status RUNNING, `failed_stage` = the stage in progress); the next run that holds the lease
  marks such rows ABANDONED.
- The gate cannot be fooled by training data: the candidate is trained on the window minus
  the held-out day, and both models are scored only on held-out rows outside the serving
  model's training window (`ModelLab.outside`); with no such row the serving model stays.
- What is published is a refit: once the gate passed, the same configuration is trained on
  the whole window, held-out day included (`ModelLab.refit`), with the evaluated metrics.
- The serving model is unchanged unless publish and confirm both succeed
  (`domain.model_rollout` explains the order that makes it so).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from domain.errors import DependencyUnavailable, DomainError
from domain.model import ModelMetrics
from domain.model_rollout import ModelRollout, describe_error
from domain.retrain import (
    SEARCH_NOTE,
    SEARCH_PARAM,
    RetrainPolicy,
    RetrainProgress,
    RetrainRun,
    RunStatus,
    SilentProgress,
    Stage,
    TrainingDataError,
    comparable_span,
    gate,
)
from domain.run_bookkeeping import RunBookkeeping

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
    """A stage failed; `error` is the run log's one line for it."""

    def __init__(self, stage: Stage, error: str) -> None:
        super().__init__(error)
        self.stage = stage
        self.error = error


class NightlyRetrain:
    """Export, read, train, evaluate, gate, publish, confirm, log: one `run` per night (and one
    at a time per instance: it keeps the run in progress for its error handling)."""

    #: The run in progress as last recorded: what a failure outside a stage's own handling ends.
    _current: RetrainRun

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
        self._leases = leases
        self._clock = clock
        self._holder = holder
        self._policy = policy or RetrainPolicy()
        self._store = store
        self._books = RunBookkeeping(run_log, metrics, report, self._policy.report_runs)
        self._rollout = ModelRollout(lab, store, admin)

    def run(self, now: datetime, progress: RetrainProgress | None = None) -> RetrainRun:
        """One run starting at `now` (aware); returns its record, as logged."""
        shown = progress or SilentProgress()
        run_id = f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
        run = self._current = RetrainRun(run_id, now, RunStatus.RUNNING, failed_stage=Stage.LOCK)
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
            run = self._finish(
                self._current, RunStatus.FAILED, failed_stage=failed.stage, error=failed.error
            )
        except Exception as err:  # a bug between stages: logged once, and still a failed run
            log.exception("retrain run %s broke on an unexpected error", run_id)
            run = self._finish(self._current, RunStatus.FAILED, error=_unexpected(err))
        try:
            run = self._books.log_final(run, shown)
            self._books.emit_metrics(run)
            if held:
                self._books.write_report()
        finally:
            if held:
                self._release_lease()
        return run

    def _work(self, run: RetrainRun, now: datetime, shown: RetrainProgress) -> RetrainRun:
        self._books.abandon_unfinished(run.run_id)
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
        # Every trial of the nightly search goes into the run record (and so the report chart).
        trials = candidate.info.params.get(SEARCH_PARAM)
        run = self._enter(run, Stage.EVALUATE)
        serving, candidate_metrics, serving_metrics, compared = self._stage(
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
        if compared is None:
            return self._finish(
                run,
                RunStatus.REJECTED,
                note="no held-out row lies outside the serving model's training window: "
                "nothing both models are unseen on, so the serving model stays",
                trials=trials,
            )
        decision = self._stage(
            Stage.GATE, shown, lambda: gate(candidate_metrics, serving_metrics, tolerance)
        )
        if not decision.publish:
            return self._finish(run, RunStatus.REJECTED, note=decision.reason, trials=trials)
        run = self._enter(run, Stage.REFIT)
        evaluated = candidate.info.version
        final = self._stage(
            Stage.REFIT, shown, lambda: self._lab.refit(window, candidate, self._clock.now())
        )
        fitted = window.training_rows + window.held_out_rows
        story = (
            f"{decision.reason}; compared on {compared}; evaluated {evaluated} "
            f"({window.training_rows} rows), published its refit {final.info.version} "
            f"({fitted} rows, held-out day included)"
        )
        run = self._enter(replace(run, model_version=final.info.version), Stage.PUBLISH)
        try:
            version = self._stage(
                Stage.PUBLISH, shown, lambda: self._rollout.announce(final, candidate_metrics)
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
                trials=trials,
            )
        return self._finish(run, RunStatus.SUCCEEDED, note=story, trials=trials)

    # --- stages ----------------------------------------------------------------------------

    def _take_lease(self, now: datetime) -> bool:
        return self._leases.acquire(LEASE_NAME, self._holder, now, self._policy.lease_ttl)

    def _release_lease(self) -> None:
        try:
            self._leases.release(LEASE_NAME, self._holder)
        except DependencyUnavailable as err:
            log.warning("could not release the retrain lease (it expires): %s", err)

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
    ) -> tuple[str | None, ModelMetrics, ModelMetrics | None, str | None]:
        """(serving version, candidate's metrics, serving model's metrics, what was compared:
        None when no held-out row is unseen by the serving model)."""
        serving = self._rollout.serving()
        if serving is None:
            described = comparable_span(window.held_out_from, window.end, None)
            return None, self._lab.evaluate(window, candidate), None, described
        info = self._store.info(serving)
        span = (info.window_start, info.window_end)
        comparable = self._lab.outside(window, *span)
        if comparable.held_out_rows == 0:
            return serving, self._lab.evaluate(window, candidate), None, None
        return (
            serving,
            self._lab.evaluate(comparable, candidate),
            self._lab.evaluate_stored(comparable, serving),
            f"{comparable.held_out_rows} {comparable_span(window.held_out_from, window.end, span)}",
        )

    # --- bookkeeping -----------------------------------------------------------------------

    def _stage(self, stage: Stage, shown: RetrainProgress, work: Callable[[], _T]) -> _T:
        shown.stage_started(stage)
        try:
            result = work()
        except DomainError as err:  # what the ports declare: the stage failed, nothing more
            shown.stage_finished(stage, False)
            log.warning("retrain stage %s failed: %s", stage.value, describe_error(err))
            raise _Failed(stage, describe_error(err)) from err
        except Exception as err:  # a bug: its traceback, once; the rollback still runs
            shown.stage_finished(stage, False)
            log.exception("retrain stage %s broke on an unexpected error", stage.value)
            raise _Failed(stage, _unexpected(err)) from err
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
        run = self._current = replace(run, failed_stage=stage)
        self._books.record_progress(run)
        return run

    def _finish(
        self,
        run: RetrainRun,
        status: RunStatus,
        *,
        failed_stage: Stage | None = None,
        error: str | None = None,
        note: str | None = None,
        trials: str | None = None,
    ) -> RetrainRun:
        """The finished run; a FAILED one without `failed_stage` failed in the stage it was in.
        The search's `trials` (the candidate's `SEARCH_PARAM`) end the note."""
        if trials:
            note = f"{note}; {SEARCH_NOTE}{trials}" if note else f"{SEARCH_NOTE}{trials}"
        return replace(
            run,
            status=status,
            finished_at=self._clock.now(),
            failed_stage=(failed_stage or run.failed_stage) if status is RunStatus.FAILED else None,
            error=error,
            note=note,
        )


def _unexpected(err: Exception) -> str:
    return f"unexpected {describe_error(err)}"
