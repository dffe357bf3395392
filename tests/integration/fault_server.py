"""A real `lightfm.v2025_9.Recommender` gRPC server whose faults a test chooses: answer after a
delay, fail the next N attempts with a status, fail every attempt. It records every attempt
that reaches it (gRPC retries included) and how many ran at once, and serves standard health.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from proto.lightfm.v2025_9 import recommender_pb2 as pb
from proto.lightfm.v2025_9 import recommender_pb2_grpc as pb_grpc

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["Recommender"].full_name
MODEL_VERSION = "fault-2026-01-01"
#: What a normal answer ranks (best first), before `exclude_video_ids` and `limit`.
CATALOGUE: tuple[tuple[str, float], ...] = (("v1", 0.9), ("v2", 0.7), ("v3", 0.7), ("v4", 0.1))


@dataclass(frozen=True)
class Behaviour:
    """What one attempt does: wait `delay_s`, then fail with `status` or answer normally."""

    delay_s: float = 0.0
    status: grpc.StatusCode | None = None


@dataclass(frozen=True)
class Attempt:
    """One attempt that reached the server; `previous_attempts` is gRPC's retry count."""

    user_id: str
    previous_attempts: int
    at: float  # time.monotonic()


class FaultServer:
    """Listens on 127.0.0.1 on a port the OS picks, from construction until `stop()`.

    It is its own servicer: `add_RecommenderServicer_to_server` looks the handlers up by name.
    """

    def __init__(self, max_workers: int = 16, port: int = 0) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._default = Behaviour()
        self._queued: list[Behaviour] = []
        self._items: Sequence[tuple[str, float]] = CATALOGUE
        self._honour_request = True
        self._attempts: list[Attempt] = []
        self._in_flight = 0
        self.peak_in_flight = 0
        #: every Recommend request answered, in order
        self.requests: list[Any] = []
        self._server = grpc.server(
            ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="fault-rpc"),
            options=[("grpc.so_reuseport", 0)],
        )
        pb_grpc.add_RecommenderServicer_to_server(self, self._server)
        self._health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        self.set_serving(True)
        self.port: int = self._server.add_insecure_port(f"127.0.0.1:{port}")
        if self.port == 0:
            raise OSError("the fault server could not listen")
        self._server.start()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    # --- what the next attempts do ------------------------------------------------------

    def answer_normally(self, delay_s: float = 0.0) -> None:
        self._set(Behaviour(delay_s=delay_s))

    def fail_always(self, status: grpc.StatusCode, delay_s: float = 0.0) -> None:
        self._set(Behaviour(delay_s=delay_s, status=status))

    def fail_next(self, count: int, status: grpc.StatusCode) -> None:
        """The next `count` attempts fail with `status`; later ones do the default."""
        with self._lock:
            self._queued.extend([Behaviour(status=status)] * count)

    def then(self, *behaviours: Behaviour) -> None:
        """The next attempts, in order, before the default resumes."""
        with self._lock:
            self._queued.extend(behaviours)

    def answer_with(self, items: Sequence[tuple[str, float]]) -> None:
        """Answer exactly `items`, ignoring the request's limit and exclusions (a broken model)."""
        with self._lock:
            self._items = tuple(items)
            self._honour_request = False

    def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", SERVICE_NAME):
            self._health.set(name, status)

    # --- what reached the server --------------------------------------------------------

    @property
    def attempts(self) -> list[Attempt]:
        with self._lock:
            return list(self._attempts)

    @property
    def attempt_count(self) -> int:
        with self._lock:
            return len(self._attempts)

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers that are "hanging"
        self._server.stop(grace=None).wait()

    # --- the servicer ---------------------------------------------------------------------

    def Recommend(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        behaviour = self._begin(request.user_id, context)
        try:
            if behaviour.delay_s:
                self._stopping.wait(behaviour.delay_s)
            if behaviour.status is not None:
                _abort(context, behaviour.status, "injected fault")
            return self._answer(request)
        finally:
            self._end()

    def DescribeModel(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        _abort(context, grpc.StatusCode.UNIMPLEMENTED, "not part of the fault server")

    def KnownVideos(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        behaviour = self._begin("", context)
        try:
            if behaviour.status is not None:
                _abort(context, behaviour.status, "injected fault")
            with self._lock:
                known = {video_id for video_id, _ in self._items}
            return pb.KnownVideosResponse(
                known_video_ids=[v for v in request.video_ids if v in known],
                model_version=MODEL_VERSION,
            )
        finally:
            self._end()

    def LoadModel(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        _abort(context, grpc.StatusCode.UNIMPLEMENTED, "not part of the fault server")

    def _set(self, behaviour: Behaviour) -> None:
        with self._lock:
            self._default = behaviour
            self._queued.clear()

    def _begin(self, user_id: str, context: grpc.ServicerContext) -> Behaviour:
        metadata = dict(context.invocation_metadata() or ())
        previous = int(metadata.get("grpc-previous-rpc-attempts", 0))
        with self._lock:
            self._attempts.append(Attempt(user_id, previous, time.monotonic()))
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
            return self._queued.pop(0) if self._queued else self._default

    def _end(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _answer(self, request: Any) -> Any:
        with self._lock:
            items, honour = self._items, self._honour_request
            self.requests.append(request)
        if honour:
            excluded = set(request.exclude_video_ids)
            items = [item for item in items if item[0] not in excluded][: request.limit]
        return pb.RecommendResponse(
            items=[pb.ScoredVideo(video_id=video_id, score=score) for video_id, score in items],
            model_version=MODEL_VERSION,
            request_id=request.request_id,
            personalization=(
                pb.PERSONALIZATION_REALTIME
                if request.recent_positives
                else pb.PERSONALIZATION_MODEL
            ),
        )


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, details: str) -> NoReturn:
    context.abort(code, details)
    raise AssertionError("context.abort returned")
