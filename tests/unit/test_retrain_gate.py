"""The quality gate: which candidate may replace the serving model."""

from __future__ import annotations

import math

import pytest

from domain.model import ModelMetrics
from domain.retrain import gate

pytestmark = pytest.mark.unit

SERVING = ModelMetrics(precision_at_10=0.20, recall_at_10=0.30, auc=0.90)


def test_with_no_serving_model_the_candidate_is_published() -> None:
    decision = gate(ModelMetrics(0.01, 0.01, 0.51), None, tolerance=0.05)

    assert decision.publish
    assert "no model is serving" in decision.reason


def test_a_candidate_as_good_or_better_is_published() -> None:
    assert gate(SERVING, SERVING, tolerance=0.0).publish
    assert gate(ModelMetrics(0.25, 0.35, 0.95), SERVING, tolerance=0.0).publish


def test_a_candidate_worse_but_within_the_tolerance_is_published() -> None:
    # 4 % below on precision@10 and on AUC, with 5 % allowed
    decision = gate(ModelMetrics(0.192, 0.288, 0.864), SERVING, tolerance=0.05)

    assert decision.publish
    assert "precision@10 0.1920 vs 0.2000" in decision.reason


def test_precision_at_10_falling_beyond_the_tolerance_keeps_the_serving_model() -> None:
    decision = gate(ModelMetrics(0.18, 0.30, 0.95), SERVING, tolerance=0.05)

    assert not decision.publish
    assert decision.reason == (
        "precision@10 0.1800 is 10.0% below the serving model's 0.2000 (tolerance 5.0%)"
    )


def test_auc_falling_beyond_the_tolerance_keeps_the_serving_model() -> None:
    decision = gate(ModelMetrics(0.22, 0.33, 0.80), SERVING, tolerance=0.05)

    assert not decision.publish
    assert decision.reason.startswith("AUC 0.8000 is 11.1% below")


def test_recall_alone_does_not_decide() -> None:
    # recall@10 counts the same hits as precision@10; only the gated metrics decide
    assert gate(ModelMetrics(0.20, 0.10, 0.90), SERVING, tolerance=0.05).publish


def test_a_candidate_with_metrics_that_are_not_numbers_is_never_published() -> None:
    for broken in (math.nan, math.inf):
        assert not gate(ModelMetrics(broken, 0.3, 0.9), SERVING, tolerance=0.5).publish
        assert not gate(ModelMetrics(0.2, 0.3, broken), None, tolerance=0.5).publish


def test_against_a_serving_model_that_scores_zero_any_candidate_passes() -> None:
    zero = ModelMetrics(0.0, 0.0, 0.0)

    assert gate(zero, zero, tolerance=0.0).publish


@pytest.mark.parametrize("tolerance", [-0.01, 1.0, 2.0])
def test_a_tolerance_outside_zero_to_one_is_refused(tolerance: float) -> None:
    with pytest.raises(ValueError, match="tolerance"):
        gate(SERVING, SERVING, tolerance=tolerance)
