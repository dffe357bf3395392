"""Changing the LightFM model service's model: LoadModel (under load, unknown versions, an
unreachable store, the admin token) and polling the store's published pointer."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import pytest

from adapters.lightfm.scorer import LoadedModel
from adapters.model_store.local import LocalModelStore
from proto.lightfm.v2025_9 import recommender_pb2 as pb
from tests.integration.lightfm_support import (
    ServerStarter,
    TwoModels,
    status_of,
    store_with,
    train_two_models,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def models() -> TwoModels:
    return train_two_models()


@pytest.fixture
def store(tmp_path: Path, models: TwoModels) -> LocalModelStore:
    return store_with(tmp_path / "models", models)


@pytest.fixture
def start_server() -> Iterator[ServerStarter]:
    starter = ServerStarter()
    yield starter
    starter.close()


def test_swapping_versions_under_load_fails_no_call_and_mixes_no_versions(
    store: LocalModelStore, models: TwoModels, start_server: ServerStarter
) -> None:
    running = start_server(store)
    users = models.first.user_ids[:30]
    expected = {
        artifact.info.version: {
            user: LoadedModel.from_artifact(artifact).rank(user, 20).items for user in users
        }
        for artifact in (models.first, models.second)
    }
    replies: list[tuple[str, Any]] = []
    failures: list[grpc.StatusCode] = []
    stop = threading.Event()

    def hammer(offset: int) -> None:
        calls = 0
        while not stop.is_set():
            user = users[(offset + calls) % len(users)]
            calls += 1
            try:
                request = pb.RecommendRequest(user_id=user, limit=20)
                reply = running.stub.Recommend(request, timeout=5)
            except grpc.RpcError as err:
                failures.append(err.code())
            else:
                replies.append((user, reply))

    callers = [threading.Thread(target=hammer, args=(i,)) for i in range(8)]
    for caller in callers:
        caller.start()
    try:
        # Many swaps, so that a request straddling one is likely, not just possible.
        for swap in range(1, 21):
            time.sleep(0.03)
            artifact = models.second if swap % 2 else models.first
            running.stub.LoadModel(pb.LoadModelRequest(version=artifact.info.version), timeout=10)
        time.sleep(0.03)
    finally:
        stop.set()
        for caller in callers:
            caller.join()

    assert failures == []
    assert {reply.model_version for _, reply in replies} == set(expected)
    for user, reply in replies:
        alone = expected[reply.model_version][user]
        assert [item.video_id for item in reply.items] == [video for video, _ in alone]
        assert [item.score for item in reply.items] == pytest.approx(
            [score for _, score in alone], rel=1e-5, abs=1e-5
        )


def test_load_model_of_an_unknown_version_is_not_found_and_keeps_serving(
    store: LocalModelStore, models: TwoModels, start_server: ServerStarter
) -> None:
    running = start_server(store)
    unknown = pb.LoadModelRequest(version="20990101T000000Z-abcdef")
    malformed = pb.LoadModelRequest(version="../etc")

    assert status_of(lambda: running.stub.LoadModel(unknown, timeout=5)) == (
        grpc.StatusCode.NOT_FOUND
    )
    assert status_of(lambda: running.stub.LoadModel(malformed, timeout=5)) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    described = running.stub.DescribeModel(pb.DescribeModelRequest(), timeout=5)
    assert described.version == models.first.info.version


def test_load_model_with_the_store_unreachable_is_unavailable(
    tmp_path: Path, start_server: ServerStarter
) -> None:
    not_a_folder = tmp_path / "models"
    not_a_folder.write_text("a file where the store's folder should be")
    running = start_server(LocalModelStore(not_a_folder), load=False)
    request = pb.LoadModelRequest(version="20261124T010000Z-abcdef")

    assert status_of(lambda: running.stub.LoadModel(request, timeout=5)) == (
        grpc.StatusCode.UNAVAILABLE
    )


def test_load_model_requires_the_admin_token_when_one_is_configured(
    store: LocalModelStore, models: TwoModels, start_server: ServerStarter
) -> None:
    running = start_server(store, admin_token="s3cret")
    request = pb.LoadModelRequest(version=models.second.info.version)

    for refused in ((), (("authorization", "Bearer wrong"),), (("authorization", "s3cret"),)):
        call = partial(running.stub.LoadModel, request, metadata=refused, timeout=5)
        assert status_of(call) == grpc.StatusCode.UNAUTHENTICATED
    described = running.stub.LoadModel(
        request, metadata=(("authorization", "Bearer s3cret"),), timeout=10
    )
    assert described.version == models.second.info.version


def test_a_new_publication_is_picked_up_by_polling(
    store: LocalModelStore, models: TwoModels, start_server: ServerStarter
) -> None:
    running = start_server(store)
    running.models.start_polling(0.05)

    store.publish(models.second.info.version)

    deadline = time.monotonic() + 10
    version = ""
    while time.monotonic() < deadline and version != models.second.info.version:
        time.sleep(0.05)
        version = running.stub.DescribeModel(pb.DescribeModelRequest(), timeout=5).version
    assert version == models.second.info.version


def test_load_model_of_a_corrupt_artifact_fails_and_keeps_serving(
    store: LocalModelStore, models: TwoModels, start_server: ServerStarter
) -> None:
    running = start_server(store)
    info = replace(models.second.info, version="20261124T050000Z-0badc0")
    store.put(info.version, b"not an npz archive", info)
    request = pb.LoadModelRequest(version=info.version)

    assert status_of(lambda: running.stub.LoadModel(request, timeout=5)) == (
        grpc.StatusCode.FAILED_PRECONDITION
    )
    described = running.stub.DescribeModel(pb.DescribeModelRequest(), timeout=5)
    assert described.version == models.first.info.version
