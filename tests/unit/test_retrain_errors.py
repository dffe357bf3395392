"""Errors that mean something: what a port declares fails its stage quietly; anything else is a
bug, logged once with its traceback, and the run is recorded FAILED (`domain.nightly_retrain`)."""

from __future__ import annotations

import logging

import pytest

from domain.errors import DependencyUnavailable
from domain.model_rollout import ModelRollout
from domain.retrain import RetrainRun, RunStatus, Stage, TrainingDataError
from tests.fakes_retrain import NIGHT, OLD, RetrainWorld

pytestmark = pytest.mark.unit


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.exc_info is not None]


def test_a_declared_error_fails_its_stage_with_a_one_line_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = RetrainWorld()
    world.serve_old_model()
    world.lab.failures["train"] = TrainingDataError("no positive interactions")

    with caplog.at_level(logging.WARNING):
        run = world.retrain().run(NIGHT)

    assert (run.status, run.failed_stage) == (RunStatus.FAILED, Stage.TRAIN)
    assert run.error == "TrainingDataError: no positive interactions"
    assert tracebacks(caplog) == []
    assert [r.levelno for r in caplog.records if "stage train" in r.getMessage()] == [
        logging.WARNING
    ]


def test_an_unexpected_error_in_a_stage_is_logged_once_with_its_traceback_and_fails_the_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = RetrainWorld()
    world.serve_old_model()
    world.lab.failures["train"] = TypeError("'NoneType' object is not subscriptable")

    with caplog.at_level(logging.WARNING):
        run = world.retrain().run(NIGHT)

    assert (run.status, run.failed_stage) == (RunStatus.FAILED, Stage.TRAIN)
    assert run.error == "unexpected TypeError: 'NoneType' object is not subscriptable"
    [logged] = tracebacks(caplog)
    assert logged.levelno == logging.ERROR and logged.exc_info is not None
    assert logged.exc_info[0] is TypeError
    assert world.run_log.rows[run.run_id] == run
    assert world.leases.held == {}
    assert world.store.pointer == OLD


def test_an_unexpected_error_while_publishing_still_rolls_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = RetrainWorld()
    world.serve_old_model()
    original = world.service.load

    def load_then_break(version: str) -> str:
        original(version)
        if version != OLD:
            raise KeyError("serving")  # the new model is loaded, then the adapter breaks
        return version

    world.service.load = load_then_break  # type: ignore[method-assign]

    with caplog.at_level(logging.WARNING):
        run = world.retrain().run(NIGHT)

    assert (run.status, run.failed_stage) == (RunStatus.FAILED, Stage.PUBLISH)
    assert run.error is not None and run.error.startswith("unexpected KeyError")
    assert run.note == f"restored {OLD} as the serving model"
    assert world.service.serving == OLD
    assert len(tracebacks(caplog)) == 1


def test_an_unexpected_error_between_stages_fails_the_run_at_the_stage_it_entered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = RetrainWorld()
    world.serve_old_model()
    original = world.run_log.record

    def record(run: RetrainRun) -> None:
        if run.status is RunStatus.RUNNING:
            raise TypeError("a bug in the run log adapter")
        original(run)

    world.run_log.record = record  # type: ignore[method-assign]

    with caplog.at_level(logging.WARNING):
        run = world.retrain().run(NIGHT)

    assert (run.status, run.failed_stage) == (RunStatus.FAILED, Stage.EXPORT)
    assert run.error == "unexpected TypeError: a bug in the run log adapter"
    assert world.run_log.rows[run.run_id] == run
    assert len(tracebacks(caplog)) == 1
    assert world.leases.held == {}
    assert world.store.pointer == OLD


def test_rolling_back_notes_what_the_ports_declare_and_lets_a_bug_through() -> None:
    world = RetrainWorld()
    world.serve_old_model()
    rollout = ModelRollout(world.lab, world.store, world.service)
    world.service.down = True

    assert "the model service: model_service unavailable" in rollout.roll_back(OLD)

    def broken_publish(version: str) -> None:
        raise AttributeError("a bug in the model store adapter")

    world.store.pointer = "20261126T020000Z-000001"
    world.store.publish = broken_publish  # type: ignore[method-assign]
    with pytest.raises(AttributeError):
        rollout.roll_back(OLD)


def test_a_lease_that_cannot_be_released_expires_without_failing_the_run() -> None:
    world = RetrainWorld()
    world.serve_old_model()

    def unavailable_release(name: str, holder: str) -> None:
        raise DependencyUnavailable("database", "gone")

    world.leases.release = unavailable_release  # type: ignore[method-assign]

    run = world.retrain().run(NIGHT)

    assert run.status is RunStatus.SUCCEEDED
    assert world.leases.held["nightly-retrain"][0] == "worker-a"  # until its ttl runs out
