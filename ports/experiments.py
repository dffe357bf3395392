"""What the experiment readout (`domain.experiment_report`) needs: the served and consumed data
summed per viewer, the statistics, and a table to keep the daily rows in.

Errors: `ExperimentData` and `ExperimentReportLog` raise `domain.errors.DependencyUnavailable`
when their store cannot be reached; `ExperimentData` raises
`domain.experiment_report.ReadoutDataError` when what it reads is malformed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Protocol

from domain.experiment_report import Estimate, Lift, Moments, VariantDay


class ExperimentData(Protocol):
    """Impressions and the interactions on served items, per viewer (a viewer belongs to the
    variant their pages were served under)."""

    def variant_days(self, start: date, end: date) -> Sequence[VariantDay]:
        """For each UTC day from `start` to `end` (included) that has impressions, one row per
        variant: totals from `start` through that day, and the `Moments` of every metric in
        `domain.experiment_report.METRICS` over the variant's viewers so far. Interactions
        count when they are on a video the viewer was served in that feed session. Empty when
        nothing was served in the window."""
        ...


class ExperimentStatistics(Protocol):
    """The numerics; `confidence` is a level such as 0.95."""

    def ratio_estimate(self, moments: Moments, confidence: float) -> Estimate:
        """`sum_y / sum_x` with a delta-method interval over viewers (NaN when empty)."""
        ...

    def relative_lift(
        self, treatment: Moments, control: Moments, confidence: float
    ) -> Lift | None:
        """`treatment / control - 1` with a fixed-horizon and an always-valid interval; None
        when either side has too little data (fewer than 2 viewers, or a zero control)."""
        ...

    def sample_ratio_p_value(self, counts: Sequence[int], shares: Sequence[float]) -> float:
        """p-value of the observed counts under the expected shares (summing to 1)."""
        ...


class ExperimentReportLog(Protocol):
    """The warehouse table of daily report rows (`domain.experiment_report.report_rows`)."""

    def record(self, rows: Sequence[Mapping[str, object]]) -> None:
        """Store the rows, replacing those of the same (report_date, experiment, variant,
        metric): a rerun of the same day leaves one row each."""
        ...
