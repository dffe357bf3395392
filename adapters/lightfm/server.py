"""The gRPC server of `lightfm.v2025_9`: Recommend, DescribeModel, KnownVideos, LoadModel, plus
standard health checking and reflection.

Each handler maps the model service's errors to the statuses the caller's fallback depends on
(see the .proto): NOT_FOUND for an unknown user or version, INVALID_ARGUMENT for a bad field,
UNAVAILABLE when no model is loaded or the store is down.
"""

from __future__ import annotations

import hmac
import logging
import math
import unicodedata
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, NoReturn

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from adapters.lightfm.channel import ServerTls
from adapters.lightfm.model_service import CorruptArtifactError, ModelService, ServingModel
from adapters.lightfm.scorer import RecentPositive, UnknownUser
from domain.errors import DependencyUnavailable, NotFound
from domain.interactions import MAX_ID_LENGTH, id_problem
from domain.model import PAIR_WEIGHT_CAP, model_version_problem
from proto.lightfm.v2025_9 import recommender_pb2 as pb
from proto.lightfm.v2025_9 import recommender_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["Recommender"].full_name
MAX_LIMIT = 500
MAX_EXCLUDED = 10_000
MAX_RECENT = 500
MAX_KNOWN_QUERY = 10_000
# The range google.protobuf.Timestamp allows (0001-01-01 to 9999-12-31), which `ToDatetime`
# needs; a hand-built message can carry anything.
_TIMESTAMP_SECONDS = range(-62_135_596_800, 253_402_300_800)


def recommend_request_problem(
    user_id: str, limit: int, exclude_video_ids: Sequence[str], request_id: str
) -> str | None:
    """What makes a Recommend request invalid (naming the field), or None when it is valid."""
    if problem := id_problem(user_id):
        return f"user_id {problem}"
    if not 1 <= limit <= MAX_LIMIT:
        return f"limit must be between 1 and {MAX_LIMIT}, got {limit}"
    if len(exclude_video_ids) > MAX_EXCLUDED:
        return f"exclude_video_ids holds {len(exclude_video_ids)} ids, at most {MAX_EXCLUDED}"
    if len(request_id) > MAX_ID_LENGTH or any(
        unicodedata.category(ch) in ("Cc", "Cs") for ch in request_id
    ):
        return f"request_id must be at most {MAX_ID_LENGTH} printable characters"
    return None


def recent_positives_problem(recent: Sequence[Any]) -> str | None:
    """What makes `RecommendRequest.recent_positives` invalid (naming the field), or None."""
    if len(recent) > MAX_RECENT:
        return f"recent_positives holds {len(recent)} entries, at most {MAX_RECENT}"
    for position, positive in enumerate(recent):
        field = f"recent_positives[{position}]"
        if problem := id_problem(positive.video_id):
            return f"{field}.video_id {problem}"
        weight = float(positive.weight)
        if not (math.isfinite(weight) and 0 < weight <= PAIR_WEIGHT_CAP):
            return f"{field}.weight must be finite, > 0 and <= {PAIR_WEIGHT_CAP:g}, got {weight}"
        stamp = positive.occurred_at
        if stamp.seconds not in _TIMESTAMP_SECONDS or not 0 <= stamp.nanos < 1_000_000_000:
            return f"{field}.occurred_at is not a valid timestamp"
    return None


def recent_positives(recent: Sequence[Any]) -> list[RecentPositive]:
    """The validated messages as the scorer takes them."""
    return [(p.video_id, float(p.weight), p.occurred_at.ToDatetime(tzinfo=UTC)) for p in recent]


def describe(serving: ServingModel) -> Any:
    """The `ModelDescription` message of a serving model."""
    info = serving.model.info
    description = pb.ModelDescription(
        version=info.version,
        trained_at=_timestamp(info.trained_at),
        n_users=info.n_users,
        n_items=info.n_items,
        n_interactions=info.n_interactions,
        window_start=_timestamp(info.window_start),
        window_end=_timestamp(info.window_end),
        params=dict(info.params),
        loaded_at=_timestamp(serving.loaded_at),
    )
    if info.metrics is not None:
        description.metrics.precision_at_10 = info.metrics.precision_at_10
        description.metrics.recall_at_10 = info.metrics.recall_at_10
        description.metrics.auc = info.metrics.auc
    return description


class RecommenderServicer:
    """Implements `lightfm.v2025_9.Recommender` over a ModelService.

    Not a subclass of the generated `RecommenderServicer`: the stubs are untyped for mypy
    (`proto.*` is skipped) and strict mode refuses subclassing Any; the generated
    `add_RecommenderServicer_to_server` only looks the handlers up by name.
    """

    def __init__(self, models: ModelService, admin_token: str = "") -> None:
        self._models = models
        self._admin_token = admin_token

    def Recommend(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        user_id: str = request.user_id
        if problem := recommend_request_problem(
            user_id, request.limit, request.exclude_video_ids, request.request_id
        ) or recent_positives_problem(request.recent_positives):
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, problem)
        # One read of the attribute: the whole answer comes from this version.
        serving = self._models.current
        if serving is None:
            _abort(context, grpc.StatusCode.UNAVAILABLE, "no model is loaded yet")
        try:
            ranking = serving.model.rank(
                user_id,
                request.limit,
                request.exclude_video_ids,
                recent_positives(request.recent_positives),
            )
        except UnknownUser:
            _abort(
                context,
                grpc.StatusCode.NOT_FOUND,
                f"user {user_id!r} is not in model {serving.version}",
            )
        return pb.RecommendResponse(
            items=[pb.ScoredVideo(video_id=v, score=score) for v, score in ranking.items],
            model_version=serving.version,
            request_id=request.request_id,
            personalization=(
                pb.PERSONALIZATION_REALTIME if ranking.realtime else pb.PERSONALIZATION_MODEL
            ),
        )

    def DescribeModel(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        serving = self._models.current
        if serving is None:
            _abort(context, grpc.StatusCode.UNAVAILABLE, "no model is loaded yet")
        return describe(serving)

    def KnownVideos(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        video_ids: Sequence[str] = request.video_ids
        if len(video_ids) > MAX_KNOWN_QUERY:
            _abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"video_ids holds {len(video_ids)} ids, at most {MAX_KNOWN_QUERY}",
            )
        serving = self._models.current
        if serving is None:
            _abort(context, grpc.StatusCode.UNAVAILABLE, "no model is loaded yet")
        return pb.KnownVideosResponse(
            known_video_ids=serving.model.known_videos(video_ids), model_version=serving.version
        )

    def LoadModel(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        self._ensure_admin(context)
        version: str = request.version
        if version and (problem := model_version_problem(version)):
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"version {problem}")
        try:
            serving = self._models.load(version or None)
        except NotFound as err:
            _abort(context, grpc.StatusCode.NOT_FOUND, err.message)
        except DependencyUnavailable as err:
            _abort(context, grpc.StatusCode.UNAVAILABLE, f"model store unavailable: {err.message}")
        except CorruptArtifactError as err:
            log.exception("LoadModel failed", extra={"model_version": version})
            _abort(context, grpc.StatusCode.FAILED_PRECONDITION, str(err))
        return describe(serving)

    def _ensure_admin(self, context: grpc.ServicerContext) -> None:
        if not self._admin_token:
            return
        presented = ""
        for key, value in context.invocation_metadata() or ():
            scheme, _, token = str(value).strip().partition(" ")
            if key == "authorization" and scheme.lower() == "bearer":
                presented = token.strip()
        if not hmac.compare_digest(presented.encode(), self._admin_token.encode()):
            _abort(context, grpc.StatusCode.UNAUTHENTICATED, "LoadModel needs the admin token")


def build_server(
    models: ModelService,
    bind: str,
    max_workers: int = 8,
    admin_token: str = "",
    tls: ServerTls | None = None,
) -> tuple[grpc.Server, int]:
    """A server bound to `bind` ("host:port"; port 0 picks a free one), not started yet, with
    health (SERVING only while a model is loaded) and reflection, over TLS when `tls` is given.
    Returns it and its port."""
    server = grpc.server(
        ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="lightfm-rpc"),
        # Without this, two servers could share a port and split each other's traffic.
        options=[("grpc.so_reuseport", 0)],
    )
    pb_grpc.add_RecommenderServicer_to_server(RecommenderServicer(models, admin_token), server)

    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)

    def report(serving: ServingModel | None) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving is not None
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", SERVICE_NAME):
            health_servicer.set(name, status)

    models.subscribe(report)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    port = (
        server.add_secure_port(bind, tls.credentials())
        if tls is not None
        else server.add_insecure_port(bind)
    )
    if port == 0:
        raise OSError(f"cannot listen on {bind}")
    return server, port


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, details: str) -> NoReturn:
    context.abort(code, details)
    raise AssertionError("context.abort returned")  # it raises; this keeps the type checker honest


def _timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp
