"""Implements `ports.recommender.RecommendationSource` (the `lightfm` source),
`ports.recommender.ModelCatalogue` and a `ports.health.HealthCheck` over gRPC
`lightfm.v2025_9`, for the web service.

Retries are gRPC's own (the service config below): at most 3 attempts, only of UNAVAILABLE,
with jittered backoff, throttled per target once failures pile up. The caller's `timeout_s` is
one gRPC deadline, so it spans every attempt and the backoff between them. A circuit breaker
in front rejects calls at once after `breaker_failures` consecutive failures.

gevent: the calls are plain blocking stub calls; under gunicorn's gevent worker they yield to
the hub only once `app.cooperative.make_c_clients_cooperative()` has run, and that must happen
before a client here is built (gRPC objects made before `init_gevent()` stay blocking).
"""

from __future__ import annotations

import json
import logging
import operator
import sys
import time
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from itertools import islice, repeat
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc

from adapters.lightfm.breaker import Admission, Breaker
from adapters.lightfm.channel import ROUND_ROBIN, ClientTls, open_channel
from domain.errors import DependencyUnavailable
from domain.exploration import KnownVideos
from domain.feed import (
    Algorithm,
    FallbackReason,
    FreshPositive,
    ItemSource,
    Personalization,
    Ranking,
    RankRequest,
    RecommendationFailed,
    ScoredVideo,
)
from ports.health import ComponentHealth
from ports.observability import Metrics
from proto.lightfm.v2025_9 import recommender_pb2 as pb
from proto.lightfm.v2025_9 import recommender_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["Recommender"].full_name
HEALTH_TIMEOUT_S = 0.3
#: KnownVideos runs in the background (exploration refresh), never on a request's path.
CATALOGUE_TIMEOUT_S = 2.0
#: Under gevent a call is abandoned this long after its deadline if gRPC has not returned yet
#: (the deadline fires in gRPC's core; waking the greenlet can lag behind a busy hub).
BACKSTOP_S = 0.005
#: At most this many recent positives travel with a Recommend call (the server's limit).
MAX_RECENT_POSITIVES = 500
_PERSONALIZATION = {
    pb.PERSONALIZATION_REALTIME: Personalization.REALTIME,
    pb.PERSONALIZATION_MODEL: Personalization.MODEL,
}

# Only UNAVAILABLE is retried: the server's contract names it the one retryable status, and it
# is what gRPC reports for a refused or dropped connection. DEADLINE_EXCEEDED is not (the
# deadline spans the call, so nothing is left to retry with); RESOURCE_EXHAUSTED is mostly
# gRPC's own "message too large", which fails the same way again, and retrying an overloaded
# server adds load; ABORTED is a concurrency conflict the model service never reports.
# Throttling: each failed attempt costs a token and each success returns 0.1; retries stop
# while half the tokens are gone, so a failure rate above ~9% turns retries off. The bucket
# sets the burst retried before that: a replica that dies fails every call in flight on it
# at once (UNAVAILABLE, connection reset; Recommend is read-only, so a retry is safe), and
# with 10 tokens only the first 5 of them were retried (measured: 16 callers, a SIGKILLed
# replica, ~10 failed calls per kill); 100 retries a burst of 50.
SERVICE_CONFIG: dict[str, Any] = {
    "methodConfig": [
        {
            # Recommend only: it is the one method this client calls, and the cheap, idempotent one.
            "name": [{"service": SERVICE_NAME, "method": "Recommend"}],
            "retryPolicy": {
                "maxAttempts": 3,
                "initialBackoff": "0.01s",
                "maxBackoff": "0.05s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ],
    "retryThrottling": {"maxTokens": 100, "tokenRatio": 0.1},
    # Every replica the target names gets calls in turn; a retry goes to the next one.
    "loadBalancingConfig": ROUND_ROBIN,
}

DEFAULT_CHANNEL_OPTIONS: Mapping[str, str | int] = {
    "grpc.service_config": json.dumps(SERVICE_CONFIG),
    "grpc.enable_retries": 1,
    # gRPC's reconnect backoff starts at 1 s and grows to 120 s by default: a model service
    # back after a restart would be refused for seconds to minutes. Reconnect attempts to a
    # closed loopback or LAN port cost one SYN each, so try twice a second at most.
    "grpc.initial_reconnect_backoff_ms": 100,
    "grpc.max_reconnect_backoff_ms": 500,
}

# NOT_FOUND is the model's "unknown user" answer. INVALID_ARGUMENT is our bug (the web layer
# validated the request already), so ERROR. FAILED_PRECONDITION means "not in a state to
# serve until someone fixes it": the model service is not serving, like UNAVAILABLE, but it is
# not retried. Every other status is ERROR.
_REASONS: Mapping[grpc.StatusCode, FallbackReason] = {
    grpc.StatusCode.DEADLINE_EXCEEDED: FallbackReason.DEADLINE,
    grpc.StatusCode.UNAVAILABLE: FallbackReason.UNAVAILABLE,
    grpc.StatusCode.FAILED_PRECONDITION: FallbackReason.UNAVAILABLE,
    grpc.StatusCode.NOT_FOUND: FallbackReason.COLD_START,
}

# A cold start is a correct answer from a live model: it does not count, and it ends a streak.
_COUNTED = frozenset({FallbackReason.DEADLINE, FallbackReason.UNAVAILABLE, FallbackReason.ERROR})


class GrpcRecommender:
    """Implements `ports.recommender.RecommendationSource` (named `lightfm`) and
    `ports.recommender.ModelCatalogue` over one long-lived gRPC channel.

    The channel connects lazily, on the first call. `metrics`, when given, receives
    `feed.model.latency_ms` (tagged `outcome`: "ok" or the fallback reason) for every call,
    rejected ones included, and `feed.model.circuit_open` (1 unless the breaker is closed)
    after every call. `channel_options` override `DEFAULT_CHANNEL_OPTIONS` by name. `target`
    is `LIGHTFM_TARGET` (`adapters.lightfm.channel.grpc_target`); `tls` set: a TLS channel.
    """

    def __init__(
        self,
        target: str,
        *,
        breaker_failures: int = 5,
        breaker_cooldown_s: float = 5.0,
        metrics: Metrics | None = None,
        channel_options: Mapping[str, str | int] | None = None,
        tls: ClientTls | None = None,
    ) -> None:
        options = {**DEFAULT_CHANNEL_OPTIONS, **(channel_options or {})}
        self._channel = open_channel(target, options, tls)
        self._stub = pb_grpc.RecommenderStub(self._channel)
        self._breaker = Breaker(breaker_failures, breaker_cooldown_s)
        self._metrics = metrics
        self._target = target
        self._disconnected = False  # seen not READY since the breaker opened

    @property
    def name(self) -> Algorithm:
        return Algorithm.LIGHTFM

    def rank(self, request: RankRequest) -> Ranking:
        started = time.perf_counter()
        self._watch_reconnect()
        admission = self._breaker.admit()
        if admission is Admission.REJECT:
            self._report(FallbackReason.CIRCUIT_OPEN, started)
            raise RecommendationFailed(FallbackReason.CIRCUIT_OPEN, f"breaker open: {self._target}")
        try:
            ranking = self._call_with_backstop(request)
        except RecommendationFailed as failure:
            self._breaker.settle(admission, failure.reason in _COUNTED)
            self._report(failure.reason, started)
            raise
        except BaseException:
            # Abandoned (e.g. by a gevent.Timeout around us): no verdict, but free the probe slot.
            self._breaker.release(admission)
            raise
        self._breaker.settle(admission, failed=False)
        self._report(None, started)
        return ranking

    def close(self) -> None:
        """Close the channel; a later `rank` fails with ERROR."""
        self._channel.close()

    def _watch_reconnect(self) -> None:
        """While the breaker is open, a channel seen down and now READY again (the service
        restarted) lets one probe through at once instead of after the rest of the cool-down.
        A service that fails while connected gets no such shortcut."""
        if self._breaker.closed:
            self._disconnected = False
        elif not self._connected():
            self._disconnected = True
        elif self._disconnected:
            self._disconnected = False
            self._breaker.reachable()

    def _connected(self) -> bool:
        """Is the channel READY now? Also asks an idle channel to connect. Non-blocking.

        `Channel.subscribe` would tell the same, but its polling thread races `close()` (grpcio
        1.85: "Channel closed!" raised in that thread), so this asks the core channel directly.
        """
        core = getattr(self._channel, "_channel", None)
        try:
            state = core.check_connectivity_state(True) if core is not None else None
        except ValueError:  # closed
            return False
        return bool(state == grpc.ChannelConnectivity.READY.value[0])

    def known_videos(self, video_ids: Sequence[str]) -> KnownVideos:
        try:
            response = self._stub.KnownVideos(
                pb.KnownVideosRequest(video_ids=list(video_ids)), timeout=CATALOGUE_TIMEOUT_S
            )
        except grpc.RpcError as err:
            raise DependencyUnavailable("model", f"KnownVideos: {err.code().name}") from err
        except (ValueError, TypeError) as err:  # a closed channel
            raise DependencyUnavailable("model", f"KnownVideos: {err}") from err
        return KnownVideos(frozenset(response.known_video_ids), response.model_version)

    def _call_with_backstop(self, request: RankRequest) -> Ranking:
        monkey = sys.modules.get("gevent.monkey")
        if monkey is None or not monkey.is_module_patched("socket"):
            return self._call(request)
        import gevent

        try:
            with gevent.Timeout(request.timeout_s + BACKSTOP_S):
                return self._call(request)
        except gevent.Timeout as err:
            raise RecommendationFailed(
                FallbackReason.DEADLINE, f"no answer {BACKSTOP_S * 1000:.0f} ms past the deadline"
            ) from err

    def _call(self, request: RankRequest) -> Ranking:
        limit, exclude = request.limit, request.exclude
        try:
            message = pb.RecommendRequest(
                user_id=request.user_id,
                limit=limit,
                exclude_video_ids=list(exclude),
                recent_positives=[
                    _recent_positive(positive)
                    for positive in request.fresh_positives[:MAX_RECENT_POSITIVES]
                ],
            )
            response = self._stub.Recommend(message, timeout=request.timeout_s)
        except grpc.RpcError as err:
            code: grpc.StatusCode = err.code()
            reason = _REASONS.get(code, FallbackReason.ERROR)
            raise RecommendationFailed(reason, f"{code.name}: {err.details()}") from err
        except (ValueError, TypeError) as err:  # an unencodable request, or a closed channel
            raise RecommendationFailed(FallbackReason.ERROR, str(err)) from err
        answered = response.items
        ids = [item.video_id for item in answered]
        scores = [item.score for item in answered]
        if problem := _ranking_problem(ids, scores, limit, exclude):
            raise RecommendationFailed(FallbackReason.ERROR, f"model broke its contract: {problem}")
        items = tuple(map(ScoredVideo, ids, scores, repeat(ItemSource.MODEL)))
        return Ranking(
            items=items,
            model_version=response.model_version,
            algorithm=Algorithm.LIGHTFM,
            personalization=_PERSONALIZATION.get(response.personalization, Personalization.MODEL),
        )

    def _report(self, outcome: FallbackReason | None, started: float) -> None:
        if self._metrics is None:
            return
        elapsed_ms = (time.perf_counter() - started) * 1000
        tags = {"outcome": outcome.value if outcome else "ok"}
        self._metrics.timing("feed.model.latency_ms", elapsed_ms, tags)
        self._metrics.gauge("feed.model.circuit_open", 0 if self._breaker.closed else 1)


def _recent_positive(positive: FreshPositive) -> Any:
    # Seconds and nanoseconds from the POSIX timestamp: `Timestamp.FromDatetime` converts time
    # zones and checks ranges per call, a measurable share of the client's work per first page.
    # Integer microseconds since the epoch: exact, unlike a float timestamp.
    seconds, micros = divmod((positive.occurred_at - _EPOCH) // _MICROSECOND, 1_000_000)
    return pb.RecentPositive(
        video_id=positive.video_id,
        weight=positive.weight,
        occurred_at=Timestamp(seconds=seconds, nanos=micros * 1000),
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _ranking_problem(
    ids: Sequence[str], scores: Sequence[float], limit: int, exclude: Collection[str]
) -> str | None:
    """What breaks the model's contract in an answer, or None. (Comparisons and set operations
    in C: this runs on every first page, over the whole pool.)"""
    if len(ids) > limit:
        return f"{len(ids)} items for limit {limit}"
    if not all(map(operator.ge, scores, islice(scores, 1, None))):
        return "scores are not non-increasing"
    excluded = set(exclude)
    if not excluded.isdisjoint(ids):
        return f"excluded videos returned: {[v for v in ids if v in excluded][:5]}"
    return None


class ModelServiceHealth:
    """Implements `ports.health.HealthCheck`: does the model service report SERVING?

    Not critical: without the model the feed serves trending.
    """

    name = "model"
    critical = False

    def __init__(
        self, target: str, timeout_s: float = HEALTH_TIMEOUT_S, tls: ClientTls | None = None
    ) -> None:
        # Ready when any replica answers: round-robin skips one that is down.
        self._channel = open_channel(
            target, {"grpc.service_config": json.dumps({"loadBalancingConfig": ROUND_ROBIN})}, tls
        )
        self._stub = health_pb2_grpc.HealthStub(self._channel)
        self._timeout_s = timeout_s

    def check(self) -> ComponentHealth:
        try:
            reply = self._stub.Check(
                health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=self._timeout_s
            )
        except grpc.RpcError as err:
            return ComponentHealth(False, f"health check failed: {err.code().name}")
        except Exception as err:  # a probe reports, it never raises
            return ComponentHealth(False, f"{type(err).__name__}: {err}")
        if reply.status != health_pb2.HealthCheckResponse.SERVING:
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            return ComponentHealth(False, f"model service is {status}")
        return ComponentHealth(True)

    def close(self) -> None:
        self._channel.close()
