"""The `lightfm` process as deployed: `python -m app.lightfm_main` configured by environment."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from proto.lightfm.v2025_9 import recommender_pb2 as pb
from proto.lightfm.v2025_9 import recommender_pb2_grpc as pb_grpc
from tests.integration.lightfm_support import SERVING, store_with, train_two_models

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def lightfm_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, str]]:
    """The process on a free port, serving a published model; yields it, its port and the
    version it should serve. Killed if the test leaves it running."""
    models = train_two_models()
    store_with(tmp_path / "models", models)
    env = dict(
        os.environ,
        FEEDREC_DATA_DIR=str(tmp_path),
        MODEL_STORE_URI=str(tmp_path / "models"),
        LIGHTFM_BIND="127.0.0.1:0",
        LIGHTFM_POLL_INTERVAL_S="0",
        LOG_LEVEL="INFO",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "app.lightfm_main"],
        cwd=REPO_ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stderr is not None
    stderr = process.stderr

    def read() -> None:
        for line in stderr:
            lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield process, _port_from_logs(lines, process), models.first.info.version
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(timeout=10)  # reads to EOF, which the exit guarantees
        stderr.close()


def _port_from_logs(lines: queue.Queue[str], process: subprocess.Popen[str]) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        record = json.loads(line)  # every log line is one JSON object
        if "port" in record:
            return int(record["port"])
    raise AssertionError(f"the process never logged its port (exit code {process.poll()})")


def test_the_process_serves_the_published_model_and_stops_cleanly_on_sigterm(
    lightfm_process: tuple[subprocess.Popen[str], int, str],
) -> None:
    process, port, version = lightfm_process
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        deadline = time.monotonic() + 30
        status = None
        while status != SERVING and time.monotonic() < deadline:
            time.sleep(0.05)
            status = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status
        assert status == SERVING

        reply = pb_grpc.RecommenderStub(channel).Recommend(
            pb.RecommendRequest(user_id="u000001", limit=10), timeout=5
        )
        assert reply.model_version == version
        assert len(reply.items) == 10

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
