"""The nightly search's order, budget and early stopping; the popularity prior in the scorer;
the offline protocol's splits and figures."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from adapters.interaction_columns import TrainingInteractions
from adapters.lightfm import search as search_module
from adapters.lightfm.artifact import ModelArtifact
from adapters.lightfm.evaluation import blend_quality, ranking_quality
from adapters.lightfm.interactions import aggregate_pairs
from adapters.lightfm.neighbours import co_occurrence
from adapters.lightfm.offline import Catalogue, per_user_split, time_split
from adapters.lightfm.scorer import LoadedModel
from adapters.lightfm.trainer import LightFMTrainer
from app.demo_data import generate_interactions
from domain.model import ModelInfo

END = datetime(2026, 1, 31, tzinfo=UTC)
BLENDS = ("prior_weight", "neighbour_weight")
pytestmark = pytest.mark.unit


def small_rows() -> TrainingInteractions:
    return generate_interactions(60, 120, 3000, days=6, seed=3, end=END).to_training()


class SteppingClock:
    """Advances `step` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_search_tries_the_current_configuration_first_then_the_space_in_order() -> None:
    base = LightFMTrainer(no_components=4, epochs=5)
    found = search_module.search(
        base, small_rows(), END - timedelta(days=6), END, 1e9, clock=SteppingClock(0.0)
    )
    # The first configuration, its repeat from the next seed (the noise), then the space.
    repeat = {"seed": base.seed + 1}
    assert [t.step for t in found.trials] == [{}, repeat, *search_module.SPACE[1:]]
    assert found.trials[0].step == {}
    # The base, with the blend weights its checks found.
    assert set(found.trials[0].changes) <= {"prior_weight", "neighbour_weight"}
    picks = [
        base.with_params(epochs=t.epochs, **t.changes).params()
        for t in found.trials
        if t.step != repeat
    ]
    assert found.trainer.params() in picks


def test_search_stops_starting_trials_when_the_budget_is_spent() -> None:
    # Each clock read is 1 s; a trial reads the clock a few times: a 3 s budget allows one.
    found = search_module.search(
        LightFMTrainer(no_components=4, epochs=5),
        small_rows(),
        END - timedelta(days=6),
        END,
        3.0,
        clock=SteppingClock(1.0),
    )
    assert 1 <= len(found.trials) < len(search_module.SPACE)


def test_search_without_budget_keeps_the_base_configuration() -> None:
    base = LightFMTrainer(no_components=4, epochs=5)
    found = search_module.search(base, small_rows(), END - timedelta(days=6), END, 0.0)
    assert found.trainer is base and found.trials == ()


def test_the_pick_averages_as_many_seeds_as_one_fit_can_train_within_its_budget() -> None:
    rows, base = small_rows(), LightFMTrainer(no_components=4, epochs=5, seeds=3)
    start = END - timedelta(days=6)

    def seeds_within(fit_budget_s: float) -> int:
        found = search_module.search(base, rows, start, END, 0.5, fit_budget_s=fit_budget_s)
        assert found.trials and all(t.epoch_seconds > 0 for t in found.trials)
        return found.trainer.seeds

    assert seeds_within(1e6) == search_module.MAX_SEEDS
    assert seeds_within(1e-6) == 1  # not even one fits: one, never none


def test_early_stopping_ends_a_trial_after_patience_checks_without_gain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ndcgs = iter([0.1, 0.3, 0.2, 0.25, 0.9])

    def blends(
        _a: object, _v: object, weights: tuple[float, ...], **_: object
    ) -> list[tuple[float, float]]:
        return [(0.0, next(ndcgs))] * len(weights)

    monkeypatch.setattr(search_module, "blend_quality", blends)
    checks: list[search_module._Check] = []
    check = search_module._early_stopping(small_rows(), checks, 1e9, lambda: 0.0)
    verdicts = [check(epochs, None) for epochs in (5, 10, 15, 20)]  # type: ignore[arg-type]
    assert verdicts == [True, True, True, False]  # 0.3 at 10 epochs, then two checks lower
    assert max(checks)[5] == 10


def test_each_check_keeps_the_blend_that_scores_best(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[tuple[float, ...], tuple[float, ...]]] = []

    def blends(
        _a: object,
        _v: object,
        weights: tuple[float, ...],
        *,
        neighbour_weights: tuple[float, ...] = (0.0,),
        **_: object,
    ) -> list[tuple[float, float]]:
        calls.append((tuple(weights), tuple(neighbour_weights)))
        table = {(0.0, 4.0): 0.15, (0.5, 4.0): 0.2}  # prior 4 is best, then neighbours 0.5
        return [(0.1, table.get((n, w), 0.1)) for n in neighbour_weights for w in weights]

    monkeypatch.setattr(search_module, "blend_quality", blends)
    checks: list[search_module._Check] = []
    part = co_occurrence(aggregate_pairs(small_rows()))
    check = search_module._early_stopping(small_rows(), checks, 1e9, lambda: 0.0, part=part)
    check(5, None)  # type: ignore[arg-type]
    assert checks[0][0] == pytest.approx(0.3)
    # NDCG, precision, the prior weight, the neighbour weight, epochs
    assert checks[0][1:] == (0.2, 0.1, 4.0, 0.5, 5)
    # Every prior weight alone, then the neighbour weights at the best prior weight only.
    assert calls == [
        (search_module.PRIOR_WEIGHTS, (0.0,)),
        ((4.0,), search_module.NEIGHBOUR_WEIGHTS[1:]),
    ]


def test_later_trials_start_from_the_best_configuration_so_far() -> None:
    base = LightFMTrainer(no_components=4, epochs=5)
    found = search_module.search(
        base, small_rows(), END - timedelta(days=6), END, 1e9, clock=SteppingClock(0.0)
    )
    best, noise = found.trials[0], found.trials[1]
    assert noise.step == {"seed": base.seed + 1}  # measured, never picked
    min_gain = max(
        search_module.MIN_GAIN,
        search_module.NOISE_FACTOR * abs(noise.score - best.score) / best.score,
    )
    for trial in found.trials[2:]:
        structure = {k: v for k, v in best.changes.items() if k not in BLENDS}
        tried = {**structure, **trial.step}
        assert {k: v for k, v in trial.changes.items() if k not in BLENDS} == {
            k: v for k, v in tried.items() if getattr(base, k) != v
        }
        if trial.score > best.score * (1 + min_gain):
            best = trial
    assert found.trainer.params() == base.with_params(epochs=best.epochs, **best.changes).params()


def test_the_search_validates_on_the_rows_it_is_given() -> None:
    rows = small_rows()
    split = per_user_split(rows)
    base = LightFMTrainer(no_components=4, epochs=5)
    start = END - timedelta(days=6)
    given = search_module.Validation(split.training, split.held_out, END)
    found = search_module.search(
        base, rows, start, END, 1e9, clock=SteppingClock(0.0), validation=given
    )
    assert found.trials and found.trials[0].ndcg_at_10 > 0
    # No validation rows given: no trial, although the newest day has rows.
    empty = search_module.Validation(
        split.training, split.held_out.take(np.zeros(0, np.int64)), END
    )
    unvalidated = search_module.search(base, rows, start, END, 1e9, validation=empty)
    assert unvalidated.trials == () and unvalidated.trainer is base


def test_a_blend_weight_of_one_scores_as_the_scorer_ranks() -> None:
    rows = small_rows()
    split = time_split(rows)
    trained = LightFMTrainer(no_components=4, epochs=5, prior_weight=1.0).train(
        split.training, split.start, split.end, END
    )
    assert trained.item_prior is not None and trained.item_prior.any()
    blended = blend_quality(trained, split.held_out, (0.0, 1.0))
    assert blended[1] == ranking_quality(trained, split.held_out)
    plain = replace(trained, item_prior=None)
    assert blended[0] == ranking_quality(plain, split.held_out)


def artifact(prior: np.ndarray | None) -> ModelArtifact:
    rng = np.random.default_rng(1)
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    n_users, n_items, k = 3, 50, 8
    info = ModelInfo("t-1", moment, moment, moment, n_users, n_items, 0, None, {})
    return ModelArtifact(
        info=info,
        user_ids=[f"u{i}" for i in range(n_users)],
        item_ids=[f"v{i}" for i in range(n_items)],
        user_embeddings=rng.standard_normal((n_users, k), dtype=np.float32),
        user_biases=rng.standard_normal(n_users, dtype=np.float32),
        item_embeddings=rng.standard_normal((n_items, k), dtype=np.float32),
        item_biases=rng.standard_normal(n_items, dtype=np.float32),
        seen_indptr=np.zeros(n_users + 1, dtype=np.int64),
        seen_indices=np.zeros(0, dtype=np.int32),
        item_prior=prior,
    )


def test_without_a_prior_the_scorer_ranks_exactly_by_lightfms_score() -> None:
    # bench/scoring.py's artifacts carry no prior: their path is the plain product.
    plain = artifact(None)
    model = LoadedModel(plain)
    expected = plain.user_embeddings[1] @ plain.item_embeddings.T + plain.item_biases
    ranked = model.rank("u1", 50).items
    assert [v for v, _ in ranked] == [f"v{i}" for i in np.argsort(-expected, kind="stable")]
    scores = np.array([s for _, s in ranked])
    assert scores == pytest.approx(np.sort(expected)[::-1] + plain.user_biases[1], abs=1e-5)
    assert model.score_matrix_bytes() == (8 + 1) * 50 * 4  # no extra row streamed


def test_a_prior_lifts_its_video_to_the_top_of_every_feed() -> None:
    prior = np.zeros(50, dtype=np.float32)
    prior[17] = 100.0
    model = LoadedModel(artifact(prior))
    assert {model.rank(user, 1).items[0][0] for user in ("u0", "u1", "u2")} == {"v17"}


def test_per_user_split_holds_out_each_viewers_last_fifth() -> None:
    rows = small_rows()
    split = per_user_split(rows)
    assert len(split.training) + len(split.held_out) == len(rows)
    for user in range(len(rows.user_vocab)):
        mine = rows.occurred_at_ms[rows.user_codes == user]
        held = split.held_out.occurred_at_ms[split.held_out.user_codes == user]
        kept = split.training.occurred_at_ms[split.training.user_codes == user]
        assert len(held) == int(len(mine) * 0.2)
        if len(held) and len(kept):
            assert held.min() >= kept.max()


def test_time_split_holds_out_the_last_fifth_of_time() -> None:
    rows = small_rows()
    split = time_split(rows)
    assert split.training.occurred_at_ms.max() < split.held_out.occurred_at_ms.min()
    span = rows.occurred_at_ms.max() - rows.occurred_at_ms.min()
    cut = split.held_out.occurred_at_ms.min() - rows.occurred_at_ms.min()
    assert cut == pytest.approx(0.8 * span, rel=0.01)


def test_an_oracle_ranking_scores_auc_one_and_its_reverse_zero() -> None:
    split = time_split(small_rows())
    catalogue = Catalogue(split.training)
    users, items = catalogue._relevant(split.held_out)
    truth = np.zeros((len(catalogue.user_ids), len(catalogue.item_ids)), dtype=np.float32)
    truth[users[items >= 0], items[items >= 0]] = 1.0
    oracle = catalogue.measure(lambda u: truth[u], split.held_out)
    reverse = catalogue.measure(lambda u: -truth[u], split.held_out)
    assert oracle.auc == pytest.approx(1.0)
    assert reverse.auc == pytest.approx(0.0)
    assert oracle.precision_at_10 > reverse.precision_at_10
    assert 0 < oracle.coverage <= 1 and oracle.novelty > 0


def test_the_report_chart_reads_every_search_trial_from_the_run_note() -> None:
    from adapters.report_plot import search_trials
    from domain.retrain import SEARCH_NOTE

    note = (
        "published; "
        + SEARCH_NOTE
        + "base e20 p@10=0.1200 ndcg@10=0.1700; {'loss': 'bpr'} e5 p@10=0.0100 ndcg@10=0.0200"
    )
    assert search_trials(note) == [0.17, 0.02]
    assert search_trials("published") == []
