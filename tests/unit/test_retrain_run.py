"""The nightly retrain's orchestration on fakes: what each outcome leaves behind (the serving
model, the published pointer, the run log, the metrics)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest

from domain.errors import DependencyUnavailable
from domain.model import ModelMetrics
from domain.retrain import RunStatus, Stage, TrainingDataError
from tests.fakes_retrain import NIGHT, OLD, OLD_METRICS, RetrainWorld

pytestmark = pytest.mark.unit


def test_the_first_run_publishes_its_model_and_the_model_service_serves_it() -> None:
    world = RetrainWorld()

    run = world.retrain().run(NIGHT)

    assert run.status is RunStatus.SUCCEEDED
    assert run.model_version is not None
    assert world.store.published() == run.model_version
    assert world.service.serving == run.model_version
    assert world.store.infos[run.model_version].metrics == run.candidate_metrics
    assert (run.rows_exported, run.rows_trained, run.serving_version) == (25, 900, None)
    assert run.failed_stage is None and run.error is None
    assert run.finished_at == NIGHT
    assert world.run_log.rows == {run.run_id: run}
    assert world.leases.held == {}  # released


def test_the_run_log_row_follows_the_run_stage_by_stage() -> None:
    world = RetrainWorld()

    run = world.retrain().run(NIGHT)

    assert world.run_log.stages_recorded(run.run_id) == [
        Stage.EXPORT,
        Stage.READ,
        Stage.TRAIN,
        Stage.EVALUATE,
        Stage.GATE,
        Stage.REFIT,
        Stage.PUBLISH,
        Stage.CONFIRM,
        None,
    ]
    assert [r.status for r in world.run_log.history[:-1]] == [RunStatus.RUNNING] * 8


def test_a_candidate_as_good_as_the_serving_model_replaces_it() -> None:
    world = RetrainWorld()
    world.serve_old_model()
    world.lab.candidate_metrics = ModelMetrics(0.195, 0.31, 0.89)

    run = world.retrain().run(NIGHT)

    assert run.status is RunStatus.SUCCEEDED
    assert (run.serving_version, run.serving_metrics) == (OLD, OLD_METRICS)
    assert world.service.serving == world.store.published() == run.model_version
    assert run.note is not None and "precision@10 0.1950 vs 0.2000" in run.note


def test_a_worse_candidate_is_rejected_and_the_serving_model_stays() -> None:
    world = RetrainWorld()
    world.serve_old_model()
    world.lab.candidate_metrics = ModelMetrics(0.10, 0.15, 0.91)

    run = world.retrain().run(NIGHT)

    assert run.status is RunStatus.REJECTED
    assert run.note == (
        "precision@10 0.1000 is 50.0% below the serving model's 0.2000 (tolerance 5.0%)"
    )
    assert run.failed_stage is None and run.error is None
    assert world.store.published() == world.service.serving == OLD
    assert set(world.store.infos) == {OLD}  # the rejected candidate is not stored
    assert world.run_log.rows[run.run_id] == run
    assert {"status": "rejected", "stage": "none"} in world.counted()


def _corrupt(world: RetrainWorld) -> None:
    world.lab.failures["read"] = TrainingDataError("corrupt export file date=2026-11-20/x")


def _empty_window(world: RetrainWorld) -> None:
    world.lab.training_rows = 0


def _nothing_held_out(world: RetrainWorld) -> None:
    world.lab.held_out_rows = 0


def _service_down(world: RetrainWorld) -> None:
    world.service.down = True


def _service_down_after_load(world: RetrainWorld) -> None:
    original = world.service.load

    def load_then_die(version: str) -> str:
        served = original(version)
        world.service.down = True
        return served

    world.service.load = load_then_die  # type: ignore[method-assign]


def _pointer_cannot_move(world: RetrainWorld) -> None:
    original = world.store.publish

    def refuse_new(version: str) -> None:
        if version != OLD:
            raise DependencyUnavailable("model_store", "bucket unreachable")
        original(version)

    world.store.publish = refuse_new  # type: ignore[method-assign]


FAILURES: dict[str, tuple[Callable[[RetrainWorld], None], Stage, str]] = {
    "export store down": (
        lambda w: setattr(w.export, "failure", DependencyUnavailable("export", "s3 down")),
        Stage.EXPORT,
        "export unavailable: s3 down",
    ),
    "corrupt partition": (_corrupt, Stage.READ, "corrupt export file date=2026-11-20/x"),
    "empty window": (_empty_window, Stage.READ, "empty training window"),
    "nothing held out": (_nothing_held_out, Stage.READ, "nothing to evaluate on"),
    "training fails": (
        lambda w: w.lab.failures.update(train=TrainingDataError("no positive interactions")),
        Stage.TRAIN,
        "no positive interactions",
    ),
    "evaluation breaks": (
        lambda w: w.lab.failures.update(evaluate=RuntimeError("bug")),
        Stage.EVALUATE,
        "RuntimeError: bug",
    ),
    "model store down at publish": (
        lambda w: w.lab.failures.update(keep=DependencyUnavailable("model_store", "disk full")),
        Stage.PUBLISH,
        "model_store unavailable: disk full",
    ),
    "model service down at publish": (
        _service_down,
        Stage.PUBLISH,
        "model_service unavailable",
    ),
    "model service gone after loading": (
        _service_down_after_load,
        Stage.CONFIRM,
        "model_service unavailable",
    ),
    "pointer cannot move": (_pointer_cannot_move, Stage.CONFIRM, "bucket unreachable"),
}


@pytest.mark.parametrize("failure", FAILURES, ids=list(FAILURES))
def test_a_failing_stage_fails_the_run_logs_it_and_leaves_the_serving_model(failure: str) -> None:
    arrange, stage, message = FAILURES[failure]
    world = RetrainWorld()
    world.serve_old_model()
    arrange(world)

    run = world.retrain().run(NIGHT)

    assert run.status is RunStatus.FAILED
    assert run.failed_stage is stage
    assert run.error is not None and message in run.error
    assert world.store.pointer == OLD
    if world.service.down:
        world.service.restart()  # a service that is down serves what the pointer names
    assert world.service.serving == OLD
    assert world.run_log.rows[run.run_id] == run
    assert {"status": "failed", "stage": stage.value} in world.counted()
    assert world.leases.held == {}


def test_after_a_failed_load_the_previous_model_is_loaded_again() -> None:
    world = RetrainWorld()
    world.serve_old_model()
    _pointer_cannot_move(world)

    run = world.retrain().run(NIGHT)

    assert run.model_version is not None
    assert world.service.loads == [run.model_version, OLD]
    assert run.note == f"restored {OLD} as the serving model"


def test_when_the_service_cannot_be_restored_its_poll_of_the_pointer_will() -> None:
    world = RetrainWorld()
    world.serve_old_model()
    _service_down_after_load(world)

    run = world.retrain().run(NIGHT)

    assert run.note is not None
    assert "returns to the published model at its next poll" in run.note
    assert world.store.pointer == OLD


def test_a_poll_racing_the_publish_is_undone_by_loading_again() -> None:
    world = RetrainWorld()
    world.serve_old_model()
    world.service.revert_after_load = True

    run = world.retrain().run(NIGHT)

    assert run.status is RunStatus.SUCCEEDED
    assert world.service.loads == [run.model_version, run.model_version]
    assert world.service.serving == run.model_version


def test_the_published_model_is_a_refit_on_the_whole_window_and_the_record_names_both() -> None:
    world = RetrainWorld()

    run = world.retrain().run(NIGHT)

    assert run.status is RunStatus.SUCCEEDED
    assert world.lab.refits == 1
    published = world.store.infos[run.model_version or ""]
    assert published.window_end == NIGHT  # trained up to the run's end, held-out day included
    assert run.note is not None and "published its refit" in run.note and "1000 rows" in run.note


def test_the_gate_compares_only_rows_the_serving_model_was_not_trained_on() -> None:
    # Given a serving model refit six hours into this run's held-out day
    world = RetrainWorld()
    world.serve_old_model()
    info = world.store.infos[OLD]
    world.store.infos[OLD] = replace(
        info, window_start=NIGHT - timedelta(days=30), window_end=NIGHT - timedelta(hours=18)
    )

    run = world.retrain().run(NIGHT)

    # then both models are scored on the 18 hours after its window only (75 of 100 rows)
    assert world.lab.compared_rows == 75
    assert run.note is not None and "75 held-out rows" in run.note


def test_with_no_row_unseen_by_the_serving_model_the_serving_model_stays() -> None:
    world = RetrainWorld()
    world.serve_old_model()
    info = world.store.infos[OLD]
    world.store.infos[OLD] = replace(info, window_start=NIGHT - timedelta(days=30))

    run = world.retrain().run(NIGHT)

    assert run.status is RunStatus.REJECTED
    assert world.service.serving == OLD and world.lab.refits == 0
    assert run.note is not None and "outside the serving model's training window" in run.note
