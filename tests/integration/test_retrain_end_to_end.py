"""The nightly retrain end to end, as `feedrec worker` / `feedrec retrain --now` build it: a
SQLite database seeded with synthetic interactions (taste clusters), the parquet export to a
folder, LightFM, a local model store, the real gRPC model service (127.0.0.1, a port it
picked, stopped after each test) and the embedded SQL run log. Small models (16 components,
10 epochs) keep it quick. tests/integration/retrain_support.py builds the pieces."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from adapters.model_store.local import LocalModelStore
from app.demo_data import SyntheticInteractions
from app.settings import Settings
from domain.retrain import RetrainRun, RunStatus, Stage
from proto.lightfm.v2025_9 import recommender_pb2 as pb
from tests.integration.retrain_support import (
    ModelServer,
    environment,
    logged,
    retrain_now,
    running_model_server,
    seed,
    seed_newer,
    settings_for,
    synthetic_history,
)
from tests.servers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def model_server(tmp_path: Path) -> Iterator[ModelServer]:
    with running_model_server(tmp_path / "models") as server:
        yield server


@pytest.fixture
def history() -> SyntheticInteractions:
    return synthetic_history()


def test_a_run_publishes_a_model_that_serves_the_users_in_the_data(
    tmp_path: Path, model_server: ModelServer, history: SyntheticInteractions
) -> None:
    settings = settings_for(tmp_path, model_server.target)
    seed(settings, history)

    run = retrain_now(settings)

    assert run.status is RunStatus.SUCCEEDED, run.error
    assert run.rows_exported == len(history)
    version = run.model_version
    assert version is not None
    assert LocalModelStore(tmp_path / "models").published() == version
    assert model_server.models.current is not None
    assert model_server.models.current.version == version
    assert logged(settings) == {run.run_id: run}
    report = tmp_path / "models" / "reports" / "metrics.png"
    assert report.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

    # data quality: every viewer of the training window gets a page of unseen videos from the
    # new model, mostly from their own taste cluster
    boundary_ms = int((run.started_at - timedelta(days=1)).timestamp() * 1000)
    trained = history.occurred_at_ms < boundary_ms
    in_cluster, chance = [], []
    for code in np.unique(history.user_codes[trained]).tolist():
        user = str(history.user_ids[code])
        seen = set(history.video_ids[history.video_codes[trained & (history.user_codes == code)]])
        answer = model_server.stub.Recommend(pb.RecommendRequest(user_id=user, limit=10))
        videos = [item.video_id for item in answer.items]
        assert answer.model_version == version
        assert len(videos) == 10
        assert seen.isdisjoint(videos)
        cluster = history.user_clusters[code]
        clusters = history.video_clusters[np.searchsorted(history.video_ids, videos)]
        in_cluster.append(float(np.mean(clusters == cluster)))
        chance.append(float(np.mean(history.video_clusters == cluster)))
    assert len(in_cluster) == 200
    assert np.mean(in_cluster) > 2 * np.mean(chance)

    # the next run compares its candidate with this model, on rows newer than the window this
    # model was refit on (issue 14: never on rows the serving model trained on)
    newer = seed_newer(settings, history)
    second = retrain_now(settings)

    assert second.status in (RunStatus.SUCCEEDED, RunStatus.REJECTED)
    assert (second.rows_exported, second.serving_version) == (newer, version)
    assert second.serving_metrics is not None


def test_a_corrupt_partition_fails_the_read_and_the_serving_model_stays(
    tmp_path: Path, model_server: ModelServer, history: SyntheticInteractions
) -> None:
    settings = settings_for(tmp_path, model_server.target)
    seed(settings, history)
    first = retrain_now(settings)
    victim = sorted((tmp_path / "exports").rglob("*.parquet"))[-3]
    victim.write_bytes(b"PAR1 this is not parquet PAR1")

    run = retrain_now(settings)

    assert (run.status, run.failed_stage) == (RunStatus.FAILED, Stage.READ)
    assert run.error is not None and victim.name in run.error
    assert LocalModelStore(tmp_path / "models").published() == first.model_version
    assert model_server.models.current is not None
    assert model_server.models.current.version == first.model_version
    assert logged(settings)[run.run_id] == run


def test_an_empty_window_fails_the_read_and_publishes_nothing(
    tmp_path: Path, model_server: ModelServer
) -> None:
    settings = settings_for(tmp_path, model_server.target)

    run = retrain_now(settings)

    assert (run.status, run.failed_stage) == (RunStatus.FAILED, Stage.READ)
    assert run.error is not None and "empty training window" in run.error
    assert run.model_version is None
    assert LocalModelStore(tmp_path / "models").published() is None
    assert stored_versions(tmp_path) == []
    assert logged(settings)[run.run_id] == run


def test_a_model_service_down_at_publish_publishes_nothing_and_the_next_run_does(
    tmp_path: Path, model_server: ModelServer, history: SyntheticInteractions
) -> None:
    down = settings_for(tmp_path, f"127.0.0.1:{free_port()}")
    seed(down, history)

    failed = retrain_now(down)

    assert (failed.status, failed.failed_stage) == (RunStatus.FAILED, Stage.PUBLISH)
    assert failed.error is not None and "model_service unavailable" in failed.error
    store = LocalModelStore(tmp_path / "models")
    assert store.published() is None
    assert store.info(str(failed.model_version)).metrics == failed.candidate_metrics
    assert stored_versions(tmp_path) == [failed.model_version]  # stored, never published

    recovered = retrain_now(replace(down, lightfm_target=model_server.target))

    assert recovered.status is RunStatus.SUCCEEDED
    assert store.published() == recovered.model_version
    assert set(logged(down)) == {failed.run_id, recovered.run_id}


def test_a_worker_killed_mid_training_leaves_the_serving_model_and_the_next_run_recovers(
    tmp_path: Path, model_server: ModelServer, history: SyntheticInteractions
) -> None:
    settings = settings_for(tmp_path, model_server.target, retrain_lease_ttl_s=3)
    seed(settings, history)
    serving = retrain_now(settings).model_version
    env = {**os.environ, **environment(settings), "TRAIN_EPOCHS": "5000"}

    with (tmp_path / "killed.log").open("wb") as output:
        worker = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "retrain", "--now"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            killed = _wait_for(lambda: _running_in(settings, Stage.TRAIN), timeout_s=60)
            worker.send_signal(signal.SIGKILL)
        finally:
            worker.kill()
            worker.wait(timeout=10)

    assert LocalModelStore(tmp_path / "models").published() == serving
    assert model_server.models.current is not None
    assert model_server.models.current.version == serving
    blocked = retrain_now(settings)  # within the lease's 3 s: the dead run still holds it
    assert blocked.status is RunStatus.SKIPPED

    time.sleep(3)
    seed_newer(settings, history)  # something the serving model has not seen, to compare on
    recovered = retrain_now(settings)

    assert recovered.status is RunStatus.SUCCEEDED
    abandoned = logged(settings)[killed.run_id]
    assert (abandoned.status, abandoned.failed_stage) == (RunStatus.ABANDONED, Stage.TRAIN)
    assert abandoned.error is not None and recovered.run_id in abandoned.error


def _running_in(settings: Settings, stage: Stage) -> RetrainRun | None:
    for run in logged(settings).values():
        if run.status is RunStatus.RUNNING and run.failed_stage is stage:
            return run
    return None


def _wait_for(probe: Callable[[], RetrainRun | None], timeout_s: float) -> RetrainRun:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = probe()
        if found is not None:
            return found
        time.sleep(0.05)
    raise AssertionError(f"nothing after {timeout_s} s")


def stored_versions(tmp_path: Path) -> list[str]:
    """The versions the local model store holds a complete artifact of (its info file)."""
    return sorted(info.parent.name for info in (tmp_path / "models").glob("versions/*/info.json"))
