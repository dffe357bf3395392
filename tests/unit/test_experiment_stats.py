"""The statistics of the readout on small hand-made data with known answers: the delta method
against a closed form and a bootstrap, the mSPRT boundary against Johari et al.'s mixture
likelihood ratio, and the sample-ratio test."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from adapters.experiment_stats import DEFAULT_MIXING_SCALE, ScipyExperimentStatistics
from domain.experiment_report import Moments

pytestmark = pytest.mark.unit

STATS = ScipyExperimentStatistics()
Z95 = 1.959963984540054


def moments(y: npt.NDArray[np.float64], x: npt.NDArray[np.float64]) -> Moments:
    return Moments(len(y), float(y.sum()), float(x.sum()), float(y @ y), float(x @ x), float(x @ y))


def test_a_per_viewer_mean_has_the_textbook_interval() -> None:
    # x = 1 per viewer: the delta method reduces to mean ± z·s/√n
    y = np.array([1.0, 2.0, 3.0, 4.0, 5.0])

    estimate = STATS.ratio_estimate(moments(y, np.ones(5)), 0.95)

    half = Z95 * math.sqrt(2.5 / 5)  # sample variance 2.5
    assert estimate.value == pytest.approx(3.0)
    assert (estimate.low, estimate.high) == pytest.approx((3.0 - half, 3.0 + half))


def test_the_delta_method_matches_a_bootstrap_over_viewers() -> None:
    rng = np.random.default_rng(7)
    items = rng.poisson(20, 2_000).astype(float) + 1
    likes = rng.binomial(items.astype(int), rng.beta(2, 14, 2_000)).astype(float)

    estimate = STATS.ratio_estimate(moments(likes, items), 0.95)

    resampled = rng.integers(0, 2_000, (2_000, 2_000))
    ratios = likes[resampled].sum(axis=1) / items[resampled].sum(axis=1)
    assert (estimate.high - estimate.low) / (2 * Z95) == pytest.approx(ratios.std(), rel=0.1)
    assert estimate.value == pytest.approx(likes.sum() / items.sum())


def test_the_always_valid_interval_ends_where_the_mixture_ratio_reaches_one_over_alpha() -> None:
    rng = np.random.default_rng(3)
    control = moments(rng.poisson(3, 500).astype(float), np.full(500, 20.0))
    treated = moments(rng.poisson(3.3, 500).astype(float), np.full(500, 20.0))

    lift = STATS.relative_lift(treated, control, 0.95)

    assert lift is not None
    variance = ((lift.high - lift.low) / (2 * Z95)) ** 2
    tau2 = DEFAULT_MIXING_SCALE**2

    def mixture_likelihood_ratio(distance: float) -> float:
        # Johari, Koomen, Pekelis & Walsh 2017, normal mixture N(0, τ²) over the effect
        return math.sqrt(variance / (variance + tau2)) * math.exp(
            tau2 * distance**2 / (2 * variance * (variance + tau2))
        )

    half = lift.sequential_high - lift.value
    assert lift.value - lift.sequential_low == pytest.approx(half)
    assert mixture_likelihood_ratio(half) == pytest.approx(1 / 0.05)
    assert lift.sequential_high > lift.high and lift.sequential_low < lift.low


def test_the_relative_lift_is_the_ratio_of_the_variants_rates() -> None:
    control = moments(np.array([1.0, 2.0, 3.0, 2.0]), np.full(4, 10.0))  # 0.2
    treated = moments(np.array([3.0, 2.0, 3.0, 4.0]), np.full(4, 10.0))  # 0.3

    lift = STATS.relative_lift(treated, control, 0.95)

    assert lift is not None and lift.value == pytest.approx(0.5)
    assert lift.low < 0.5 < lift.high


def test_no_lift_is_given_without_enough_data() -> None:
    one_viewer = Moments(1, 2.0, 10.0, 4.0, 100.0, 20.0)
    two = moments(np.array([1.0, 2.0]), np.array([10.0, 10.0]))
    nothing_in_control = moments(np.array([0.0, 0.0]), np.array([10.0, 10.0]))

    assert STATS.relative_lift(one_viewer, two, 0.95) is None
    assert STATS.relative_lift(two, one_viewer, 0.95) is None
    assert STATS.relative_lift(two, nothing_in_control, 0.95) is None
    assert math.isnan(STATS.ratio_estimate(one_viewer, 0.95).low)


def test_the_ratio_test_flags_a_variant_that_lost_a_tenth_of_its_viewers() -> None:
    p_value = STATS.sample_ratio_p_value([4_500, 5_000], [0.5, 0.5])

    assert p_value < 0.001


def test_the_ratio_test_accepts_an_even_split_and_unequal_weights_met() -> None:
    assert STATS.sample_ratio_p_value([5_000, 5_040], [0.5, 0.5]) > 0.5
    assert STATS.sample_ratio_p_value([2_010, 7_990], [0.2, 0.8]) > 0.5
    assert STATS.sample_ratio_p_value([0, 0], [0.5, 0.5]) == 1.0


def test_viewers_in_a_variant_weighted_zero_are_a_mismatch() -> None:
    assert STATS.sample_ratio_p_value([100, 100, 3], [0.5, 0.5, 0.0]) == 0.0
