"""The experiment readout after the nightly retrain: the day's rows reach the report log, and
nothing the readout does fails the retrain."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pytest

from adapters.experiment_stats import ScipyExperimentStatistics
from app.composition.worker import WorkerOverrides, build_worker
from app.settings import Settings
from domain.errors import DependencyUnavailable
from domain.experiment_report import ExperimentReporter, Moments, VariantDay
from domain.experiments import Experiment, Variant
from domain.nightly_readout import NightlyReadout
from domain.retrain import RunStatus
from tests.fakes_retrain import NIGHT, RetrainWorld

pytestmark = pytest.mark.unit

EXPERIMENT = Experiment("ranker-test", (Variant("control", 50), Variant("treatment", 50)))
YESTERDAY = NIGHT.date() - timedelta(days=1)


@dataclass
class OneDayOfData:
    """Implements `ports.experiments.ExperimentData`: 100 viewers a variant on `YESTERDAY`."""

    failure: Exception | None = None
    asked: list[tuple[date, date]] = field(default_factory=list)

    def variant_days(self, start: date, end: date) -> Sequence[VariantDay]:
        self.asked.append((start, end))
        if self.failure is not None:
            raise self.failure
        likes = Moments(100, 12.0, 200.0, 20.0, 420.0, 26.0)
        return [
            VariantDay(YESTERDAY, variant, 100, 120, 150, 200, {"like_rate": likes})
            for variant in ("control", "treatment")
        ]


@dataclass
class RecordingReportLog:
    """Implements `ports.experiments.ExperimentReportLog`, keeping what it was given."""

    unavailable: bool = False
    rows: list[Mapping[str, object]] = field(default_factory=list)

    def record(self, rows: Sequence[Mapping[str, object]]) -> None:
        if self.unavailable:
            raise DependencyUnavailable("experiment_report_log", "injected by the test")
        self.rows.extend(rows)


def readout(data: OneDayOfData, report_log: RecordingReportLog) -> NightlyReadout:
    reporter = ExperimentReporter(EXPERIMENT, data, ScipyExperimentStatistics())
    return NightlyReadout(reporter, report_log, window_days=14)


def test_the_night_writes_the_report_of_the_fourteen_days_ending_yesterday() -> None:
    data, report_log = OneDayOfData(), RecordingReportLog()

    written = readout(data, report_log).run(NIGHT)

    assert data.asked == [(YESTERDAY - timedelta(days=13), YESTERDAY)]
    assert written == len(report_log.rows) == 4  # per variant: viewers and like_rate
    assert {row["report_date"] for row in report_log.rows} == {YESTERDAY}
    treated = next(
        r for r in report_log.rows if r["variant"] == "treatment" and r["metric"] == "like_rate"
    )
    assert treated["value"] == pytest.approx(0.06) and treated["lift"] == pytest.approx(0.0)


def test_a_warehouse_that_is_down_costs_the_rows_and_nothing_else() -> None:
    report_log = RecordingReportLog(unavailable=True)

    assert readout(OneDayOfData(), report_log).run(NIGHT) == 0


def test_data_that_cannot_be_read_costs_the_rows_and_nothing_else() -> None:
    data = OneDayOfData(failure=DependencyUnavailable("database", "down"))
    report_log = RecordingReportLog()

    assert readout(data, report_log).run(NIGHT) == 0
    assert report_log.rows == []


def test_a_bug_in_the_readout_is_raised_by_the_readout_itself() -> None:
    with pytest.raises(RuntimeError):
        readout(OneDayOfData(failure=RuntimeError("a bug")), RecordingReportLog()).run(NIGHT)


def worker_settings(tmp_path: Path) -> Settings:
    experiment = {
        "name": EXPERIMENT.name,
        "variants": [{"id": "control", "weight": 50}, {"id": "treatment", "weight": 50}],
    }
    return Settings(data_dir=tmp_path, feed_experiment=json.dumps(experiment))


def overrides(world: RetrainWorld, data: OneDayOfData, log: RecordingReportLog) -> WorkerOverrides:
    return WorkerOverrides(
        clock=world.clock,
        metrics=world.metrics,
        export=world.export,
        lab=world.lab,
        store=world.store,
        admin=world.service,
        run_log=world.run_log,
        leases=world.leases,
        report=world.report,
        holder="worker-a",
        experiment_data=data,
        report_log=log,
    )


def test_the_worker_writes_the_readout_after_the_retrain(tmp_path: Path) -> None:
    world, report_log = RetrainWorld(), RecordingReportLog()
    composition = build_worker(
        worker_settings(tmp_path), overrides(world, OneDayOfData(), report_log)
    )

    run = composition.retrain.run(composition.clock.now())
    composition.close()

    assert run.status is RunStatus.SUCCEEDED
    assert len(report_log.rows) == 4


def test_a_broken_readout_leaves_the_retrain_succeeded(tmp_path: Path) -> None:
    world = RetrainWorld()
    data = OneDayOfData(failure=RuntimeError("a bug in the readout"))
    composition = build_worker(
        worker_settings(tmp_path), overrides(world, data, RecordingReportLog())
    )

    run = composition.retrain.run(composition.clock.now())
    composition.close()

    assert run.status is RunStatus.SUCCEEDED
    assert world.run_log.rows == {run.run_id: run}
