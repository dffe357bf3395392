"""Pact of `lightfm.v2025_9` between the web service's gRPC clients (consumer `feed-web`) and
the LightFM model service (provider `lightfm-model`).

pact-python's protobuf plugin cannot be loaded offline, so each RPC is a V4 synchronous
message whose bodies are protobuf's JSON mapping (`json_format.MessageToDict`: camelCase,
64-bit integers as strings, default values left out). Metadata `grpc-method` names the RPC.
The status is part of the response: metadata `grpc-status` always ("OK" or the code's name),
and a failed call's response body is `{"grpc-status": <code name>}`, plus `grpc-message` when
the consumer depends on the details text.

Consumer side: a replay gRPC server answers with the pact's example response (or aborts with
its status) and records the request; the real adapters (`GrpcRecommender.rank`,
`GrpcModelServiceAdmin.serving_version`) call it, the request they built must equal the pact's,
and what they make of the response is checked. Provider side: the pact's request is parsed
into the real message, sent to the REAL gRPC server in the state the pact names, and the
reply (or status) is rendered back to JSON for the verifier to match.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from pact import Pact, Verifier, match
from pact.types import Message

from adapters.lightfm.admin_client import GrpcModelServiceAdmin
from adapters.lightfm.client import GrpcRecommender
from domain.feed import FallbackReason, RankRequest, RecommendationFailed
from proto.lightfm.v2025_9 import recommender_pb2 as pb
from tests.contract.pact_support import (
    PACTS_DIR,
    ProviderStates,
    interactions_of,
    pacts_for,
    run_verifier,
)
from tests.integration.lightfm_support import (
    RunningServer,
    ServerStarter,
    store_with,
    train_two_models,
)

pytestmark = [pytest.mark.contract]

CONSUMER = "feed-web"
PROVIDER = "lightfm-model"
PACT_FILE = PACTS_DIR / f"{CONSUMER}-{PROVIDER}.json"
SERVICE = "lightfm.v2025_9.Recommender"
KNOWN_USER = "u000096"  # in the models of tests.integration.lightfm_support
UNKNOWN_USER = "nobody-in-the-model"
STATE_KNOWN = "the loaded model knows the user"
STATE_UNKNOWN = "the loaded model does not know the user"
STATE_NO_MODEL = "no model is loaded"

RPCS: dict[str, tuple[Any, Any]] = {
    "Recommend": (pb.RecommendRequest, pb.RecommendResponse),
    "DescribeModel": (pb.DescribeModelRequest, pb.ModelDescription),
}
TIMESTAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$"
UINT64 = r"^\d+$"


def _rpc(
    pact: Pact,
    description: str,
    state: str,
    parameters: dict[str, Any],
    method: str,
    request: dict[str, Any],
    response: dict[str, Any],
    status: str = "OK",
) -> None:
    (
        pact.upon_receiving(description, "Sync")
        .given(state, parameters)
        .with_body(request, content_type="application/json")
        .with_metadata({"grpc-method": f"/{SERVICE}/{method}"})
        .will_respond_with()
        .with_body(response, content_type="application/json")
        .with_metadata({"grpc-status": status})
    )


def build_pact() -> Pact:
    pact = Pact(CONSUMER, PROVIDER).with_specification("V4")
    _rpc(
        pact,
        "Recommend for a user the model knows",
        STATE_KNOWN,
        {"userId": KNOWN_USER},
        "Recommend",
        {"userId": KNOWN_USER, "limit": 3, "excludeVideoIds": ["v000016"]},
        {
            "items": match.each_like(
                {"videoId": match.str("v000123"), "score": match.number(0.75)}, min=1
            ),
            "modelVersion": match.str("2026-11-24T01-00-00Z"),
        },
    )
    _rpc(
        pact,
        "Recommend for a user the model does not know",
        STATE_UNKNOWN,
        {"userId": UNKNOWN_USER},
        "Recommend",
        {"userId": UNKNOWN_USER, "limit": 3},
        {"grpc-status": "NOT_FOUND"},
        status="NOT_FOUND",
    )
    _rpc(
        pact,
        "DescribeModel while a model is loaded",
        STATE_KNOWN,
        {"userId": KNOWN_USER},
        "DescribeModel",
        {},
        {
            "version": match.str("2026-11-24T01-00-00Z"),
            "trainedAt": match.regex("2026-11-24T01:00:00Z", regex=TIMESTAMP),
            "nUsers": match.regex("150", regex=UINT64),
            "nItems": match.regex("400", regex=UINT64),
            "nInteractions": match.regex("6000", regex=UINT64),
            "windowStart": match.regex("2026-11-17T00:00:00Z", regex=TIMESTAMP),
            "windowEnd": match.regex("2026-11-24T00:00:00Z", regex=TIMESTAMP),
            "loadedAt": match.regex("2026-11-24T02:00:00Z", regex=TIMESTAMP),
        },
    )
    _rpc(
        pact,
        "DescribeModel while no model is loaded",
        STATE_NO_MODEL,
        {},
        "DescribeModel",
        {},
        # GrpcModelServiceAdmin tells "no model yet" from "down" by this text.
        {"grpc-status": "UNAVAILABLE", "grpc-message": "no model is loaded yet"},
        status="UNAVAILABLE",
    )
    return pact


# --- consumer side -------------------------------------------------------------------------


@dataclass
class Replay:
    """A gRPC server that answers every call with `response` (a pact example) and records the
    requests it received, as JSON."""

    response: dict[str, Any] = field(default_factory=dict)
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def handler(self, method: str) -> Callable[[Any, grpc.ServicerContext], Any]:
        _, response_type = RPCS[method]

        def handle(request: Any, context: grpc.ServicerContext) -> Any:
            self.received.append((method, json_format.MessageToDict(request)))
            if "grpc-status" in self.response:
                code = grpc.StatusCode[self.response["grpc-status"]]
                context.abort(code, self.response.get("grpc-message", "from the pact"))
            return json_format.ParseDict(self.response, response_type())

        return handle


@pytest.fixture
def replay() -> Iterator[tuple[Replay, str]]:
    state = Replay()
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    handlers = {
        method: grpc.unary_unary_rpc_method_handler(
            state.handler(method),
            request_deserializer=request_type.FromString,
            response_serializer=response_type.SerializeToString,
        )
        for method, (request_type, response_type) in RPCS.items()
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield state, f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None).wait()


def _exercise(interaction: dict[str, Any], target: str) -> None:
    """Drive the adapter that makes this call, against the replay server."""
    request = interaction["request"]["contents"]["content"]
    response = interaction["response"][0]["contents"]["content"]
    method = interaction["request"]["metadata"]["grpc-method"].rsplit("/", 1)[1]
    if method == "Recommend":
        recommender = GrpcRecommender(target)
        try:
            if "grpc-status" in response:
                with pytest.raises(RecommendationFailed) as failed:
                    recommender.rank(
                        RankRequest(request["userId"], request["limit"], timeout_s=2.0)
                    )
                assert failed.value.reason is FallbackReason.COLD_START
                return
            ranking = recommender.rank(
                RankRequest(
                    request["userId"],
                    request["limit"],
                    tuple(request.get("excludeVideoIds", [])),
                    timeout_s=2.0,
                )
            )
        finally:
            recommender.close()
        assert ranking.model_version == response["modelVersion"]
        assert [(i.video_id, i.score) for i in ranking.items] == [
            (i["videoId"], i["score"]) for i in response["items"]
        ]
        return
    admin = GrpcModelServiceAdmin(target)
    try:
        assert admin.serving_version() == response.get("version")
    finally:
        admin.close()


def test_consumer_the_web_clients_make_and_understand_the_pacts_calls(
    replay: tuple[Replay, str], tmp_path: Path
) -> None:
    state, target = replay
    pact = build_pact()
    pact.write_file(tmp_path, overwrite=True)
    written = tmp_path / PACT_FILE.name
    interactions = interactions_of(written)
    assert len(interactions) == 4
    for interaction in interactions:
        state.response = interaction["response"][0]["contents"]["content"]
        state.received.clear()
        _exercise(interaction, target)
        method = interaction["request"]["metadata"]["grpc-method"].rsplit("/", 1)[1]
        assert state.received == [(method, interaction["request"]["contents"]["content"])], (
            interaction["description"]
        )
    PACTS_DIR.mkdir(parents=True, exist_ok=True)
    PACT_FILE.write_text(written.read_text(encoding="utf-8"), encoding="utf-8")


# --- provider side -------------------------------------------------------------------------


@dataclass
class ModelServers:
    loaded: RunningServer
    empty: RunningServer
    known_users: frozenset[str]


@pytest.fixture(scope="module")
def model_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServers]:
    models = train_two_models()
    store = store_with(tmp_path_factory.mktemp("models"), models)
    starter = ServerStarter()
    try:
        yield ModelServers(
            starter(store), starter(store, load=False), frozenset(models.first.user_ids)
        )
    finally:
        starter.close()


class ModelProvider:
    """Replays a pact's sync messages against the real servers, in the named state."""

    def __init__(self, servers: ModelServers) -> None:
        self._servers = servers
        self._current = servers.loaded
        # Set by a state that cannot be arranged (raising there would only make the verifier
        # retry it for a minute): the interaction then fails at once with this text.
        self._problem: str | None = None
        self.states = ProviderStates(self._handlers())

    def _handlers(self) -> dict[str, Callable[[str, dict[str, Any] | None], None]]:
        def known(action: str, parameters: dict[str, Any] | None) -> None:
            if action == "setup":
                user = (parameters or {}).get("userId", KNOWN_USER)
                known = user in self._servers.known_users
                self._problem = None if known else f"{user!r} is not in the test model"
                self._current = self._servers.loaded

        def unknown(action: str, parameters: dict[str, Any] | None) -> None:
            if action == "setup":
                user = (parameters or {}).get("userId", UNKNOWN_USER)
                known = user in self._servers.known_users
                self._problem = f"{user!r} is in the test model" if known else None
                self._current = self._servers.loaded

        def no_model(action: str, parameters: dict[str, Any] | None) -> None:
            if action == "setup":
                self._problem = None
                self._current = self._servers.empty

        return {STATE_KNOWN: known, STATE_UNKNOWN: unknown, STATE_NO_MODEL: no_model}

    def handle(self, name: str, metadata: dict[str, Any] | None) -> Message:
        if problem := self.states.unknown_state_message() or self._problem:
            return {
                "contents": json.dumps({"providerStateProblem": problem}).encode(),
                "metadata": {},
                "content_type": "application/json",
            }
        request = (metadata or {})["request"]
        method = str(request["metadata"]["grpc-method"]).rsplit("/", 1)[1]
        request_type, _ = RPCS[method]
        body = request.get("contents")
        message = json_format.ParseDict(_json(body), request_type())
        call = getattr(self._current.stub, method)
        try:
            reply = call(message, timeout=5.0)
        except grpc.RpcError as err:
            status = err.code().name
            rendered: dict[str, Any] = {"grpc-status": status, "grpc-message": err.details()}
        else:
            status = "OK"
            rendered = json_format.MessageToDict(reply)
        return {
            "contents": json.dumps(rendered).encode(),
            "metadata": {"grpc-status": status},
            "content_type": "application/json",
        }


def _json(body: Any) -> dict[str, Any]:
    """The request body as the verifier hands it over (bytes, text or already parsed)."""
    if isinstance(body, bytes | str):
        parsed: dict[str, Any] = json.loads(body) if body else {}
        return parsed
    if isinstance(body, dict) and "content" in body:
        return _json(body["content"])
    return dict(body or {})


def verifier_for(provider: ModelProvider, pact_file: Path) -> Verifier:
    return (
        Verifier(PROVIDER)
        .message_handler(provider.handle)
        .state_handler(provider.states.handle, teardown=True)
        .add_source(pact_file)
    )


@pytest.mark.parametrize("pact_file", pacts_for(PROVIDER), ids=lambda p: p.name)
def test_provider_the_real_model_service_honours_the_pact(
    model_servers: ModelServers, pact_file: Path
) -> None:
    provider = ModelProvider(model_servers)
    failures = run_verifier(verifier_for(provider, pact_file))
    assert not provider.states.unknown, f"states without a handler: {provider.states.unknown}"
    assert failures is None, failures


def test_there_is_a_pact_for_the_model_service() -> None:
    assert PACT_FILE in pacts_for(PROVIDER)
