"""What the nightly retrain (`domain.nightly_retrain`) needs from the outside world.

The numeric work (arrays, LightFM, parquet) stays behind `ModelLab`: the domain holds only
opaque handles (`TrainingWindow`, `CandidateModel`) and passes them back.

Errors: every method raises `domain.errors.DependencyUnavailable` when what it talks to cannot
be reached, and the other `domain.errors.DomainError`s its docstring names; adapters translate
vendor exceptions into these, keeping the cause (`raise ... from err`). The retrain fails a
stage on a declared error and treats any other exception as a bug (`domain.nightly_retrain`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from domain.model import ModelInfo, ModelMetrics
from domain.retrain import RetrainRun


class InteractionExport(Protocol):
    """The parquet export of stored interactions (`adapters.parquet_export.ParquetExporter`)."""

    def export_new(self, now: datetime, progress: Callable[[int], None] | None = None) -> int:
        """Export every interaction not exported yet (old enough at `now`, aware); returns how
        many rows this call exported, 0 when none were new. `progress` gets the running total
        of rows after each chunk. What was exported before a failure stays exported. Raises
        `DependencyUnavailable("export")` or `("database")`."""
        ...


class TrainingWindow(Protocol):
    """Interactions read for one run, split at the held-out boundary. Opaque to the domain."""

    @property
    def training_rows(self) -> int:
        """Events before the held-out boundary (what a candidate is trained on)."""
        ...

    @property
    def held_out_rows(self) -> int:
        """Events from the held-out boundary to the window's end (what models are scored on)."""
        ...

    @property
    def held_out_from(self) -> datetime:
        """The held-out boundary (aware): the candidate is trained on events before it."""
        ...

    @property
    def end(self) -> datetime:
        """The window's end (aware, exclusive)."""
        ...


class CandidateModel(Protocol):
    """A trained model not stored yet. Opaque to the domain but for its description."""

    @property
    def info(self) -> ModelInfo: ...


class ModelLab(Protocol):
    """Reads training data, trains and scores models, and stores a candidate in the model
    store (the one the model service loads from)."""

    def read(self, start: datetime, held_out_from: datetime, end: datetime) -> TrainingWindow:
        """The exported interactions with `start <= occurred_at < end` (aware datetimes), split
        at `held_out_from`. An empty window is a window with 0 rows, not an error. Raises
        `domain.retrain.TrainingDataError` when an export file in the window is corrupt."""
        ...

    def train(self, window: TrainingWindow, trained_at: datetime) -> CandidateModel:
        """A candidate trained on the window's training rows, versioned by `trained_at`.
        Raises `domain.retrain.TrainingDataError` when they hold no positive interaction."""
        ...

    def evaluate(self, window: TrainingWindow, candidate: CandidateModel) -> ModelMetrics:
        """The candidate's ranking quality on the window's held-out rows."""
        ...

    def evaluate_stored(self, window: TrainingWindow, version: str) -> ModelMetrics:
        """The stored model `version`'s ranking quality on the same held-out rows. Raises
        `domain.errors.NotFound` when the store has no such version, `domain.model.
        UnreadableModel` when what is stored under it is not a model this lab can read."""
        ...

    def outside(self, window: TrainingWindow, start: datetime, end: datetime) -> TrainingWindow:
        """The same window with only the held-out rows whose time is outside [start, end)
        (another model's training window): rows neither model was trained on."""
        ...

    def refit(
        self, window: TrainingWindow, candidate: CandidateModel, trained_at: datetime
    ) -> CandidateModel:
        """The candidate's configuration trained again on the whole window, held-out rows
        included (window end = the window's end), versioned by `trained_at`. Raises
        `domain.retrain.TrainingDataError` like `train`."""
        ...

    def keep(self, candidate: CandidateModel, metrics: ModelMetrics) -> str:
        """Put the candidate, with `metrics` in its description, into the model store; returns
        its version. Does not publish it."""
        ...


class ModelServiceAdmin(Protocol):
    """The model service's admin side (gRPC `LoadModel` and `DescribeModel`). Raises
    `DependencyUnavailable("model_service", ...)` when the service is down or does not answer
    in time, `domain.errors.NotFound` when it cannot find the version in its store, and
    `domain.errors.Forbidden` when it refuses the admin token."""

    def load(self, version: str) -> str:
        """Make the service swap `version` in now; returns the version it serves afterwards
        (`version` itself once the load succeeded). The previous model keeps serving when the
        load fails."""
        ...

    def serving_version(self) -> str | None:
        """The version the service serves now; None while it has no model loaded."""
        ...

    def close(self) -> None:
        """Release the connection to the service. Closing twice is harmless."""
        ...


class RunLog(Protocol):
    """One row per retrain run, keyed by `run_id` (the Snowflake table, or the embedded
    database's). Raises `DependencyUnavailable` when the log cannot be reached."""

    def record(self, run: RetrainRun) -> None:
        """Write the run's row, replacing the row of the same `run_id` if there is one: a run is
        recorded when it starts, at each stage, and when it ends, and stays one row."""
        ...

    def unfinished(self) -> list[RetrainRun]:
        """Every run whose row still says RUNNING, oldest first; empty when there is none."""
        ...

    def recent(self, limit: int) -> list[RetrainRun]:
        """Up to `limit` runs, newest `started_at` first; empty when none was recorded."""
        ...


class RunReport(Protocol):
    """A picture of recent runs' model quality, written next to the model artifacts."""

    def write(self, runs: Sequence[RetrainRun]) -> str:
        """Render `runs` (newest first, as `RunLog.recent` gives them) and store the report,
        replacing the previous one; returns where it is (a path or an s3:// URI). Raises
        `DependencyUnavailable` when it cannot be stored."""
        ...
