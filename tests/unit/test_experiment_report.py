"""The report domain alone, on scripted statistics: the always-valid interval intersected over
the daily looks, verdicts by metric direction, variants without data, the ratio test's inputs
and the warehouse rows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import pytest

from domain.experiment_report import (
    Estimate,
    ExperimentReporter,
    Lift,
    Moments,
    VariantDay,
    report_rows,
    report_window,
)
from domain.experiments import Experiment, Variant

pytestmark = pytest.mark.unit

DAY1 = date(2026, 12, 1)
EXPERIMENT = Experiment(
    "ranker-test", (Variant("control", 25), Variant("treatment", 75), Variant("idle", 0))
)
SOME = Moments(10, 5.0, 50.0, 5.0, 250.0, 25.0)


@dataclass
class ScriptedStatistics:
    """Implements `ports.experiments.ExperimentStatistics`: day n's lift is `lifts[n]` (by the
    control's viewer count, which grows by one a day), every estimate 0.1 [0.05, 0.15]."""

    lifts: Sequence[tuple[float, float]]
    ratio_counts: list[tuple[list[int], list[float]]] = field(default_factory=list)

    def ratio_estimate(self, moments: Moments, confidence: float) -> Estimate:
        return Estimate(0.1, 0.05, 0.15) if moments.n else Estimate(math.nan, math.nan, math.nan)

    def relative_lift(self, treatment: Moments, control: Moments, confidence: float) -> Lift:
        low, high = self.lifts[control.n - 10]
        return Lift((low + high) / 2, low / 2, high / 2, low, high)

    def sample_ratio_p_value(self, counts: Sequence[int], shares: Sequence[float]) -> float:
        self.ratio_counts.append((list(counts), list(shares)))
        return 0.0004


@dataclass
class Days:
    """Implements `ports.experiments.ExperimentData`: control and treatment over `n` days."""

    n: int

    def variant_days(self, start: date, end: date) -> Sequence[VariantDay]:
        rows = []
        for day in range(self.n):
            control = Moments(10 + day, 5.0, 50.0, 5.0, 250.0, 25.0)
            metrics = {"like_rate": control, "skip_rate": control}
            rows.append(
                VariantDay(DAY1 + timedelta(days=day), "control", 10 + day, 1, 1, 50, metrics)
            )
            rows.append(VariantDay(DAY1 + timedelta(days=day), "treatment", 30, 3, 3, 150, metrics))
        return [row for row in rows if start <= row.day <= end]


def report_of(lifts: Sequence[tuple[float, float]]):  # type: ignore[no-untyped-def]
    statistics = ScriptedStatistics(lifts)
    reporter = ExperimentReporter(EXPERIMENT, Days(len(lifts)), statistics)
    return reporter.report(DAY1, DAY1 + timedelta(days=len(lifts) - 1)), statistics


def metric(report, variant: str, name: str):  # type: ignore[no-untyped-def]
    found = next(v for v in report.variants if v.variant == variant)
    return next(m for m in found.metrics if m.metric == name)


def test_the_always_valid_interval_is_intersected_over_the_daily_looks() -> None:
    report, _ = report_of([(-0.1, 0.3), (0.05, 0.5), (-0.2, 0.2)])

    likes = metric(report, "treatment", "like_rate")

    assert likes.lift is not None
    # today's read alone, [-0.2, 0.2], includes 0; with the earlier looks it is [0.05, 0.2]
    assert (likes.lift.sequential_low, likes.lift.sequential_high) == (0.05, 0.2)
    assert likes.lift.value == 0.0  # the estimate itself is today's
    assert likes.verdict == "better"
    reads = [
        (d, lift.sequential_low, lift.sequential_high)
        for d, v, m, lift in report.history
        if m == "like_rate"
    ]
    assert reads == [
        (DAY1, -0.1, 0.3),
        (DAY1 + timedelta(days=1), 0.05, 0.3),
        (DAY1 + timedelta(days=2), 0.05, 0.2),
    ]


def test_a_rise_in_a_guardrail_is_worse() -> None:
    report, _ = report_of([(0.02, 0.3)])

    assert metric(report, "treatment", "skip_rate").verdict == "worse"
    assert metric(report, "treatment", "like_rate").verdict == "better"


def test_an_interval_including_zero_is_inconclusive_and_the_control_has_no_lift() -> None:
    report, _ = report_of([(-0.01, 0.3)])

    assert metric(report, "treatment", "like_rate").verdict == "inconclusive"
    control = metric(report, "control", "like_rate")
    assert control.lift is None and control.verdict == "inconclusive"


def test_a_variant_without_viewers_reports_zeros() -> None:
    report, _ = report_of([(-0.01, 0.3)])

    idle = next(v for v in report.variants if v.variant == "idle")
    assert (idle.viewers, idle.sessions, idle.pages, idle.items, idle.metrics) == (0, 0, 0, 0, ())


def test_the_ratio_test_compares_the_latest_viewers_with_the_weights() -> None:
    report, statistics = report_of([(0.0, 0.1), (0.0, 0.1)])

    assert statistics.ratio_counts[-1] == ([11, 30, 0], [0.25, 0.75, 0.0])
    assert report.sample_ratio.observed == {"control": 11, "treatment": 30, "idle": 0}
    assert report.sample_ratio.mismatch  # p = 0.0004 < 0.001


def test_a_window_without_data_reports_no_viewers_and_no_history() -> None:
    reporter = ExperimentReporter(EXPERIMENT, Days(0), ScriptedStatistics([]))

    report = reporter.report(DAY1, DAY1)

    assert all(v.viewers == 0 for v in report.variants) and report.history == ()


def test_an_unknown_control_is_refused() -> None:
    with pytest.raises(ValueError, match="not a variant"):
        ExperimentReporter(EXPERIMENT, Days(1), ScriptedStatistics([]), control="nobody")


def test_the_warehouse_rows_carry_every_metric_and_no_nan() -> None:
    report, _ = report_of([(0.05, 0.3)])

    rows = report_rows(report, DAY1)

    # per variant with viewers: `viewers` and two metrics; the idle variant: `viewers`
    assert len(rows) == 3 + 3 + 1
    viewers = [r for r in rows if r["metric"] == "viewers"]
    assert {r["variant"]: (r["value"], r["verdict"]) for r in viewers} == {
        "control": (10.0, "mismatch"),
        "treatment": (30.0, "mismatch"),
        "idle": (0.0, "mismatch"),
    }
    liked = next(r for r in rows if r["variant"] == "treatment" and r["metric"] == "like_rate")
    assert (liked["lift_low"], liked["lift_high"], liked["verdict"]) == (0.05, 0.3, "better")
    assert all(
        not (isinstance(value, float) and math.isnan(value)) for r in rows for value in r.values()
    )


def test_the_window_counts_its_last_day() -> None:
    assert report_window(date(2026, 12, 14), 14) == (DAY1, date(2026, 12, 14))
    assert report_window(DAY1, 0) == (DAY1, DAY1)
