"""The nightly retrain as the domain sees it: what one run is (`RetrainRun`), the stages it goes
through, and the quality gate that decides whether a freshly trained model may replace the one
serving. The orchestration lives in `domain.nightly_retrain`."""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Protocol

from domain.errors import DomainError
from domain.model import ModelMetrics


class Stage(enum.StrEnum):
    """The stages of a run, in order. A failed run names the one that failed."""

    LOCK = "lock"  # take the `nightly-retrain` lease (one run at a time across workers)
    EXPORT = "export"  # new `user_interactions` rows -> the parquet export
    READ = "read"  # the training window back from the export, newest day held out
    TRAIN = "train"  # a candidate model on the window minus the held-out day
    EVALUATE = "evaluate"  # candidate and serving model on the same held-out day
    GATE = "gate"  # `gate`: may the candidate replace the serving model?
    REFIT = "refit"  # the chosen configuration again, on the whole window (held-out day too)
    PUBLISH = "publish"  # store the candidate, ask the model service to load it
    CONFIRM = "confirm"  # move the store's published pointer, check the service serves it
    LOG = "log"  # the final row of the run log


class RunStatus(enum.StrEnum):
    RUNNING = "running"  # in progress (or killed: see ABANDONED)
    SUCCEEDED = "succeeded"  # the candidate was published and is serving
    REJECTED = "rejected"  # the gate kept the serving model; `note` says why
    FAILED = "failed"  # a stage failed; the serving model is unchanged
    SKIPPED = "skipped"  # another worker held the lease: this worker did nothing
    ABANDONED = "abandoned"  # found still RUNNING by a later run: the worker died mid-run

    @property
    def finished(self) -> bool:
        return self is not RunStatus.RUNNING


class TrainingDataError(DomainError):
    """The training data cannot be used: an empty window, or a corrupt export file. Not
    transient: the next run fails the same way until the data (or an operator) changes."""

    code = "training_data"


class NotServing(DomainError):
    """The model service does not serve the version it was just told to load."""

    code = "not_serving"


@dataclass(frozen=True)
class RetrainRun:
    """One run of the nightly retrain, as the run log keeps it (one row per `run_id`).

    - `started_at` / `finished_at`: timezone-aware; `finished_at` is None while RUNNING and for
      ABANDONED runs (nobody saw them end).
    - `failed_stage`: for FAILED, the stage that failed; for ABANDONED, the stage the run was in
      when it died; for RUNNING, the stage in progress (so a run that never finishes still says
      where it stopped); None otherwise.
    - `rows_exported`: rows this run added to the export; `rows_trained`: interaction events the
      candidate was trained on (the window minus the held-out day).
    - `model_version`: the candidate's version once trained (published only if SUCCEEDED);
      `serving_version`: the model serving when the run compared against it (None: none was).
    - `candidate_metrics` / `serving_metrics`: both measured on the same held-out rows, those
      of the held-out day outside the serving model's training window (`comparable_span`).
    - `model_version`: after a REFIT, the refit (the published model); the evaluated candidate
      and both fits' row counts are named in `note`.
    - `error`: why a FAILED or ABANDONED run failed; `note`: the gate's reason, or other facts
      worth a human's eye (a rollback, a skipped lease).
    """

    run_id: str
    started_at: datetime
    status: RunStatus
    finished_at: datetime | None = None
    failed_stage: Stage | None = None
    rows_exported: int = 0
    rows_trained: int = 0
    model_version: str | None = None
    serving_version: str | None = None
    candidate_metrics: ModelMetrics | None = None
    serving_metrics: ModelMetrics | None = None
    error: str | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        for name in ("started_at", "finished_at"):
            moment: datetime | None = getattr(self, name)
            if moment is not None and moment.utcoffset() is None:
                raise ValueError(f"{name} must be timezone-aware")
        if self.rows_exported < 0 or self.rows_trained < 0:
            raise ValueError("row counts cannot be negative")

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to finish; None while unfinished."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class GateDecision:
    publish: bool
    reason: str


#: The metrics the gate compares, by field name and label. precision@10 is what a viewer sees
#: (the first page of ten); AUC covers the rest of the ranking. recall@10 counts the same hits
#: as precision@10 over another denominator, so it adds no independent evidence.
GATED_METRICS: Mapping[str, str] = {"precision_at_10": "precision@10", "auc": "AUC"}


def gate(candidate: ModelMetrics, serving: ModelMetrics | None, tolerance: float) -> GateDecision:
    """May `candidate` replace `serving`? Both measured on the same held-out interactions.

    - No serving model (None): publish; there is nothing to protect.
    - A candidate metric that is not a finite number: keep the serving model.
    - Otherwise, for precision@10 and for AUC: the candidate may be worse than the serving
      model by at most `tolerance` (a fraction, 0.05 = 5 %) relative to the serving value,
      i.e. `candidate >= serving * (1 - tolerance)`. Failing either keeps the serving model.
    """
    if not 0.0 <= tolerance < 1.0:
        raise ValueError(f"tolerance must be in [0, 1), not {tolerance}")
    values = {name: float(getattr(candidate, name)) for name in GATED_METRICS}
    if not all(math.isfinite(value) for value in values.values()):
        return GateDecision(False, f"the candidate's metrics are not finite: {candidate}")
    if serving is None:
        return GateDecision(True, "no model is serving: the candidate is the first")
    compared = []
    for name, label in GATED_METRICS.items():
        new, old = values[name], float(getattr(serving, name))
        floor = old * (1.0 - tolerance)
        if new < floor:
            drop = (old - new) / old if old > 0 else 1.0
            return GateDecision(
                False,
                f"{label} {new:.4f} is {drop:.1%} below the serving model's {old:.4f} "
                f"(tolerance {tolerance:.1%})",
            )
        compared.append(f"{label} {new:.4f} vs {old:.4f}")
    return GateDecision(True, f"within {tolerance:.1%} of the serving model: {', '.join(compared)}")


def comparable_span(
    held_out_from: datetime,
    end: datetime,
    serving_window: tuple[datetime, datetime] | None,
) -> str:
    """Why the gate's rows are unseen by both models, for the run's note.

    The candidate is trained on rows before `held_out_from`; the serving model on rows inside
    its own window [start, end). The gate scores both only on held-out rows (at or after
    `held_out_from`) that lie outside the serving model's window, so neither was trained on
    any of them, even when the serving model was refit on a day that overlaps this run's
    held-out day (a manual run hours after the nightly one)."""
    if serving_window is None:
        return f"held-out rows from {held_out_from.isoformat()} to {end.isoformat()}"
    start, stop = serving_window
    return (
        f"held-out rows from {held_out_from.isoformat()} to {end.isoformat()} outside the "
        f"serving model's window {start.isoformat()} to {stop.isoformat()}"
    )


class RetrainProgress(Protocol):
    """Told what a run is doing, e.g. to draw a progress bar per stage."""

    def stage_started(self, stage: Stage) -> None: ...

    def rows(self, stage: Stage, total: int) -> None:
        """`total` rows done so far in `stage` (the export reports after each chunk)."""
        ...

    def stage_finished(self, stage: Stage, ok: bool) -> None: ...


class SilentProgress:
    """A `RetrainProgress` that shows nothing."""

    def stage_started(self, stage: Stage) -> None:
        return None

    def rows(self, stage: Stage, total: int) -> None:
        return None

    def stage_finished(self, stage: Stage, ok: bool) -> None:
        return None


@dataclass(frozen=True)
class RetrainPolicy:
    """`window`: how far back training data reaches from the run's start; `held_out`: the
    newest part of it, kept for evaluation; `tolerance`: see `domain.retrain.gate`;
    `lease_ttl`: how long the lease outlives its last renewal (longer than any one stage);
    `report_runs`: how many recent runs the report shows."""

    window: timedelta = timedelta(days=90)
    held_out: timedelta = timedelta(days=1)
    tolerance: float = 0.05
    lease_ttl: timedelta = timedelta(hours=2)
    report_runs: int = 30

    def __post_init__(self) -> None:
        if not timedelta(0) < self.held_out < self.window:
            raise ValueError("held_out must be positive and shorter than window")
        if self.lease_ttl <= timedelta(0) or self.report_runs < 1:
            raise ValueError("lease_ttl and report_runs must be positive")
        if not 0.0 <= self.tolerance < 1.0:
            raise ValueError("tolerance must be in [0, 1)")


def metrics_to_json(metrics: ModelMetrics | None) -> dict[str, float] | None:
    if metrics is None:
        return None
    return {field.name: float(getattr(metrics, field.name)) for field in fields(metrics)}


def metrics_from_json(data: object) -> ModelMetrics | None:
    """Inverse of `metrics_to_json`; raises ValueError on anything else."""
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise ValueError(f"metrics must be an object, not {data!r}")
    try:
        return ModelMetrics(**{str(key): float(value) for key, value in data.items()})
    except (TypeError, ValueError) as err:
        raise ValueError(f"malformed metrics {data!r}: {err}") from err


#: The fields of `run_to_json` that hold timestamps (ISO 8601 text with an offset).
RUN_TIMESTAMPS = ("started_at", "finished_at")
#: The fields of `run_to_json` that hold metrics objects (`metrics_to_json`) or None.
RUN_METRICS = ("candidate_metrics", "serving_metrics")
#: The candidate's `ModelInfo.params` key holding the nightly search's trials, one per
#: "; "-separated part: `<changes> e<epochs> p@10=<x> ndcg@10=<y>` (validation-day figures).
SEARCH_PARAM = "search"
#: What precedes those trials at the end of a run's `note`.
SEARCH_NOTE = "search trials: "


def run_to_json(run: RetrainRun) -> dict[str, object]:
    """The one serialised shape of a run, JSON-ready: a key per `RetrainRun` field, timestamps as
    ISO 8601 text with offset, enums as their values, metrics as `metrics_to_json` objects. The
    spool writes it as it is; the SQL and Snowflake run logs bind it as their row, converting
    only what their column types need."""
    data: dict[str, object] = {}
    for field in fields(run):
        value = getattr(run, field.name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, enum.Enum):
            value = value.value
        elif isinstance(value, ModelMetrics):
            value = metrics_to_json(value)
        data[field.name] = value
    return data


def run_from_json(data: Mapping[str, object]) -> RetrainRun:
    """Inverse of `run_to_json`; raises ValueError on a malformed document. A timestamp may also
    be an aware datetime, as a database driver hands it back; keys beyond the run's are ignored
    (a table's bookkeeping columns)."""
    try:
        stage = data.get("failed_stage")
        return RetrainRun(
            run_id=str(data["run_id"]),
            started_at=_moment(data["started_at"]),
            status=RunStatus(str(data["status"])),
            finished_at=_optional_moment(data.get("finished_at")),
            failed_stage=None if stage is None else Stage(str(stage)),
            rows_exported=_count(data.get("rows_exported", 0)),
            rows_trained=_count(data.get("rows_trained", 0)),
            model_version=_text(data.get("model_version")),
            serving_version=_text(data.get("serving_version")),
            candidate_metrics=metrics_from_json(data.get("candidate_metrics")),
            serving_metrics=metrics_from_json(data.get("serving_metrics")),
            error=_text(data.get("error")),
            note=_text(data.get("note")),
        )
    except (KeyError, TypeError) as err:
        raise ValueError(f"malformed run record: {err!r}") from err


def _moment(value: object) -> datetime:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not a timestamp")
    return datetime.fromisoformat(value)


def _optional_moment(value: object) -> datetime | None:
    return None if value is None else _moment(value)


def _count(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{value!r} is not an integer")
    return value


def _text(value: object) -> str | None:
    return None if value is None else str(value)
