"""The nightly search: which LightFM configuration to train, within a time budget.

Trials train on the candidate's training rows minus their newest day and are scored on that day
(the validation day), never on the held-out day the gate uses, so picking the best of many
trials cannot flatter the candidate against the serving model. Each trial stops early: every
5 epochs its validation NDCG@10 is measured, and it stops after two checks without a gain.
Trials are ranked by NDCG@10 + precision@10 on the validation day; the first trial is the
current configuration, so the search never returns something worse on that day.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from adapters.lightfm.artifact import ModelArtifact
from adapters.lightfm.evaluation import ranking_quality
from adapters.lightfm.interactions import TrainingInteractions
from adapters.lightfm.trainer import LightFMTrainer

log = logging.getLogger(__name__)

VALIDATION = timedelta(days=1)
MAX_EPOCHS = 60
PATIENCE = 2

#: Changes to the base configuration, tried in this order while the budget lasts: the
#: current configuration first, then one axis at a time.
SPACE: tuple[dict[str, object], ...] = (
    {},
    {"weighting": "binary"},
    {"prior_weight": 0.5},
    {"learning_rate": 0.03},
    {"no_components": 96},
    {"loss": "bpr"},
    {"loss": "warp-kos"},
    {"weighting": "binary", "prior_weight": 1.0},
    {"learning_schedule": "adadelta"},
    {"item_alpha": 1e-6, "user_alpha": 1e-6},
    {"no_components": 32},
    {"learning_rate": 0.08},
)


@dataclass(frozen=True)
class Trial:
    changes: dict[str, object]
    epochs: int
    precision_at_10: float
    ndcg_at_10: float
    seconds: float

    @property
    def score(self) -> float:
        return self.ndcg_at_10 + self.precision_at_10


@dataclass(frozen=True)
class SearchResult:
    trainer: LightFMTrainer  # the chosen configuration, epochs as early stopping found them
    trials: tuple[Trial, ...]

    def summary(self) -> str:
        """One line per trial, for the model's params and the run's log."""
        return "; ".join(
            f"{t.changes or 'base'} e{t.epochs} p@10={t.precision_at_10:.4f} "
            f"ndcg@10={t.ndcg_at_10:.4f}"
            for t in self.trials
        )


def search(
    base: LightFMTrainer,
    training: TrainingInteractions,
    start: datetime,
    end: datetime,
    budget_s: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    validation_span: timedelta = VALIDATION,
) -> SearchResult:
    """The best configuration for rows `training` of [start, end) (see the module docstring;
    the offline evaluation validates on a longer `validation_span` of sparser data).
    With no budget or no validation rows, `base` unchanged and no trial."""
    fit_rows, validation = training.split_at(end - validation_span)
    if budget_s <= 0 or len(validation) == 0 or len(fit_rows) == 0:
        return SearchResult(base, ())
    deadline = clock() + budget_s
    trials: list[Trial] = []
    for changes in _space():
        if trials and clock() >= deadline:
            break
        began = clock()
        trainer = base.with_params(seeds=1, epochs=MAX_EPOCHS, **changes)
        best: list[tuple[float, float, int]] = []
        check = _early_stopping(validation, best, deadline, clock)

        try:
            trainer.fit(
                fit_rows, start, end - validation_span, datetime.now(start.tzinfo), checkpoint=check
            )
        except ValueError as err:  # diverged: not a candidate
            log.info("search trial %s failed: %s", changes, err)
            continue
        ndcg, precision, epochs = max(best) if best else (0.0, 0.0, MAX_EPOCHS)
        trial = Trial(changes, epochs, precision, ndcg, clock() - began)
        log.info(
            "search trial",
            extra={
                "trial": str(changes),
                "epochs": epochs,
                "precision_at_10": precision,
                "ndcg_at_10": ndcg,
            },
        )
        trials.append(trial)
    if not trials:
        return SearchResult(base, ())
    chosen = max(trials, key=lambda t: t.score)
    return SearchResult(base.with_params(epochs=chosen.epochs, **chosen.changes), tuple(trials))


def _early_stopping(
    validation: TrainingInteractions,
    checks: list[tuple[float, float, int]],
    deadline: float,
    clock: Callable[[], float],
) -> Callable[[int, ModelArtifact], bool]:
    """A trainer checkpoint: records (NDCG@10, precision@10, epochs) in `checks`; stops after
    PATIENCE checks without a better NDCG, or at the deadline."""

    def check(epochs: int, artifact: ModelArtifact) -> bool:
        precision, ndcg = ranking_quality(artifact, validation)
        checks.append((ndcg, precision, epochs))
        top = max(range(len(checks)), key=lambda i: checks[i][0])
        return len(checks) - 1 - top < PATIENCE and clock() < deadline

    return check


def _space() -> Iterator[dict[str, object]]:
    yield from SPACE
