"""The experiment readout: per variant, what was served and what viewers did with it, each
metric against the control with an interval that stays valid however often it is read.

Every metric is a ratio of per-viewer sums, `sum(y) / sum(x)` over the variant's viewers (for a
per-viewer mean, x is 1 per viewer). The unit is the viewer: one viewer's events are correlated,
so the intervals come from viewer-level totals (`Moments`), never from event counts. Inputs are
cumulative: the observation for a day holds everything from the experiment's start through it.

A variant "wins" or "loses" on a metric only when its always-valid interval for the relative
lift excludes 0; that interval is intersected across the daily looks (a confidence sequence
stays valid under intersection), so reading it every morning does not inflate false positives.
The method is described in docs/experiments.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING

from domain.errors import DomainError

if TYPE_CHECKING:  # ports are the domain's types, never its runtime imports
    from domain.experiments import Experiment
    from ports.experiments import ExperimentData, ExperimentStatistics

class ReadoutDataError(DomainError):
    """The data the readout reads is malformed (a corrupt export file); not transient."""

    code = "readout_data"


#: The readout's window: two weeks by default (two full weekly cycles), at most a quarter.
DEFAULT_WINDOW_DAYS = 14
MAX_WINDOW_DAYS = 92

#: Metric name -> (what it measures, True when higher is better). Guardrails say "lower".
METRICS: Mapping[str, tuple[str, bool]] = {
    "ctr": ("positive interactions per item served", True),
    "view_rate": ("views per item served", True),
    "like_rate": ("likes per item served", True),
    "share_rate": ("shares per item served", True),
    "comment_rate": ("comments per item served", True),
    "complete_rate": ("completes per item served", True),
    "skip_rate": ("skips per item served (guardrail)", False),
    "hide_rate": ("hides per item served (guardrail)", False),
    "watch_time_per_session_ms": ("watch time per feed session, ms", True),
    "watch_time_per_viewer_ms": ("watch time per viewer, ms", True),
    "fallback_rate": ("pages served by a fallback (operational guardrail)", False),
}


@dataclass(frozen=True)
class Moments:
    """Sufficient statistics of a ratio metric over `n` viewers: sums of each viewer's
    numerator y and denominator x, of their squares and of their product."""

    n: int
    sum_y: float
    sum_x: float
    sum_yy: float
    sum_xx: float
    sum_xy: float


@dataclass(frozen=True)
class VariantDay:
    """One variant's totals from the experiment's start through `day` (UTC)."""

    day: date
    variant: str
    viewers: int
    sessions: int
    pages: int
    items: int
    metrics: Mapping[str, Moments]


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float


@dataclass(frozen=True)
class Lift:
    """Relative lift of a variant over the control (0.05 = +5%): a fixed-horizon interval
    (`low`, `high`) and the always-valid one (`sequential_low`, `sequential_high`)."""

    value: float
    low: float
    high: float
    sequential_low: float
    sequential_high: float


@dataclass(frozen=True)
class MetricResult:
    metric: str
    estimate: Estimate
    lift: Lift | None  # None for the control, or while either side has no data

    @property
    def verdict(self) -> str:
        """`better`, `worse` or `inconclusive`, by the always-valid interval."""
        if self.lift is None:
            return "inconclusive"
        higher_is_better = METRICS[self.metric][1]
        if self.lift.sequential_low > 0:
            return "better" if higher_is_better else "worse"
        if self.lift.sequential_high < 0:
            return "worse" if higher_is_better else "better"
        return "inconclusive"


@dataclass(frozen=True)
class VariantResult:
    variant: str
    viewers: int
    sessions: int
    pages: int
    items: int
    metrics: tuple[MetricResult, ...]


@dataclass(frozen=True)
class SampleRatio:
    """The sample-ratio-mismatch test: viewers seen per variant against the configured
    weights (chi-square). `mismatch` means the assignment or the logging is broken and no
    lift in this report can be trusted."""

    observed: Mapping[str, int]
    expected_share: Mapping[str, float]
    p_value: float
    mismatch: bool


@dataclass(frozen=True)
class ExperimentReport:
    experiment: str
    control: str
    start: date
    end: date
    variants: tuple[VariantResult, ...]
    sample_ratio: SampleRatio
    #: (day, variant, metric) -> lift as read that day: the chart's series.
    history: tuple[tuple[date, str, str, Lift], ...] = field(default=())


def report_window(end: date, days: int) -> tuple[date, date]:
    """(start, end) of the `days` UTC days ending with `end` (at least one day)."""
    return end - timedelta(days=max(1, days) - 1), end


class ExperimentReporter:
    """Builds the report of `experiment` from `data`, with `statistics` doing the numerics.
    `control` is the variant every other is compared with (default: the first configured)."""

    def __init__(
        self,
        experiment: Experiment,
        data: ExperimentData,
        statistics: ExperimentStatistics,
        *,
        control: str | None = None,
        confidence: float = 0.95,
        srm_alpha: float = 0.001,
    ) -> None:
        ids = [variant.id for variant in experiment.variants]
        if control is not None and control not in ids:
            raise ValueError(f"control {control!r} is not a variant of {experiment.name}")
        self.experiment = experiment
        self.control = control or ids[0]
        self._data = data
        self._statistics = statistics
        self._confidence = confidence
        self._srm_alpha = srm_alpha

    def report(self, start: date, end: date) -> ExperimentReport:
        """The report over the UTC days `start`..`end` (both included); days without data are
        skipped, a variant without viewers reports zeros and no lift."""
        days: dict[date, dict[str, VariantDay]] = {}
        for row in self._data.variant_days(start, end):
            days.setdefault(row.day, {})[row.variant] = row
        ordered = sorted(days)
        history: list[tuple[date, str, str, Lift]] = []
        bounds: dict[tuple[str, str], tuple[float, float]] = {}
        latest: dict[str, VariantDay] = days[ordered[-1]] if ordered else {}
        for day in ordered:
            for variant, metric, read in self._lifts(days[day]):
                low, high = bounds.get((variant, metric), (float("-inf"), float("inf")))
                low, high = max(low, read.sequential_low), min(high, read.sequential_high)
                bounds[(variant, metric)] = (low, high)
                history.append(
                    (day, variant, metric, Lift(read.value, read.low, read.high, low, high))
                )
        last = {(v, m): lift for d, v, m, lift in history if d == ordered[-1]}
        return ExperimentReport(
            experiment=self.experiment.name,
            control=self.control,
            start=start,
            end=end,
            variants=tuple(
                self._variant(v.id, latest.get(v.id), last) for v in self.experiment.variants
            ),
            sample_ratio=self._sample_ratio(latest),
            history=tuple(history),
        )

    def _lifts(self, day: Mapping[str, VariantDay]) -> list[tuple[str, str, Lift]]:
        control = day.get(self.control)
        if control is None:
            return []
        found = []
        for variant, row in sorted(day.items()):
            if variant == self.control:
                continue
            for metric in METRICS:
                treated, base = row.metrics.get(metric), control.metrics.get(metric)
                if treated is None or base is None:
                    continue
                lift = self._statistics.relative_lift(treated, base, self._confidence)
                if lift is not None:
                    found.append((variant, metric, lift))
        return found

    def _variant(
        self, variant: str, row: VariantDay | None, lifts: Mapping[tuple[str, str], Lift]
    ) -> VariantResult:
        if row is None:
            return VariantResult(variant, 0, 0, 0, 0, ())
        metrics = tuple(
            MetricResult(
                name,
                self._statistics.ratio_estimate(row.metrics[name], self._confidence),
                lifts.get((variant, name)),
            )
            for name in METRICS
            if name in row.metrics
        )
        return VariantResult(variant, row.viewers, row.sessions, row.pages, row.items, metrics)

    def _sample_ratio(self, latest: Mapping[str, VariantDay]) -> SampleRatio:
        total = sum(v.weight for v in self.experiment.variants)
        shares = {v.id: v.weight / total for v in self.experiment.variants}
        observed = {v: latest[v].viewers if v in latest else 0 for v in shares}
        p_value = self._statistics.sample_ratio_p_value(
            [observed[v] for v in shares], [shares[v] for v in shares]
        )
        return SampleRatio(observed, shares, p_value, p_value < self._srm_alpha)


def report_rows(report: ExperimentReport, day: date) -> list[dict[str, object]]:
    """The report flattened for a warehouse table: one row per variant and metric (plus one
    `viewers` row per variant carrying the ratio test), all read on `day`. A number the
    statistics could not give (NaN) is None, as a warehouse column wants it."""
    rows: list[dict[str, object]] = []
    for variant in report.variants:
        base = {"report_date": day, "experiment": report.experiment, "variant": variant.variant}
        rows.append(
            base
            | {
                "metric": "viewers",
                "value": float(variant.viewers),
                "low": None,
                "high": None,
                "lift": None,
                "lift_low": None,
                "lift_high": None,
                "verdict": "mismatch" if report.sample_ratio.mismatch else "ok",
            }
        )
        for result in variant.metrics:
            lift: Sequence[float | None] = (
                (result.lift.value, result.lift.sequential_low, result.lift.sequential_high)
                if result.lift
                else (None, None, None)
            )
            rows.append(
                base
                | {
                    "metric": result.metric,
                    "value": _finite(result.estimate.value),
                    "low": _finite(result.estimate.low),
                    "high": _finite(result.estimate.high),
                    "lift": _finite(lift[0]),
                    "lift_low": _finite(lift[1]),
                    "lift_high": _finite(lift[2]),
                    "verdict": result.verdict,
                }
            )
    return rows


def _finite(number: float | None) -> float | None:
    return number if number is not None and math.isfinite(number) else None
