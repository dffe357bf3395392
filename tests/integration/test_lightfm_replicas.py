"""More than one model-service replica: the web service's client spreads calls over every
address of `LIGHTFM_TARGET`, and losing a replica under load costs no call."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc._cython import cygrpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from adapters.lightfm.client import GrpcRecommender, ModelServiceHealth
from adapters.lightfm.model_service import ModelService
from adapters.lightfm.server import build_server
from adapters.model_store.local import LocalModelStore
from adapters.system_clock import SystemClock
from domain.feed import RankRequest, RecommendationFailed
from tests.integration.lightfm_support import SERVING, store_with, train_two_models
from tests.servers import free_port

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
CALLERS = 16  # enough calls in flight on the killed replica to need more than a few retries
USER = "u000001"  # a viewer of train_two_models' history


class ReplicaProcess:
    """A real `lightfm` process (`python -m app.lightfm_main`) on a port the test chose,
    loading the published model from the shared store; its log goes to a file."""

    def __init__(self, store_root: Path, log_file: Path) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        env = dict(
            os.environ,
            MODEL_STORE_URI=str(store_root),
            LIGHTFM_BIND=self.address,
            LIGHTFM_POLL_INTERVAL_S="0",
            LIGHTFM_MAX_WORKERS=str(CALLERS),
            LOG_LEVEL="INFO",
        )
        self._log = log_file.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.lightfm_main"],
            cwd=REPO_ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_serving(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        with grpc.insecure_channel(self.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while True:
                assert self.process.poll() is None, f"replica exited with {self.process.poll()}"
                try:
                    reply = health.Check(health_pb2.HealthCheckRequest(), timeout=2)
                    if reply.status == SERVING:
                        return
                except grpc.RpcError:
                    pass
                assert time.monotonic() < deadline, f"replica {self.address} never served"
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no grace, no goodbye; the kernel resets its connections."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self._log.close()


@pytest.fixture
def replica_processes(tmp_path: Path) -> Iterator[tuple[ReplicaProcess, ReplicaProcess]]:
    store_with(tmp_path / "models", train_two_models())
    pair = (
        ReplicaProcess(tmp_path / "models", tmp_path / "replica-1.log"),
        ReplicaProcess(tmp_path / "models", tmp_path / "replica-2.log"),
    )
    try:
        for replica in pair:
            replica.wait_serving()
        yield pair
    finally:
        for replica in pair:
            replica.kill()


def answers_by_address(target: str) -> Counter[str]:
    """Calls answered per replica address, as this process's gRPC channel to `target` counts
    them: gRPC's channelz (the figures the grpcio-channelz service would serve), per
    subchannel, i.e. per address round-robin sent an attempt to."""
    counts: Counter[str] = Counter()
    for channel in json.loads(cygrpc.channelz_get_top_channels(0)).get("channel", []):
        if channel["data"].get("target") != target:
            continue
        for ref in channel.get("subchannelRef", []):
            sub = json.loads(cygrpc.channelz_get_subchannel(int(ref["subchannelId"])))
            data = sub["subchannel"]["data"]
            address = data["target"].removeprefix("ipv4:")
            counts[address] += int(data.get("callsSucceeded", 0))
    return counts


def test_calls_are_spread_over_both_replicas_and_survive_losing_one(
    replica_processes: tuple[ReplicaProcess, ReplicaProcess],
) -> None:
    first, second = replica_processes
    client = GrpcRecommender(f"{first.address},{second.address}")
    target = f"ipv4:{first.address},{second.address}"
    answered: list[float] = []
    failures: list[RecommendationFailed] = []
    stop = threading.Event()

    def caller() -> None:
        while not stop.is_set():
            try:
                # A generous deadline: this test is about losing a replica, not latency, and
                # the machine running it may be busy.
                started = time.monotonic()
                client.rank(RankRequest(USER, 10, (), timeout_s=2.0))
                answered.append(started)
            except RecommendationFailed as failure:
                failures.append(failure)

    threads = [threading.Thread(target=caller) for _ in range(CALLERS)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(1.5)
        before = answers_by_address(target)
        first.kill()  # under load: calls are in flight on its connection
        # An answer the kernel had delivered before the kill may still be read by the client.
        time.sleep(0.2)
        after_kill = answers_by_address(target)
        killed_at = time.monotonic()
        time.sleep(1.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        end = answers_by_address(target)
        client.close()
    assert failures == []
    # Round-robin: each replica had a fair share while both were up.
    assert before[first.address] >= 0.3 * before[second.address] > 0
    assert before[second.address] >= 0.3 * before[first.address]
    # Then every answer came from the survivor.
    assert end[first.address] == after_kill[first.address]
    answered_after = sum(1 for started in answered if started > killed_at)
    assert answered_after > 50
    assert end[second.address] - after_kill[second.address] >= answered_after


class Replica:
    """An in-process replica, for the tests that need no process to die under load."""

    def __init__(self, store: LocalModelStore) -> None:
        self.models = ModelService(store, SystemClock())
        self.models.load()  # each replica loads the published version from the shared store
        self.server, self.port = build_server(self.models, "127.0.0.1:0", max_workers=4)
        self.server.start()

    def kill(self) -> None:
        self.server.stop(grace=None).wait()


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[tuple[Replica, Replica]]:
    store = store_with(tmp_path, train_two_models())
    pair = (Replica(store), Replica(store))
    yield pair
    for replica in pair:
        replica.kill()


def test_health_is_ready_while_any_replica_serves(replicas: tuple[Replica, Replica]) -> None:
    first, second = replicas
    health = ModelServiceHealth(f"127.0.0.1:{first.port},127.0.0.1:{second.port}", timeout_s=2.0)
    try:
        assert health.check().ok
        first.kill()
        assert health.check().ok
    finally:
        health.close()


def test_a_list_holding_a_name_is_refused_with_the_setting_named() -> None:
    with pytest.raises(ValueError, match="LIGHTFM_TARGET"):
        GrpcRecommender("model-a:50051,model-b:50051")


def test_a_replica_refusing_connections_is_skipped_from_the_start(
    replicas: tuple[Replica, Replica],
) -> None:
    first, _ = replicas
    client = GrpcRecommender(f"127.0.0.1:{free_port()},127.0.0.1:{first.port}")
    try:
        for _ in range(20):
            assert client.rank(RankRequest(USER, 5, (), timeout_s=1.0)).items
    finally:
        client.close()
