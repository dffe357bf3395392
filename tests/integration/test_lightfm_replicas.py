"""More than one model-service replica: the web service's client spreads calls over every
address of `LIGHTFM_TARGET`, and losing a replica under load costs no call."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.lightfm.client import GrpcRecommender, ModelServiceHealth
from adapters.lightfm.model_service import ModelService, ServingModel
from adapters.lightfm.server import build_server
from adapters.model_store.local import LocalModelStore
from adapters.system_clock import SystemClock
from domain.feed import RankRequest, RecommendationFailed
from tests.integration.lightfm_support import store_with, train_two_models
from tests.servers import free_port

pytestmark = pytest.mark.integration

CALLERS = 4


class CountingModelService(ModelService):
    """A model service that counts the requests reading its model (one per Recommend)."""

    def __init__(self, store: LocalModelStore) -> None:
        super().__init__(store, SystemClock())
        self.reads = 0
        self._count_lock = threading.Lock()

    @property
    def current(self) -> ServingModel | None:
        with self._count_lock:
            self.reads += 1
        return super().current


class Replica:
    def __init__(self, store: LocalModelStore) -> None:
        self.models = CountingModelService(store)
        self.models.load()  # each replica loads the published version from the shared store
        self.server, self.port = build_server(self.models, "127.0.0.1:0", max_workers=4)
        self.server.start()

    def kill(self) -> None:
        self.server.stop(grace=None).wait()

    def shut_down(self, grace_s: float = 0.3) -> None:
        """As the `lightfm` process stops (LIGHTFM_SHUTDOWN_GRACE_S): calls in flight end, new
        ones are refused. (An in-process `stop(None)` instead cancels the calls in flight with
        CANCELLED, a status no dead process sends: its connections reset, UNAVAILABLE, which
        the client retries; so that stop made this test fail now and then for a reason
        production does not have.)"""
        self.server.stop(grace=grace_s).wait()


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[tuple[Replica, Replica]]:
    store = store_with(tmp_path, train_two_models())
    pair = (Replica(store), Replica(store))
    yield pair
    for replica in pair:
        replica.kill()


def _user(replica: Replica) -> str:
    serving = replica.models.current
    assert serving is not None
    return next(iter(serving.model._user_index))


def test_calls_are_spread_over_both_replicas_and_survive_losing_one(
    replicas: tuple[Replica, Replica],
) -> None:
    first, second = replicas
    user = _user(first)
    client = GrpcRecommender(f"127.0.0.1:{first.port}, 127.0.0.1:{second.port}")
    answered: list[float] = []
    failures: list[RecommendationFailed] = []
    stop = threading.Event()

    def caller() -> None:
        while not stop.is_set():
            try:
                client.rank(RankRequest(user, 10, (), timeout_s=0.5))
                answered.append(time.monotonic())
            except RecommendationFailed as failure:
                failures.append(failure)

    threads = [threading.Thread(target=caller) for _ in range(CALLERS)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        before = (first.models.reads, second.models.reads)
        first.shut_down()  # refused from now on: gRPC retries those calls on the other
        # The killed server's handler threads may still finish a read they had begun.
        time.sleep(0.2)
        killed_at = time.monotonic()
        after_kill = (first.models.reads, second.models.reads)
        time.sleep(1.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        client.close()
    assert failures == []
    # Round-robin: each replica had a fair share while both were up.
    assert min(before) >= 0.3 * max(before)
    # Then every answer came from the survivor.
    assert first.models.reads == after_kill[0]
    answered_after = sum(1 for moment in answered if moment > killed_at)
    assert answered_after > 50
    # (less the calls each caller had in flight when the count was taken)
    assert second.models.reads - after_kill[1] >= answered_after - CALLERS


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
    user = _user(first)
    client = GrpcRecommender(f"127.0.0.1:{free_port()},127.0.0.1:{first.port}")
    try:
        for _ in range(20):
            assert client.rank(RankRequest(user, 5, (), timeout_s=1.0)).items
    finally:
        client.close()
