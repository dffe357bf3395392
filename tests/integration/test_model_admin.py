"""The model service admin client (LoadModel, DescribeModel) against the real gRPC model
service (tests/integration/lightfm_support.py starts it on 127.0.0.1 and a free port)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from adapters.lightfm.admin_client import GrpcModelServiceAdmin
from adapters.lightfm.model_service import ModelService
from adapters.lightfm.server import build_server
from adapters.model_store.local import LocalModelStore
from adapters.system_clock import SystemClock
from domain.errors import DependencyUnavailable, Forbidden, NotFound
from tests.integration.lightfm_support import TwoModels, store_with, train_two_models
from tests.servers import free_port

pytestmark = pytest.mark.integration

TOKEN = "admin-secret-token"


@pytest.fixture(scope="module")
def models() -> TwoModels:
    return train_two_models()


@dataclass
class RunningService:
    models: ModelService
    target: str


StartServer = Callable[..., RunningService]


@pytest.fixture
def start_server() -> Iterator[StartServer]:
    """The real model service on 127.0.0.1 and a port it picked; stopped after the test."""
    servers: list[grpc.Server] = []

    def start(
        store: LocalModelStore, *, load: bool = True, admin_token: str = ""
    ) -> RunningService:
        models = ModelService(store, SystemClock())
        server, port = build_server(models, "127.0.0.1:0", max_workers=4, admin_token=admin_token)
        server.start()
        servers.append(server)
        if load:
            models.load()
        return RunningService(models, f"127.0.0.1:{port}")

    yield start
    for server in servers:
        server.stop(grace=None).wait()


def admin_for(target: str, token: str = TOKEN) -> GrpcModelServiceAdmin:
    return GrpcModelServiceAdmin(target, admin_token=token, load_timeout_s=10)


def test_load_swaps_the_version_in_and_describe_confirms_it(
    tmp_path: Path, models: TwoModels, start_server: StartServer
) -> None:
    server = start_server(store_with(tmp_path, models), admin_token=TOKEN)
    admin = admin_for(server.target)
    second = models.second.info.version
    try:
        assert admin.serving_version() == models.first.info.version

        assert admin.load(second) == second

        assert admin.serving_version() == second
        assert server.models.current is not None
        assert server.models.current.version == second
    finally:
        admin.close()


def test_a_service_without_a_model_serves_no_version(
    tmp_path: Path, models: TwoModels, start_server: StartServer
) -> None:
    server = start_server(store_with(tmp_path, models), load=False)
    admin = admin_for(server.target, token="")
    try:
        assert admin.serving_version() is None
    finally:
        admin.close()


@pytest.mark.parametrize("token", ["", "wrong-token"])
def test_load_without_the_admin_token_is_forbidden_and_changes_nothing(
    tmp_path: Path, models: TwoModels, start_server: StartServer, token: str
) -> None:
    server = start_server(store_with(tmp_path, models), admin_token=TOKEN)
    admin = admin_for(server.target, token=token)
    try:
        with pytest.raises(Forbidden, match="UNAUTHENTICATED"):
            admin.load(models.second.info.version)

        assert admin.serving_version() == models.first.info.version
    finally:
        admin.close()


def test_an_unknown_version_is_not_found(
    tmp_path: Path, models: TwoModels, start_server: StartServer
) -> None:
    server = start_server(store_with(tmp_path, models), admin_token=TOKEN)
    admin = admin_for(server.target)
    try:
        with pytest.raises(NotFound, match="NOT_FOUND"):
            admin.load("20990101T000000Z-ffffff")
        assert admin.serving_version() == models.first.info.version
    finally:
        admin.close()


def test_a_model_service_that_is_down_fails_at_once() -> None:
    admin = admin_for(f"127.0.0.1:{free_port()}")
    try:
        for call in (lambda: admin.load("20261124T000000Z-abcdef"), admin.serving_version):
            started = time.monotonic()
            with pytest.raises(DependencyUnavailable) as raised:
                call()
            assert time.monotonic() - started < 5
            assert raised.value.component == "model_service"
            assert "UNAVAILABLE" in raised.value.message
    finally:
        admin.close()
