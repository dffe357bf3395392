"""Implements `ports.experiments.ExperimentStatistics` (normal quantiles from the stdlib,
the chi-square test from scipy.stats).

- Ratio metrics over viewers: the delta method (Deng, Knoblich & Lu 2018, "Applying the Delta
  Method in Metric Analytics", KDD): Var(ȳ/x̄) ≈ (s_y² - 2R·s_xy + R²·s_x²) / (n·x̄²).
- Relative lift Rt/Rc - 1: the delta method again, the two variants independent.
- Always-valid interval: the normal-mixture sequential probability ratio test (mSPRT) of
  Johari, Koomen, Pekelis & Walsh 2017 ("Peeking at A/B Tests", KDD; Optimizely's Stats
  Engine) with mixing variance τ², inverted into a confidence sequence (Howard et al. 2021):
  θ is inside while Λ(θ̂ - θ) < 1/alpha, i.e. |θ̂ - θ| < sqrt(2V(V+τ²)/τ² · ln(sqrt((V+τ²)/V)/alpha)).
- Sample ratio mismatch: Pearson's chi-square goodness of fit (`scipy.stats.chisquare`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

from domain.experiment_report import Estimate, Lift, Moments

#: Mixing scale of the mSPRT on the relative-lift scale: lifts of about this size (±5%) are
#: the ones the test is tuned to find fastest; far larger or smaller ones still are found.
DEFAULT_MIXING_SCALE = 0.05


class ScipyExperimentStatistics:
    def __init__(self, mixing_scale: float = DEFAULT_MIXING_SCALE) -> None:
        if mixing_scale <= 0:
            raise ValueError(f"mixing_scale must be positive, not {mixing_scale}")
        self._tau2 = mixing_scale**2

    def ratio_estimate(self, moments: Moments, confidence: float) -> Estimate:
        ratio, variance = _ratio(moments)
        if math.isnan(variance):
            return Estimate(ratio, math.nan, math.nan)
        half = _z(confidence) * math.sqrt(variance)
        return Estimate(ratio, ratio - half, ratio + half)

    def relative_lift(
        self, treatment: Moments, control: Moments, confidence: float
    ) -> Lift | None:
        rt, vt = _ratio(treatment)
        rc, vc = _ratio(control)
        if math.isnan(vt) or math.isnan(vc) or rc == 0 or math.isnan(rc):
            return None
        lift = rt / rc - 1
        variance = (rt / rc) ** 2 * (vt / rt**2 + vc / rc**2) if rt else vt / rc**2
        if variance <= 0:
            return None
        fixed = _z(confidence) * math.sqrt(variance)
        alpha = 1 - confidence
        tau2 = self._tau2
        sequential = math.sqrt(
            2 * variance * (variance + tau2) / tau2
            * math.log(math.sqrt((variance + tau2) / variance) / alpha)
        )
        return Lift(lift, lift - fixed, lift + fixed, lift - sequential, lift + sequential)

    def sample_ratio_p_value(self, counts: Sequence[int], shares: Sequence[float]) -> float:
        total = sum(counts)
        expected = [share * total for share in shares]
        kept = [(c, e) for c, e in zip(counts, expected, strict=True) if e > 0]
        if total == 0 or len(kept) < 2:
            return 1.0
        if any(c > 0 for c, e in zip(counts, expected, strict=True) if e == 0):
            return 0.0  # viewers in a variant weighted 0: the assignment is broken
        # Imported here: scipy weighs about 75 MB, and the web workers, which carry this
        # adapter for the operator endpoint, should pay it only when the endpoint is called.
        from scipy import stats

        result = stats.chisquare([c for c, _ in kept], [e for _, e in kept])
        return float(result.pvalue)


def _z(confidence: float) -> float:
    """The two-sided normal quantile of `confidence` (1.96 for 0.95)."""
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def _ratio(m: Moments) -> tuple[float, float]:
    """(sum_y / sum_x, its delta-method variance); variance NaN with under 2 viewers."""
    if m.n < 2 or m.sum_x <= 0:
        return (m.sum_y / m.sum_x if m.sum_x else math.nan), math.nan
    n = m.n
    mean_y, mean_x = m.sum_y / n, m.sum_x / n
    ratio = mean_y / mean_x
    var_y = (m.sum_yy - n * mean_y**2) / (n - 1)
    var_x = (m.sum_xx - n * mean_x**2) / (n - 1)
    cov = (m.sum_xy - n * mean_x * mean_y) / (n - 1)
    variance = max((var_y - 2 * ratio * cov + ratio**2 * var_x) / (n * mean_x**2), 0.0)
    return ratio, variance
