"""Models of `GET /experiments/report`: the shape of `domain.experiment_report_json`, so that
`/openapi.json` documents it and the route's output is checked against it."""

from __future__ import annotations

from datetime import date as Date  # noqa: N812 - `date` is also a field name below
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.experiment_report import DEFAULT_WINDOW_DAYS, MAX_WINDOW_DAYS

#: A number the statistics could not give (too little data) is null.
Number = float | None


class ReportModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReportQuery(ReportModel):
    """Query parameters of GET /experiments/report (query strings: integers are parsed)."""

    days: Annotated[int, Field(ge=1, le=MAX_WINDOW_DAYS)] = Field(
        default=DEFAULT_WINDOW_DAYS, description="Days in the window, ending with `end`."
    )
    end: Date | None = Field(
        default=None, description="Last UTC day of the window (YYYY-MM-DD); today by default."
    )


class EstimateOut(ReportModel):
    value: Number
    low: Number
    high: Number


class LiftOut(ReportModel):
    value: Number
    low: Number = Field(description="Fixed-horizon 95% interval, low end.")
    high: Number
    sequential_low: Number = Field(
        description="Always-valid interval (intersected over the daily looks), low end."
    )
    sequential_high: Number


class MetricOut(ReportModel):
    metric: str
    meaning: str
    estimate: EstimateOut
    lift: LiftOut | None = Field(description="Against the control; null for the control.")
    verdict: Literal["better", "worse", "inconclusive"]


class VariantOut(ReportModel):
    variant: str
    viewers: int
    sessions: int
    pages: int
    items: int
    metrics: list[MetricOut]


class SampleRatioOut(ReportModel):
    observed: dict[str, int]
    expectedShare: dict[str, float]  # noqa: N815 - the API is camelCase
    pValue: Number  # noqa: N815
    mismatch: bool = Field(description="True: the assignment is broken; trust no lift.")


class LiftReadOut(ReportModel):
    day: Date
    variant: str
    metric: str
    value: Number
    low: Number
    high: Number
    sequential_low: Number
    sequential_high: Number


class ExperimentReportOut(ReportModel):
    experiment: str
    control: str
    start: Date
    end: Date
    sampleRatio: SampleRatioOut  # noqa: N815
    variants: list[VariantOut]
    history: list[LiftReadOut] = Field(description="Each lift as read on each day: the chart.")
