"""`feedrec evaluate`: the product's LightFM configuration against baselines, offline.

The protocol (splits, candidates, relevance, figures) is `adapters.lightfm.offline`'s
docstring. Methods, each fitted on the training part of a split:
- `popularity`: training viewers with a positive pair, per video;
- `trending`: positive events decayed with a 7-day half-life from the training part's end;
- `lightfm-defaults`: LightFM as configured today (TRAIN_COMPONENTS, TRAIN_EPOCHS, TRAIN_SEEDS,
  SERVE_COMPONENTS, the default loss and no prior), no search;
- `product`: the nightly search's pick from those defaults (within `search_budget_s`),
  configuration, prior weight and seeds (as many as one fit can train within `fit_budget_s`;
  `RETRAIN_SEARCH_BUDGET_S` and `RETRAIN_FIT_BUDGET_S` by default, the nightly job's budgets),
  then trained like the nightly job trains it. The search
  validates on a split of the same kind as the one evaluated, applied to the training part
  (`validation_like`): the nightly job's is the newest day, as its gate's is.
LightFM runs use one thread (reproducible, and fair on a shared machine); run r seeds with
42 + 1000 r, so the runs' spread is the seeds' spread. Nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from adapters.interaction_columns import TrainingInteractions
from adapters.lightfm.artifact import ModelArtifact
from adapters.lightfm.offline import Catalogue, Figures, Split, per_user_split, time_split
from adapters.lightfm.search import Validation, search
from adapters.lightfm.trainer import LightFMTrainer
from adapters.parquet_export import read_training_window
from adapters.parquet_export.columns_file import write_interactions
from app.demo_data import demo_interactions

PRODUCT = "product"
BASELINES = ("popularity", "trending", "lightfm-defaults")
METHODS = (*BASELINES, PRODUCT)
FIGURES = ("precision_at_10", "recall_at_10", "ndcg_at_10", "auc", "coverage", "novelty")
#: Data sets `--dataset` can build; `movielens-100k` needs the `recbole` wheel (installed
#: with --no-deps by `make test`: only its data file is read).
DATASETS = ("planted", "movielens-100k")
_ALL_TIME = (datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC))


class DatasetUnavailable(Exception):
    """A data set cannot be built here; the message says what to install."""


@dataclass(frozen=True)
class SplitResult:
    dataset: str
    split: str
    runs: dict[str, list[Figures]] = field(default_factory=dict)
    chosen: list[str] = field(default_factory=list)  # the search's pick, per run

    def mean(self, method: str, figure: str) -> float:
        return statistics.fmean(getattr(run, figure) for run in self.runs[method])

    def spread(self, method: str, figure: str) -> float:
        values = [getattr(run, figure) for run in self.runs[method]]
        return statistics.pstdev(values) if len(values) > 1 else 0.0

    def gain(self, figure: str) -> float:
        """The product's relative gain over the best baseline on `figure` (0.05 is +5%)."""
        best = max(self.mean(method, figure) for method in BASELINES)
        return self.mean(PRODUCT, figure) / best - 1.0 if best > 0 else float("inf")


def build_dataset(name: str, folder: Path) -> Path:
    """Writes data set `name` into `folder` in the export's layout and returns the folder."""
    if name == "planted":
        rows = demo_interactions(datetime(2026, 1, 31, tzinfo=UTC)).to_training()
    elif name == "movielens-100k":
        rows = movielens_100k()
    else:
        raise DatasetUnavailable(f"unknown data set {name!r}: choose one of {DATASETS}")
    write_interactions(rows, folder)
    return folder


def movielens_100k() -> TrainingInteractions:
    """MovieLens 100k (GroupLens; research use, cite Harper & Konstan 2015, no redistribution)
    from the copy in the `recbole` wheel (MIT). A rating of 4 or 5 becomes a `like` (a
    positive), 1 to 3 a `skip` (seen, not a positive); the rating's time is the event's."""
    spec = importlib.util.find_spec("recbole")  # locates the package without importing torch
    if spec is None or not spec.submodule_search_locations:
        raise DatasetUnavailable(
            "movielens-100k needs the recbole wheel: pip install --no-deps recbole==1.2.1"
        )
    path = Path(next(iter(spec.submodule_search_locations)))
    path = path / "dataset_example" / "ml-100k" / "ml-100k.inter"
    lines = path.read_text().splitlines()[1:]
    users, items, ratings, stamps = zip(*(line.split("\t") for line in lines), strict=True)
    rating = np.array(ratings, dtype=np.float64)
    return TrainingInteractions.from_columns(
        [f"u{u}" for u in users],
        [f"m{i}" for i in items],
        np.where(rating >= 4, "like", "skip"),
        np.zeros(len(rating), dtype=np.int64),
        np.array(stamps, dtype=np.float64).astype(np.int64) * 1000,
    )


def read_export(uri: str, s3_endpoint: str | None = None) -> TrainingInteractions:
    return read_training_window(uri, *_ALL_TIME, s3_endpoint=s3_endpoint)


def evaluate_rows(
    dataset: str,
    rows: TrainingInteractions,
    defaults: LightFMTrainer,
    *,
    runs: int = 3,
    search_budget_s: float = 120.0,
    fit_budget_s: float | None = None,
    max_users: int = 10_000,
    progress: Callable[[str], None] = lambda _: None,
) -> list[SplitResult]:
    """Both splits of `rows`, every method, `runs` times (see the module docstring)."""
    results = []
    for split in (per_user_split(rows), time_split(rows)):
        result = SplitResult(dataset, split.name, {method: [] for method in METHODS})
        catalogue = Catalogue(split.training)
        for method, ranking in (
            ("popularity", catalogue.popularity()),
            ("trending", catalogue.trending(split.end)),
        ):
            figures = catalogue.measure(ranking, split.held_out, max_users=max_users)
            result.runs[method].extend([figures] * runs)  # deterministic: one measurement
        for run in range(runs):
            base = defaults.with_params(seed=42 + 1000 * run, num_threads=1)
            progress(f"{dataset} {split.name} run {run + 1}/{runs}")
            default_model = _train(base, split)
            result.runs["lightfm-defaults"].append(
                catalogue.measure(
                    catalogue.model(default_model), split.held_out, max_users=max_users
                )
            )
            found = search(
                base,
                split.training,
                split.start,
                split.end,
                search_budget_s,
                validation=validation_like(split),
                fit_budget_s=fit_budget_s,
            )
            chosen = found.trainer
            result.chosen.append(_changes(base, chosen))
            product = default_model if chosen.params() == base.params() else _train(chosen, split)
            result.runs[PRODUCT].append(
                catalogue.measure(catalogue.model(product), split.held_out, max_users=max_users)
            )
        results.append(result)
    return results


def validation_like(split: Split) -> Validation:
    """The search's validation for `split`: the same kind of split of its training part."""
    inner = (
        per_user_split(split.training) if split.name == "per-user" else time_split(split.training)
    )
    fit_end = split.end if split.name == "per-user" else inner.end
    return Validation(inner.training, inner.held_out, fit_end)


def _train(trainer: LightFMTrainer, split: Split) -> ModelArtifact:
    return trainer.train(split.training, split.start, split.end, datetime.now(UTC))


def _changes(base: LightFMTrainer, chosen: LightFMTrainer) -> str:
    before, after = base.params(), chosen.params()
    changed = {name: value for name, value in after.items() if before[name] != value}
    return ", ".join(f"{name}={value}" for name, value in changed.items()) or "defaults"


def table(results: Sequence[SplitResult]) -> str:
    """The terminal table: one block per data set and split, mean ± spread over runs."""
    lines = []
    for result in results:
        runs = len(result.runs[PRODUCT])
        lines.append(f"\n{result.dataset} / {result.split}  ({runs} runs; mean ± std)")
        lines.append(f"{'method':<18}" + "".join(f"{name:>20}" for name in FIGURES))
        for method in METHODS:
            cells = "".join(
                f"{result.mean(method, f):>12.4f} ± {result.spread(method, f):<5.3f}"
                for f in FIGURES
            )
            lines.append(f"{method:<18}{cells}")
        lines.append(
            f"product vs best baseline: precision@10 {result.gain('precision_at_10'):+.1%}, "
            f"NDCG@10 {result.gain('ndcg_at_10'):+.1%}; search picked: " + " | ".join(result.chosen)
        )
    return "\n".join(lines)


def summary(results: Sequence[SplitResult]) -> dict[str, object]:
    """One JSON-ready object: per data set and split, each method's precision@10 and
    NDCG@10, the product's gains, and `min_gain_vs_best_baseline` over all of them."""
    out: dict[str, object] = {}
    gains = []
    for result in results:
        entry: dict[str, object] = {
            method: {f: round(result.mean(method, f), 5) for f in ("precision_at_10", "ndcg_at_10")}
            | {
                f"{f}_std": round(result.spread(method, f), 5)
                for f in ("precision_at_10", "ndcg_at_10")
            }
            for method in METHODS
        }
        entry["gain_precision_at_10"] = round(result.gain("precision_at_10"), 4)
        entry["gain_ndcg_at_10"] = round(result.gain("ndcg_at_10"), 4)
        entry["search_picked"] = result.chosen
        gains += [result.gain("precision_at_10"), result.gain("ndcg_at_10")]
        out.setdefault(result.dataset, {})[result.split] = entry  # type: ignore[index]
    out["min_gain_vs_best_baseline"] = round(min(gains), 4) if gains else None
    return out


def default_trainer(
    components: int, epochs: int, seeds: int, *, serve_components: int | None = None
) -> LightFMTrainer:
    """Today's nightly configuration (as `app.composition.worker` builds it), one thread."""
    return LightFMTrainer(
        no_components=components,
        epochs=epochs,
        seeds=seeds,
        num_threads=1,
        serve_components=serve_components,
    )


def draw(results: Sequence[SplitResult], path: Path) -> None:
    from adapters.evaluation_plot import comparison_png

    comparison_png(
        [
            (
                f"{result.dataset} / {result.split}",
                {
                    method: {
                        f: (result.mean(method, f), result.spread(method, f))
                        for f in ("precision_at_10", "ndcg_at_10")
                    }
                    for method in METHODS
                },
            )
            for result in results
        ],
        str(path),
    )
