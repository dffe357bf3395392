"""Implements `ports.retrain.ModelServiceAdmin` over gRPC `lightfm.v2025_9`: `LoadModel` (with
the admin bearer token) and `DescribeModel`.

Calls are not retried here and do not wait for a connection (gRPC's default fail-fast): a
model service that is down fails the call at once, and the retrain's rollback decides what to
do. `LoadModel` gets a long deadline, since the service downloads and indexes the artifact
before it answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from adapters.lightfm.channel import ClientTls, is_loopback, open_channel
from domain.errors import DependencyUnavailable, DomainError, Forbidden, InvalidInput, NotFound
from proto.lightfm.v2025_9 import recommender_pb2 as pb
from proto.lightfm.v2025_9 import recommender_pb2_grpc as pb_grpc

COMPONENT = "model_service"
#: The details the server aborts DescribeModel with while it has no model (adapters.lightfm.server).
_NO_MODEL_YET = "no model is loaded yet"


class GrpcModelServiceAdmin:
    """`target` is `LIGHTFM_TARGET` (`adapters.lightfm.channel.grpc_target`); `admin_token`,
    when set, goes out as `authorization: Bearer <token>` on LoadModel, and only over TLS
    (`tls`) unless every host of `target` is loopback: ValueError otherwise. Timeouts are in
    seconds. The channel connects lazily, on the first call; `close` ends it.

    With several replicas, LoadModel reaches one of them (the channel's pick_first); the
    others take the published version on their next poll of the store."""

    def __init__(
        self,
        target: str,
        *,
        admin_token: str = "",
        load_timeout_s: float = 120.0,
        describe_timeout_s: float = 10.0,
        tls: ClientTls | None = None,
    ) -> None:
        if admin_token and tls is None and not is_loopback(target):
            raise ValueError(
                f"refusing to send the LoadModel token in clear to {target!r}: "
                "set LIGHTFM_TLS_CA_FILE, or reach the model service over loopback"
            )
        self._target = target
        self._admin_token = admin_token
        self._load_timeout_s = load_timeout_s
        self._describe_timeout_s = describe_timeout_s
        # A service back from a restart must not wait out gRPC's default reconnect backoff.
        self._channel = open_channel(target, {"grpc.max_reconnect_backoff_ms": 1000}, tls)
        self._stub = pb_grpc.RecommenderStub(self._channel)

    def __repr__(self) -> str:
        return f"GrpcModelServiceAdmin({self._target!r})"

    def load(self, version: str) -> str:
        metadata = [("authorization", f"Bearer {self._admin_token}")] if self._admin_token else None
        described = _call(
            f"LoadModel({version})",
            lambda: self._stub.LoadModel(
                pb.LoadModelRequest(version=version),
                timeout=self._load_timeout_s,
                metadata=metadata,
            ),
        )
        served: str = described.version
        return served

    def serving_version(self) -> str | None:
        try:
            described = self._stub.DescribeModel(
                pb.DescribeModelRequest(), timeout=self._describe_timeout_s
            )
        except grpc.RpcError as err:
            if _code(err) is grpc.StatusCode.UNAVAILABLE and _NO_MODEL_YET in _details(err):
                return None
            raise _translate("DescribeModel", err) from err
        served: str = described.version
        return served

    def close(self) -> None:
        self._channel.close()


def _call(what: str, call: Callable[[], Any]) -> Any:
    try:
        return call()
    except grpc.RpcError as err:
        raise _translate(what, err) from err


def _translate(what: str, err: grpc.RpcError) -> DomainError:
    code, details = _code(err), _details(err)
    message = f"{what}: {code.name if code else 'UNKNOWN'} {details}".strip()
    if code is grpc.StatusCode.NOT_FOUND:
        return NotFound(message)
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return Forbidden(message)
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidInput(message)
    # UNAVAILABLE (down, or its store is), FAILED_PRECONDITION (a corrupt artifact) and the
    # rest. After DEADLINE_EXCEEDED a LoadModel may still complete: the retrain's rollback
    # loads the previous model again, and the service's poll of the published pointer agrees.
    return DependencyUnavailable(COMPONENT, message)


def _code(err: grpc.RpcError) -> grpc.StatusCode | None:
    code = getattr(err, "code", None)
    return code() if callable(code) else None


def _details(err: grpc.RpcError) -> str:
    details = getattr(err, "details", None)
    return str(details() or "") if callable(details) else ""
