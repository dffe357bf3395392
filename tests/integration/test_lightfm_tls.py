"""TLS, optionally mutual, on the channel between the web service (and worker) and the model
service, with certificates the test makes; and LoadModel's token never sent in clear over a
network."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.lightfm.admin_client import GrpcModelServiceAdmin
from adapters.lightfm.channel import ClientTls, ServerTls
from adapters.lightfm.client import GrpcRecommender, ModelServiceHealth
from adapters.lightfm.model_service import ModelService
from adapters.lightfm.server import build_server
from adapters.system_clock import SystemClock
from app.composition.common import model_client_tls
from app.composition.model_service import build_model_service
from app.settings import Settings
from domain.errors import Forbidden
from domain.feed import FallbackReason, RankRequest, RecommendationFailed
from tests.integration.lightfm_support import TwoModels, store_with, train_two_models
from tests.integration.tls_support import Pem, TestCa

pytestmark = pytest.mark.integration

TOKEN = "s3cret-admin-token"
#: Starts a loaded model service (TLS or not, an admin token or not); returns its port.
Serve = Callable[..., int]


@dataclass
class Pki:
    ca: TestCa
    server: Pem
    client: Pem
    stranger_ca: TestCa


@pytest.fixture(scope="module")
def models() -> TwoModels:
    return train_two_models()


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca = TestCa(tmp_path)
    return Pki(
        ca,
        ca.issue("model-service", server=True),
        ca.issue("web", server=False),
        TestCa(tmp_path, "another CA"),
    )


@pytest.fixture
def serve(tmp_path: Path, models: TwoModels) -> Iterator[Serve]:
    servers: list[Any] = []

    def start(tls: ServerTls | None, admin_token: str = "") -> int:
        service = ModelService(store_with(tmp_path / "store", models), SystemClock())
        service.load()
        server, port = build_server(service, "127.0.0.1:0", admin_token=admin_token, tls=tls)
        server.start()
        servers.append(server)
        return port

    yield start
    for server in servers:
        server.stop(grace=None).wait()


def _rank(client: GrpcRecommender, models: TwoModels) -> int:
    user = models.first.user_ids[0]
    try:
        return len(client.rank(RankRequest(user, 5, (), timeout_s=2.0)).items)
    finally:
        client.close()


def test_a_client_trusting_the_ca_ranks_over_tls(serve: Serve, pki: Pki, models: TwoModels) -> None:
    port = serve(ServerTls(pki.server.cert_file, pki.server.key_file))
    client = GrpcRecommender(f"127.0.0.1:{port}", tls=ClientTls(pki.ca.ca_file))
    assert _rank(client, models) == 5
    health = ModelServiceHealth(f"localhost:{port}", timeout_s=2.0, tls=ClientTls(pki.ca.ca_file))
    assert health.check().ok
    health.close()


def test_plaintext_or_an_untrusted_certificate_gets_no_answer(
    serve: Serve, pki: Pki, models: TwoModels
) -> None:
    port = serve(ServerTls(pki.server.cert_file, pki.server.key_file))
    for tls in (None, ClientTls(pki.stranger_ca.ca_file)):
        with pytest.raises(RecommendationFailed) as caught:
            _rank(GrpcRecommender(f"127.0.0.1:{port}", tls=tls), models)
        assert caught.value.reason is FallbackReason.UNAVAILABLE


def test_a_name_the_certificate_does_not_hold_is_refused_unless_overridden(
    serve: Serve, pki: Pki, models: TwoModels
) -> None:
    port = serve(ServerTls(pki.server.cert_file, pki.server.key_file))
    wrong = ClientTls(pki.ca.ca_file, server_name="elsewhere.example")
    with pytest.raises(RecommendationFailed):
        _rank(GrpcRecommender(f"127.0.0.1:{port}", tls=wrong), models)
    right = ClientTls(pki.ca.ca_file, server_name="model-service")
    assert _rank(GrpcRecommender(f"127.0.0.1:{port}", tls=right), models) == 5


def test_mutual_tls_serves_only_a_client_with_a_certificate_of_its_ca(
    serve: Serve, pki: Pki, models: TwoModels
) -> None:
    port = serve(ServerTls(pki.server.cert_file, pki.server.key_file, pki.ca.ca_file))
    target = f"127.0.0.1:{port}"
    with pytest.raises(RecommendationFailed):
        _rank(GrpcRecommender(target, tls=ClientTls(pki.ca.ca_file)), models)
    mutual = ClientTls(pki.ca.ca_file, pki.client.cert_file, pki.client.key_file)
    assert _rank(GrpcRecommender(target, tls=mutual), models) == 5


def test_the_admin_token_goes_over_tls_and_is_checked(
    serve: Serve, pki: Pki, models: TwoModels
) -> None:
    port = serve(ServerTls(pki.server.cert_file, pki.server.key_file), admin_token=TOKEN)
    tls = ClientTls(pki.ca.ca_file)
    admin = GrpcModelServiceAdmin(f"127.0.0.1:{port}", admin_token=TOKEN, tls=tls)
    assert admin.load(models.second.info.version) == models.second.info.version
    admin.close()
    intruder = GrpcModelServiceAdmin(f"127.0.0.1:{port}", admin_token="guess", tls=tls)
    with pytest.raises(Forbidden):
        intruder.load(models.second.info.version)
    intruder.close()


@pytest.mark.parametrize(
    "target", ["10.1.2.3:50051", "model.internal:50051", "127.0.0.1:1,10.1.2.4:2"]
)
def test_the_admin_token_is_never_sent_in_clear_to_another_machine(target: str) -> None:
    with pytest.raises(ValueError, match="in clear"):
        GrpcModelServiceAdmin(target, admin_token=TOKEN)


@pytest.mark.parametrize("target", ["127.0.0.1:50051", "localhost:50051", "[::1]:50051"])
def test_loopback_and_tokenless_admin_clients_need_no_tls(target: str) -> None:
    GrpcModelServiceAdmin(target, admin_token=TOKEN).close()
    GrpcModelServiceAdmin("10.1.2.3:50051").close()


def test_the_settings_wire_tls_on_both_ends(tmp_path: Path, pki: Pki, models: TwoModels) -> None:
    store_with(tmp_path / "models", models)
    settings = Settings(
        data_dir=tmp_path,
        lightfm_bind="127.0.0.1:0",
        lightfm_tls_cert_file=pki.server.cert_file,
        lightfm_tls_key_file=pki.server.key_file,
        lightfm_tls_client_ca_file=pki.ca.ca_file,
        lightfm_tls_ca_file=pki.ca.ca_file,
        lightfm_tls_client_cert_file=pki.client.cert_file,
        lightfm_tls_client_key_file=pki.client.key_file,
    )
    composition = build_model_service(settings)
    composition.models.load()
    server, port = composition.listen()
    server.start()
    try:
        client = GrpcRecommender(f"127.0.0.1:{port}", tls=model_client_tls(settings))
        assert _rank(client, models) == 5
    finally:
        server.stop(grace=None).wait()
