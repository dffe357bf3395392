"""Implements `ports.retrain.ModelLab` with the parquet export, LightFM and the model store.

Training data and models stay numpy arrays in here; the domain only ever holds the opaque
`LabWindow` and `LabCandidate` it passes back.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from datetime import datetime

from adapters.interaction_columns import TrainingInteractions
from adapters.lightfm.ann import AUTO_NPROBE, with_index
from adapters.lightfm.artifact import ModelArtifact
from adapters.lightfm.evaluation import evaluate
from adapters.lightfm.search import VALIDATION, Validation, search
from adapters.lightfm.trainer import LightFMTrainer
from adapters.pair_window import PairWindow, PairWindowBuilder
from adapters.parquet_export import CorruptExportError, read_training_days
from domain.errors import Conflict
from domain.model import ModelInfo, ModelMetrics, UnreadableModel
from domain.retrain import SEARCH_PARAM, TrainingDataError
from ports.model_store import ModelStore
from ports.retrain import CandidateModel, TrainingWindow


@dataclass(frozen=True, eq=False)
class LabWindow:
    """Implements `ports.retrain.TrainingWindow`: the rows before `held_out_from` to train on,
    the rows from it to `end` to evaluate on. As read from the export, `training` is a
    `PairWindow`: pairs up to the search's validation day, that day's rows as events."""

    training: TrainingInteractions | PairWindow
    held_out: TrainingInteractions
    start: datetime
    held_out_from: datetime
    end: datetime

    @property
    def training_rows(self) -> int:
        return len(self.training)

    @property
    def held_out_rows(self) -> int:
        return len(self.held_out)


@dataclass(frozen=True, eq=False)
class LabCandidate:
    """Implements `ports.retrain.CandidateModel`: the model and the configuration that made it
    (what `refit` trains again)."""

    artifact: ModelArtifact
    trainer: LightFMTrainer | None = None

    @property
    def info(self) -> ModelInfo:
        return self.artifact.info


class LightFMLab:
    """Reads the window from the export at `export_uri` (see `read_training_window`), trains
    with `trainer`, evaluates with `adapters.lightfm.evaluation.evaluate` (at most
    `eval_max_users` sampled users), and keeps candidates in `store`, with an approximate
    candidate index (`adapters.lightfm.ann`) when they rank at least `ann_min_items` videos.

    The window is read a day at a time into pairs (`adapters.pair_window`), so memory follows
    the distinct pairs, not the events. Training cost is bounded for any window: the search
    tries configurations on a sample of users holding about `search_max_pairs` pairs, and the
    candidate's training and its refit each stop within about `train_budget_s` seconds
    (`LightFMTrainer.fit`; 0 for no bound); the refit trains the epochs and seeds the
    candidate did, so the published model is the evaluated configuration."""

    def __init__(
        self,
        export_uri: str,
        store: ModelStore,
        trainer: LightFMTrainer,
        *,
        s3_endpoint: str | None = None,
        eval_max_users: int = 10_000,
        search_budget_s: float = 0.0,
        fit_budget_s: float = 0.0,
        ann_min_items: int = 1_200_000,
        ann_nprobe: int = AUTO_NPROBE,
        train_budget_s: float = 0.0,
        search_max_pairs: int = 5_000_000,
    ) -> None:
        self._export_uri = export_uri
        self._store = store
        self._trainer = trainer
        self._s3_endpoint = s3_endpoint
        self._eval_max_users = eval_max_users
        self._search_budget_s = search_budget_s
        self._fit_budget_s = fit_budget_s
        self._ann_min_items = ann_min_items
        self._ann_nprobe = ann_nprobe
        self._train_budget_s = train_budget_s or None
        self._search_max_pairs = search_max_pairs

    def read(self, start: datetime, held_out_from: datetime, end: datetime) -> LabWindow:
        if not start <= held_out_from <= end:
            raise ValueError("expected start <= held_out_from <= end")
        # Rows from the validation day on stay events: the search validates on that day and
        # the gate evaluates on the held-out one.
        builder = PairWindowBuilder(held_out_from - VALIDATION, self._trainer.prior_half_life_days)
        try:
            for day in read_training_days(
                self._export_uri, start, end, s3_endpoint=self._s3_endpoint
            ):
                builder.add(day)
        except CorruptExportError as err:
            raise TrainingDataError(str(err)) from err
        pairs = builder.build()
        recent, held_out = pairs.rows.split_at(held_out_from)
        return LabWindow(pairs.with_rows(recent), held_out, start, held_out_from, end)

    def train(self, window: TrainingWindow, trained_at: datetime) -> LabCandidate:
        """The search's pick (`adapters.lightfm.search`, within `search_budget_s`, its seeds
        sized to `fit_budget_s` when that is above 0) trained on the rows before the held-out
        day; its trials are named in the model's params."""
        data = _window(window)
        found = search(
            self._trainer,
            data.training,
            data.start,
            data.held_out_from,
            self._search_budget_s,
            validation=self._validation(data),
            fit_budget_s=self._fit_budget_s or None,
        )
        try:
            artifact = found.trainer.train(
                data.training,
                data.start,
                data.held_out_from,
                trained_at,
                budget_s=self._train_budget_s,
            )
        except ValueError as err:  # no positive pair, or training diverged
            raise TrainingDataError(f"cannot train: {err}") from err
        if found.trials:
            params = {**artifact.info.params, SEARCH_PARAM: found.summary()}
            artifact = replace(artifact, info=replace(artifact.info, params=params))
        trained = found.trainer.with_params(
            epochs=int(artifact.info.params["epochs"]), seeds=int(artifact.info.params["seeds"])
        )
        return LabCandidate(artifact, trained)

    def refit(
        self, window: TrainingWindow, candidate: CandidateModel, trained_at: datetime
    ) -> LabCandidate:
        data, chosen = _window(window), _candidate(candidate)
        trainer = chosen.trainer or self._trainer
        training = data.training
        rows = (
            training.with_rows(training.rows.concat(data.held_out))
            if isinstance(training, PairWindow)
            else training.concat(data.held_out)
        )
        try:
            artifact = trainer.train(
                rows, data.start, data.end, trained_at, budget_s=self._train_budget_s
            )
        except ValueError as err:
            raise TrainingDataError(f"cannot refit: {err}") from err
        params = {**artifact.info.params, "evaluated_as": chosen.info.version}
        if SEARCH_PARAM in chosen.info.params:
            params[SEARCH_PARAM] = chosen.info.params[SEARCH_PARAM]
        return LabCandidate(replace(artifact, info=replace(artifact.info, params=params)), trainer)

    def outside(self, window: TrainingWindow, start: datetime, end: datetime) -> LabWindow:
        data = _window(window)
        start_ms, end_ms = start.timestamp() * 1000, end.timestamp() * 1000
        moments = data.held_out.occurred_at_ms
        return replace(
            data, held_out=data.held_out.take((moments < start_ms) | (moments >= end_ms))
        )

    def evaluate(self, window: TrainingWindow, candidate: CandidateModel) -> ModelMetrics:
        return self._evaluate(_window(window), _candidate(candidate).artifact)

    def evaluate_stored(self, window: TrainingWindow, version: str) -> ModelMetrics:
        blob = self._store.get(version)
        try:
            artifact = ModelArtifact.from_bytes(blob)
        except ValueError as err:
            raise UnreadableModel(f"stored model {version}: {err}") from err
        return self._evaluate(_window(window), artifact)

    def keep(self, candidate: CandidateModel, metrics: ModelMetrics) -> str:
        artifact = _candidate(candidate).artifact
        info = replace(artifact.info, metrics=metrics)
        if len(artifact.item_ids) >= self._ann_min_items:
            # Built once here, not by every replica at load: minutes of k-means for 10M items.
            artifact = with_index(artifact, nprobe=self._ann_nprobe)
        # Conflict: the same version name means the same training second and the same
        # fingerprint of ids and weights, so this very model is stored already.
        with contextlib.suppress(Conflict):
            self._store.put(info.version, replace(artifact, info=info).to_bytes(), info)
        return info.version

    def _validation(self, window: LabWindow) -> Validation | None:
        """The search's validation of a `PairWindow` (its newest day; None: the search splits
        the rows itself), on a sample of users when the window has too many pairs to try
        configurations on."""
        training = window.training
        if not isinstance(training, PairWindow):
            return None
        if len(training.keys) > self._search_max_pairs:
            training = training.sample_users(self._search_max_pairs / len(training.keys))
        fit_end = window.held_out_from - VALIDATION
        before, rows = training.rows.split_at(fit_end)
        return Validation(training.with_rows(before), rows, fit_end)

    def _evaluate(self, window: LabWindow, artifact: ModelArtifact) -> ModelMetrics:
        return evaluate(artifact, window.held_out, max_users=self._eval_max_users)


def _window(window: TrainingWindow) -> LabWindow:
    if not isinstance(window, LabWindow):
        raise TypeError(f"not a window this lab read: {window!r}")
    return window


def _candidate(candidate: CandidateModel) -> LabCandidate:
    if not isinstance(candidate, LabCandidate):
        raise TypeError(f"not a candidate this lab trained: {candidate!r}")
    return candidate
