"""The nightly search: which LightFM configuration to train, and how much of the popularity
prior to blend in, within a time budget.

Trials train on `Validation.fit` and are scored on `Validation.rows`. The nightly job's
validation is the candidate's newest day (trained on the rows before it), never the held-out
day the gate uses, so picking the best of many trials cannot flatter the candidate against the
serving model; the offline evaluation validates on a split of the same kind as its own.

- Every trial trains one seed with a unit prior. Every 5 epochs the check scores the model with
  each of `PRIOR_WEIGHTS` times that prior on the validation rows (one score matrix for all:
  the blend costs no training), then, at the best prior weight, with each of
  `NEIGHBOUR_WEIGHTS` times the validation rows' co-occurrence component (computed once per
  search: `adapters.lightfm.neighbours`), and keeps the best (NDCG@10 + precision@10, the two
  weights, epochs); the trial stops after two checks without a gain, or at `MAX_EPOCHS`.
- Coordinate ascent, warm-started: the first trial is the current configuration; each later
  trial is the best configuration so far with one `SPACE` step applied, and becomes the best
  when it beats it by more than the noise (one seed's validation figures are noisy: a change
  must earn its place). The noise is measured on the night's own rows: the first
  configuration is trained again from the next seed (a trial that is never picked), and a step
  must gain more than `NOISE_FACTOR` times the relative difference of the two, and at least
  `MIN_GAIN`. Trials run while the budget lasts.
- The pick: the best trial's configuration, with the epochs and blend weights its checks found.
- Seeds: given `fit_budget_s`, the pick averages as many seeds (at most `MAX_SEEDS`) as one fit
  of the whole training rows can train within it, at the speed the best trial measured (its
  training seconds per epoch, scaled by the rows). Averaging seeds was the largest single gain
  on the per-user splits (MovieLens 100k: 3 seeds 0.1306 / 0.1843 precision@10 / NDCG@10,
  10 seeds 0.1353 / 0.1903); at 10M interactions the budget leaves room for one or two.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from adapters.lightfm.artifact import ModelArtifact
from adapters.lightfm.evaluation import blend_quality
from adapters.lightfm.interactions import PairWindow, TrainingInteractions, aggregate_pairs
from adapters.lightfm.neighbours import CoOccurrence, co_occurrence
from adapters.lightfm.trainer import LightFMTrainer

log = logging.getLogger(__name__)

VALIDATION = timedelta(days=1)
MAX_EPOCHS = 60
PATIENCE = 2
#: Prior weights every check scores (the prior is in units of the model's score spread). 16 is
#: about "trending, ties broken by the model": on MovieLens' global time cut the measured best
#: was 10, on planted tastes 0 to 0.5.
PRIOR_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
#: Co-occurrence weights every check scores with the best prior weight (in units of the
#: model's score spread; `adapters.lightfm.neighbours`). 0 is LightFM alone; with 3 seeds the
#: measured best was 1 to 2 on MovieLens per viewer, 0.5 to 2 on planted tastes. Offered 4 as
#: well, MovieLens' per-viewer validation picked it in every run and it tested worse (NDCG@10
#: +4.4% over the defaults against +4.9% without it).
NEIGHBOUR_WEIGHTS = (0.0, 0.5, 1.0, 2.0)
#: The relative validation gain a step must show to replace the best configuration, at least
#: (see NOISE_FACTOR).
MIN_GAIN = 0.005
#: ... and more than this many times the relative difference between the first configuration
#: and its repeat from the next seed. Measured over 4 seeds (NDCG@10 + precision@10 of one
#: trial, per-viewer validation): MovieLens 100k std 0.8% (WARP), planted tastes 0.3%; BPR
#: beat WARP by 1.1% on planted, nothing beat the defaults by more than the noise on
#: MovieLens. A fixed 0.5% let noise pick a different step in every MovieLens run, each
#: testing worse than the defaults; a fixed 2% refused BPR on planted.
NOISE_FACTOR = 2.0
#: The most seeds a pick averages: the average is seeds x components wide before the trainer
#: cuts it to the served width, and that cut's cost grows with the square of the width.
MAX_SEEDS = 10
#: Headroom on the measured training speed when sizing the seeds to the fit budget.
FIT_MARGIN = 1.2

#: Steps of the coordinate ascent, in this order while the budget lasts: the current
#: configuration first, then the axes that moved the figures most when measured (learning
#: rate; BPR with the prior on planted tastes per viewer, 0.1255 / 0.1912 against WARP's
#: 0.1271 / 0.1858; components, weighting), then the rest.
SPACE: tuple[dict[str, object], ...] = (
    {},
    {"learning_rate": 0.03},
    {"loss": "bpr"},
    {"no_components": 32},
    {"weighting": "binary"},
    {"learning_rate": 0.015},
    {"no_components": 16},
    {"no_components": 96},
    {"learning_rate": 0.08},
    {"item_alpha": 1e-6, "user_alpha": 1e-6},
    {"loss": "warp-kos"},
    {"learning_schedule": "adadelta"},
)


@dataclass(frozen=True)
class Validation:
    """Trials train on `fit` (events of a window ending at `fit_end`, where the prior decays
    from) and are scored on `rows`."""

    fit: TrainingInteractions | PairWindow
    rows: TrainingInteractions
    fit_end: datetime


@dataclass(frozen=True)
class Trial:
    step: dict[str, object]  # the SPACE step this trial applied to the best so far
    changes: dict[str, object]  # the whole change from the base, prior weight included
    epochs: int
    precision_at_10: float
    ndcg_at_10: float
    seconds: float
    epoch_seconds: float = 0.0  # training seconds per epoch of one seed, checks excluded

    @property
    def score(self) -> float:
        return self.ndcg_at_10 + self.precision_at_10


@dataclass(frozen=True)
class SearchResult:
    trainer: LightFMTrainer  # the chosen configuration, epochs and prior weight as found
    trials: tuple[Trial, ...]

    def summary(self) -> str:
        """One line per trial, for the model's params and the run's log."""
        return "; ".join(
            f"{t.changes or 'base'} e{t.epochs} p@10={t.precision_at_10:.4f} "
            f"ndcg@10={t.ndcg_at_10:.4f}"
            for t in self.trials
        )


def newest(training: TrainingInteractions, end: datetime, span: timedelta) -> Validation:
    """The nightly validation: the newest `span` of rows ending at `end`, trained on the rest."""
    fit, rows = training.split_at(end - span)
    return Validation(fit, rows, end - span)


def search(
    base: LightFMTrainer,
    training: TrainingInteractions | PairWindow,
    start: datetime,
    end: datetime,
    budget_s: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    validation_span: timedelta = VALIDATION,
    validation: Validation | None = None,
    fit_budget_s: float | None = None,
) -> SearchResult:
    """The best configuration for rows `training` of [start, end) (see the module docstring),
    validated on the newest `validation_span` unless `validation` is given; with
    `fit_budget_s`, also the seeds one fit of `training` can average within it.
    With no budget or no validation rows, `base` unchanged and no trial."""
    if validation is not None:
        valid = validation
    elif isinstance(training, PairWindow):
        raise ValueError("a PairWindow is searched with an explicit validation")
    else:
        valid = newest(training, end, validation_span)
    if budget_s <= 0 or len(valid.rows) == 0 or len(valid.fit) == 0:
        return SearchResult(base, ())
    deadline = clock() + budget_s
    # The validation rows' co-occurrence, in the order every trial's model has (the same pairs):
    # each check scores its weights without training anything.
    part = co_occurrence(aggregate_pairs(valid.fit), base.neighbour_components)
    trials: list[Trial] = []
    best: Trial | None = None
    min_gain = MIN_GAIN
    for step in SPACE:
        if trials and clock() >= deadline:
            break
        structure = {**_structure(best), **step}
        trial = _trial(base, structure, step, (valid, part), start, deadline, clock)
        if trial is None:
            continue
        trials.append(trial)
        if best is None:
            best = trial
            # The same configuration from the next seed: how far one seed's figures move on
            # these rows. Recorded as a trial with step {"seed": ...}, never picked.
            seed: dict[str, object] = {"seed": base.seed + 1}
            repeat = (
                _trial(base, {**structure, **seed}, seed, (valid, part), start, deadline, clock)
                if clock() < deadline
                else None
            )
            if repeat is not None:
                trials.append(repeat)
                noise = abs(repeat.score - trial.score) / max(trial.score, 1e-12)
                min_gain = max(MIN_GAIN, NOISE_FACTOR * noise)
        elif trial.score > best.score * (1 + min_gain):
            best = trial
    if best is None:
        return SearchResult(base, ())
    chosen = base.with_params(epochs=best.epochs, **best.changes)
    if fit_budget_s is not None:
        per_epoch = best.epoch_seconds * len(training) / len(valid.fit) * FIT_MARGIN
        affordable = int(fit_budget_s // max(per_epoch * best.epochs, 1e-9))
        chosen = chosen.with_params(seeds=max(1, min(MAX_SEEDS, affordable)))
    return SearchResult(chosen, tuple(trials))


def _trial(  # noqa: PLR0917 (one call site)
    base: LightFMTrainer,
    structure: dict[str, object],
    step: dict[str, object],
    validation: tuple[Validation, CoOccurrence],
    start: datetime,
    deadline: float,
    clock: Callable[[], float],
) -> Trial | None:
    began = clock()
    valid, part = validation
    trainer = base.with_params(
        seeds=1, epochs=MAX_EPOCHS, **structure, prior_weight=1.0, neighbour_weight=0.0
    )
    checks: list[_Check] = []
    timing = _Timing()
    check = _early_stopping(valid.rows, checks, deadline, clock, timing, part=part)
    try:
        trainer.fit(valid.fit, start, valid.fit_end, datetime.now(start.tzinfo), checkpoint=check)
    except ValueError as err:  # diverged: not a candidate
        log.info("search trial %s failed: %s", structure, err)
        return None
    if not checks:
        return None
    trained = timing.stopped_at or MAX_EPOCHS
    epoch_seconds = max(clock() - began - timing.check_seconds, 0.0) / trained
    _, ndcg, precision, weight, neighbour, epochs = max(checks)
    changes = {
        name: value
        for name, value in {
            **structure,
            "prior_weight": weight,
            "neighbour_weight": neighbour,
        }.items()
        if getattr(base, name) != value
    }
    trial = Trial(step, changes, epochs, precision, ndcg, clock() - began, epoch_seconds)
    log.info(
        "search trial",
        extra={
            "trial": str(changes),
            "epochs": epochs,
            "precision_at_10": precision,
            "ndcg_at_10": ndcg,
        },
    )
    return trial


def _structure(best: Trial | None) -> dict[str, object]:
    """The best trial's changes that training needs (the blend weights are chosen per check)."""
    if best is None:
        return {}
    return {name: value for name, value in best.changes.items() if name not in _BLENDS}


#: What a check chooses, not a trial's training.
_BLENDS = ("prior_weight", "neighbour_weight")
#: A check's best blend: (score, NDCG@10, precision@10, prior weight, neighbour weight, epochs).
_Check = tuple[float, float, float, float, float, int]


@dataclass
class _Timing:
    """What a trial's checks cost and where they stopped it (0: they did not)."""

    check_seconds: float = 0.0
    stopped_at: int = 0


def _early_stopping(
    validation: TrainingInteractions,
    checks: list[_Check],
    deadline: float,
    clock: Callable[[], float],
    timing: _Timing | None = None,
    *,
    part: CoOccurrence | None = None,
) -> Callable[[int, ModelArtifact], bool]:
    """A trainer checkpoint: scores the artifact with every prior weight (and, with the
    co-occurrence `part`, every neighbour weight), records the best (score, NDCG@10,
    precision@10, prior weight, neighbour weight, epochs) in `checks`; stops after PATIENCE
    checks without a better score, or at the deadline. The artifact's prior is the unit prior.
    `timing`, when given, accumulates the checks' seconds and the epoch they stopped at."""
    timing = timing or _Timing()

    def check(epochs: int, artifact: ModelArtifact) -> bool:
        began = clock()
        go_on = _check(epochs, artifact)
        timing.check_seconds += clock() - began
        timing.stopped_at = 0 if go_on else epochs
        return go_on

    def _check(epochs: int, artifact: ModelArtifact) -> bool:
        # The prior weights first, then the co-occurrence weights at the best of them: 11
        # rankings of the validation rows per check where the whole grid is 32 (at 10M
        # interactions one ranking is 10,000 viewers x 50,000 videos, 500M scores).
        priors = blend_quality(artifact, validation, PRIOR_WEIGHTS)
        scored = [
            (ndcg + precision, ndcg, precision, weight, 0.0, epochs)
            for (precision, ndcg), weight in zip(priors, PRIOR_WEIGHTS, strict=True)
        ]
        if part is not None and part.users.shape[1] > 0:
            weight = max(scored, key=lambda row: row[0])[3]
            added = NEIGHBOUR_WEIGHTS[1:]
            blends = blend_quality(
                artifact, validation, (weight,), neighbours=part, neighbour_weights=added
            )
            scored += [
                (ndcg + precision, ndcg, precision, weight, neighbour, epochs)
                for (precision, ndcg), neighbour in zip(blends, added, strict=True)
            ]
        checks.append(max(scored, key=lambda row: row[0]))
        top = max(range(len(checks)), key=lambda i: checks[i][0])
        return len(checks) - 1 - top < PATIENCE and clock() < deadline

    return check
