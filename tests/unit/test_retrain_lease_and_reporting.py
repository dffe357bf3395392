"""The nightly retrain on fakes: one run at a time (the lease), killed runs, an unavailable run
log, and what a run reports (metrics, the chart, progress)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.nightly_retrain import LEASE_NAME
from domain.retrain import RetrainRun, RunStatus, Stage
from tests.fakes_retrain import NIGHT, OLD, TTL, RecordingProgress, RetrainWorld

pytestmark = pytest.mark.unit


class WorkerKilled(BaseException):
    """Stands for SIGKILL: nothing in the retrain catches it, so no code after it runs."""


def test_a_run_that_finds_the_lease_taken_does_nothing_and_says_so() -> None:
    world = RetrainWorld()
    world.serve_old_model()
    world.leases.acquire(LEASE_NAME, "worker-b", NIGHT, TTL)

    run = world.retrain("worker-a").run(NIGHT)

    assert run.status is RunStatus.SKIPPED
    assert run.note == "another worker holds the nightly-retrain lease"
    assert world.export.calls == []
    assert world.leases.held[LEASE_NAME][0] == "worker-b"
    assert world.run_log.rows[run.run_id] == run
    assert world.report.written == []


def test_a_killed_run_blocks_until_its_lease_expires_then_is_marked_abandoned() -> None:
    world = RetrainWorld()
    world.serve_old_model()

    def die() -> None:
        raise WorkerKilled

    world.lab.on_train = die
    with pytest.raises(WorkerKilled):
        world.retrain("worker-a").run(NIGHT)
    (killed,) = world.run_log.rows.values()
    assert (killed.status, killed.failed_stage) == (RunStatus.RUNNING, Stage.TRAIN)
    world.lab.on_train = None

    world.clock.moment = NIGHT + TTL - timedelta(seconds=1)
    blocked = world.retrain("worker-b").run(world.clock.now())
    assert blocked.status is RunStatus.SKIPPED
    assert world.store.pointer == world.service.serving == OLD

    world.clock.moment = NIGHT + TTL
    recovered = world.retrain("worker-b").run(world.clock.now())

    assert recovered.status is RunStatus.SUCCEEDED
    abandoned = world.run_log.rows[killed.run_id]
    assert (abandoned.status, abandoned.failed_stage) == (RunStatus.ABANDONED, Stage.TRAIN)
    assert abandoned.error is not None
    assert f"found by run {recovered.run_id}" in abandoned.error
    assert {"status": "abandoned", "stage": "train"} in world.counted()


def test_a_run_that_loses_its_lease_stops_before_publishing() -> None:
    world = RetrainWorld()
    world.serve_old_model()

    def lease_lapses_and_is_taken() -> None:
        world.leases.held[LEASE_NAME] = ("worker-b", NIGHT + TTL)

    world.lab.on_train = lease_lapses_and_is_taken

    run = world.retrain("worker-a").run(NIGHT)

    assert (run.status, run.failed_stage) == (RunStatus.FAILED, Stage.EVALUATE)
    assert run.error == "lost the nightly-retrain lease to another worker"
    assert world.store.pointer == OLD
    assert world.leases.held[LEASE_NAME][0] == "worker-b"  # not released: not ours


def test_a_database_down_at_the_lock_fails_the_run_at_the_lock_stage() -> None:
    world = RetrainWorld()
    world.leases.unavailable = True

    run = world.retrain().run(NIGHT)

    assert (run.status, run.failed_stage) == (RunStatus.FAILED, Stage.LOCK)
    assert run.error == "database unavailable: the fake database is switched off"
    assert world.run_log.rows[run.run_id] == run


def test_a_run_log_that_is_down_does_not_stop_the_run() -> None:
    world = RetrainWorld()
    world.run_log.unavailable = True

    run = world.retrain().run(NIGHT)

    assert run.status is RunStatus.SUCCEEDED
    assert world.service.serving == run.model_version
    assert run.note is not None and "not in the run log: run_log unavailable" in run.note


def test_metrics_report_duration_status_rows_and_model_quality() -> None:
    world = RetrainWorld()
    world.serve_old_model()

    def five_minutes_of_training() -> None:
        world.clock.advance(timedelta(minutes=5))

    world.lab.on_train = five_minutes_of_training

    world.retrain().run(NIGHT)

    assert world.counted() == [{"status": "succeeded", "stage": "none"}]
    assert world.metrics.timings == [("retrain.duration_ms", 300_000.0, {"status": "succeeded"})]
    gauges = {(name, tags.get("model")): value for name, value, tags in world.metrics.gauges}
    assert gauges[("retrain.rows_exported", None)] == 25
    assert gauges[("retrain.rows_trained", None)] == 900
    assert gauges[("retrain.model.precision_at_10", "candidate")] == 0.20
    assert gauges[("retrain.model.auc", "serving")] == 0.90


def test_the_report_draws_the_recent_runs_including_this_one() -> None:
    world = RetrainWorld()
    first = world.retrain().run(NIGHT)
    world.clock.moment = NIGHT + timedelta(days=1)

    second = world.retrain().run(world.clock.now())

    assert [[run.run_id for run in runs] for runs in world.report.written] == [
        [first.run_id],
        [second.run_id, first.run_id],
    ]


def test_progress_is_told_each_stage_and_the_exported_rows() -> None:
    world = RetrainWorld()
    progress = RecordingProgress()

    world.retrain().run(NIGHT, progress)

    assert [e for e in progress.events if e[0] == "rows"] == [
        ("rows", "export", 10),
        ("rows", "export", 20),
        ("rows", "export", 25),
    ]
    started = [stage for kind, stage, _ in progress.events if kind == "start"]
    assert started == [stage.value for stage in Stage]
    assert all(ok for kind, _, ok in progress.events if kind == "end")


def test_the_run_id_sorts_by_start_time() -> None:
    world = RetrainWorld()

    run: RetrainRun = world.retrain().run(NIGHT)

    assert run.run_id.startswith("20261126T020000Z-")
