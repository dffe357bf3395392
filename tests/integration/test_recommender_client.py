"""The gRPC client of the recommender port against real servers: a fault-injecting one (retries,
the deadline, status mapping, the circuit breaker) and the real model service (health, the
statuses it really sends). Nothing gRPC leaves the adapter: every failure is a
`RecommendationFailed` with the reason the feed reports."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest

from adapters.lightfm.client import GrpcRecommender, ModelServiceHealth
from adapters.lightfm.model_service import ModelService
from adapters.lightfm.server import build_server
from adapters.model_store.local import LocalModelStore
from adapters.system_clock import SystemClock
from domain.errors import DependencyUnavailable
from domain.feed import (
    Algorithm,
    FallbackReason,
    FreshPositive,
    ItemSource,
    Personalization,
    Ranking,
    RankRequest,
    RecommendationFailed,
)
from tests.integration.fault_server import CATALOGUE, MODEL_VERSION, Behaviour, FaultServer
from tests.integration.lightfm_support import TwoModels, store_with, train_two_models
from tests.servers import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_S = 0.15
COOLDOWN_S = 0.3


@dataclass
class RecordingMetrics:
    """Implements `ports.observability.Metrics` by remembering what it was sent."""

    timings: list[tuple[str, float, dict[str, str]]] = field(default_factory=list)
    gauges: list[tuple[str, float]] = field(default_factory=list)

    def fallback(self, reason: FallbackReason, experiment_variant_id: str | None) -> None:
        raise AssertionError("the adapter reports no fallback; the feed does")

    def timing(self, name: str, milliseconds: float, tags: Mapping[str, str] | None = None) -> None:
        self.timings.append((name, milliseconds, dict(tags or {})))

    def timing_samples(
        self, name: str, milliseconds: Sequence[float], tags: Mapping[str, str] | None = None
    ) -> None:
        raise AssertionError("the adapter times one call at a time")

    def gauge(self, name: str, value: float, tags: Mapping[str, str] | None = None) -> None:
        self.gauges.append((name, value))

    def increment(self, name: str, value: int = 1, tags: Mapping[str, str] | None = None) -> None:
        raise AssertionError("the adapter counts nothing")

    def close(self) -> None:
        raise AssertionError("the adapter does not own its metrics")


@pytest.fixture
def server() -> Iterator[FaultServer]:
    started = FaultServer()
    yield started
    started.stop()


@pytest.fixture
def metrics() -> RecordingMetrics:
    return RecordingMetrics()


Connect = Callable[..., GrpcRecommender]


@pytest.fixture
def connect(metrics: RecordingMetrics) -> Iterator[Connect]:
    """A client of a target (breaker cool-down COOLDOWN_S), closed after the test."""
    clients: list[GrpcRecommender] = []

    def make(target: str, breaker_failures: int = 5) -> GrpcRecommender:
        client = GrpcRecommender(
            target,
            breaker_failures=breaker_failures,
            breaker_cooldown_s=COOLDOWN_S,
            metrics=metrics,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def rank(
    client: GrpcRecommender,
    user_id: str = "u1",
    limit: int = 10,
    exclude: Collection[str] = (),
    timeout_s: float = DEADLINE_S,
) -> Ranking:
    return client.rank(RankRequest(user_id, limit, tuple(exclude), timeout_s=timeout_s))


def failure_of(call: Callable[[], object]) -> tuple[RecommendationFailed, float]:
    """The port error a call that must fail raises, and how long it took (seconds)."""
    started = time.perf_counter()
    with pytest.raises(RecommendationFailed) as caught:
        call()
    return caught.value, time.perf_counter() - started


def open_breaker(client: GrpcRecommender, server: FaultServer) -> None:
    server.fail_always(grpc.StatusCode.UNAVAILABLE)
    for _ in range(5):
        failure, _ = failure_of(lambda: rank(client))
        assert failure.reason is FallbackReason.UNAVAILABLE


# --- answers, retries and the deadline ---------------------------------------------------------


def test_an_answer_becomes_the_ranking_with_the_model_version(
    server: FaultServer, connect: Connect, metrics: RecordingMetrics
) -> None:
    client = connect(server.target)

    ranking = rank(client, limit=2, exclude=["v2"])

    assert [item.video_id for item in ranking.items] == ["v1", "v3"]
    assert [item.score for item in ranking.items] == pytest.approx([0.9, 0.7])
    assert ranking.model_version == MODEL_VERSION
    assert [a.previous_attempts for a in server.attempts] == [0]
    assert [(name, tags) for name, _, tags in metrics.timings] == [
        ("feed.model.latency_ms", {"outcome": "ok"})
    ]
    assert metrics.gauges == [("feed.model.circuit_open", 0)]


def test_two_unavailable_attempts_are_retried_and_the_third_answers(
    server: FaultServer, connect: Connect
) -> None:
    server.fail_next(2, grpc.StatusCode.UNAVAILABLE)

    ranking = rank(connect(server.target))

    assert ranking.model_version == MODEL_VERSION
    assert [a.previous_attempts for a in server.attempts] == [0, 1, 2]


def test_an_always_unavailable_service_gets_three_attempts_at_most(
    server: FaultServer, connect: Connect, metrics: RecordingMetrics
) -> None:
    server.fail_always(grpc.StatusCode.UNAVAILABLE)

    failure, _ = failure_of(lambda: rank(connect(server.target)))

    assert failure.reason is FallbackReason.UNAVAILABLE
    assert server.attempt_count == 3
    assert metrics.timings[-1][2] == {"outcome": "unavailable"}


def test_a_hanging_service_costs_one_deadline_not_one_per_attempt(
    server: FaultServer, connect: Connect
) -> None:
    server.answer_normally(delay_s=2.0)

    failure, took = failure_of(lambda: rank(connect(server.target)))

    assert failure.reason is FallbackReason.DEADLINE
    assert 0.9 * DEADLINE_S <= took < 0.3  # 3 x 150 ms would be 450 ms
    assert server.attempt_count == 1  # DEADLINE_EXCEEDED is never retried


def test_the_deadline_spans_the_retries(server: FaultServer, connect: Connect) -> None:
    server.then(Behaviour(status=grpc.StatusCode.UNAVAILABLE), Behaviour(delay_s=2.0))

    failure, took = failure_of(lambda: rank(connect(server.target)))

    assert failure.reason is FallbackReason.DEADLINE
    assert took < 0.3
    assert [a.previous_attempts for a in server.attempts] == [0, 1]


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (grpc.StatusCode.NOT_FOUND, FallbackReason.COLD_START),
        (grpc.StatusCode.INTERNAL, FallbackReason.ERROR),
        (grpc.StatusCode.INVALID_ARGUMENT, FallbackReason.ERROR),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, FallbackReason.ERROR),
        (grpc.StatusCode.ABORTED, FallbackReason.ERROR),
        (grpc.StatusCode.UNIMPLEMENTED, FallbackReason.ERROR),
        (grpc.StatusCode.FAILED_PRECONDITION, FallbackReason.UNAVAILABLE),
        (grpc.StatusCode.DEADLINE_EXCEEDED, FallbackReason.DEADLINE),
    ],
    ids=lambda value: value.name if isinstance(value, grpc.StatusCode) else value.value,
)
def test_other_statuses_map_to_their_reason_without_a_retry(
    server: FaultServer, connect: Connect, status: grpc.StatusCode, reason: FallbackReason
) -> None:
    server.fail_always(status)

    failure, _ = failure_of(lambda: rank(connect(server.target)))

    assert failure.reason is reason
    assert isinstance(failure.__cause__, grpc.RpcError)  # kept as the cause, never raised
    assert server.attempt_count == 1


def test_nothing_listening_is_unavailable_at_once(connect: Connect) -> None:
    client = connect(f"127.0.0.1:{free_port()}")

    failure, took = failure_of(lambda: rank(client, timeout_s=2.0))

    assert failure.reason is FallbackReason.UNAVAILABLE
    assert took < 0.5


@pytest.mark.parametrize(
    "answer",
    [
        [("v1", 0.1), ("v2", 0.9)],  # scores increase
        [("v1", 0.9), ("excluded", 0.5)],  # an excluded video comes back
        [(f"v{i}", 1.0) for i in range(3)],  # more than the limit of 2
    ],
    ids=["unordered", "excluded", "over-limit"],
)
def test_a_ranking_that_breaks_the_contract_is_an_error(
    server: FaultServer, connect: Connect, answer: list[tuple[str, float]]
) -> None:
    server.answer_with(answer)

    failure, _ = failure_of(lambda: rank(connect(server.target), limit=2, exclude=["excluded"]))

    assert failure.reason is FallbackReason.ERROR


def test_a_closed_client_fails_with_error_not_a_grpc_exception(
    server: FaultServer, connect: Connect
) -> None:
    client = connect(server.target)
    client.close()

    failure, _ = failure_of(lambda: rank(client))

    assert failure.reason is FallbackReason.ERROR
    assert server.attempt_count == 0


# --- the circuit breaker -----------------------------------------------------------------------


def test_the_breaker_opens_after_five_consecutive_failures_and_rejects_at_once(
    server: FaultServer, connect: Connect, metrics: RecordingMetrics
) -> None:
    client = connect(server.target)
    open_breaker(client, server)  # the fifth call still reached the server
    reached = server.attempt_count

    rejected = [failure_of(lambda: rank(client)) for _ in range(10)]

    assert {failure.reason for failure, _ in rejected} == {FallbackReason.CIRCUIT_OPEN}
    assert statistics.median(took for _, took in rejected) < 0.005
    assert server.attempt_count == reached
    assert metrics.timings[-1][2] == {"outcome": "circuit_open"}
    assert [value for _, value in metrics.gauges][3:6] == [0, 1, 1]


def test_after_the_cool_down_a_successful_probe_closes_the_breaker(
    server: FaultServer, connect: Connect, metrics: RecordingMetrics
) -> None:
    client = connect(server.target)
    open_breaker(client, server)
    server.answer_normally()
    time.sleep(COOLDOWN_S + 0.05)
    reached = server.attempt_count

    probe = rank(client)

    assert probe.model_version == MODEL_VERSION
    assert server.attempt_count == reached + 1
    assert [rank(client).model_version for _ in range(3)] == [MODEL_VERSION] * 3
    assert metrics.gauges[-1] == ("feed.model.circuit_open", 0)


def test_a_failed_probe_opens_the_breaker_for_another_cool_down(
    server: FaultServer, connect: Connect
) -> None:
    client = connect(server.target)
    open_breaker(client, server)
    time.sleep(COOLDOWN_S + 0.05)
    reached = server.attempt_count

    probe, _ = failure_of(lambda: rank(client))
    after_probe = server.attempt_count
    rejected, _ = failure_of(lambda: rank(client))

    assert probe.reason is FallbackReason.UNAVAILABLE
    assert after_probe > reached
    assert rejected.reason is FallbackReason.CIRCUIT_OPEN
    assert server.attempt_count == after_probe
    server.answer_normally()
    time.sleep(COOLDOWN_S + 0.05)
    assert rank(client).model_version == MODEL_VERSION


def test_only_one_probe_goes_out_while_the_cool_down_is_over(
    server: FaultServer, connect: Connect
) -> None:
    client = connect(server.target)
    open_breaker(client, server)
    server.answer_normally(delay_s=0.2)
    time.sleep(COOLDOWN_S + 0.05)
    reached = server.attempt_count
    start = threading.Barrier(4)
    outcomes: list[str] = []

    def call() -> None:
        start.wait()
        try:
            rank(client, timeout_s=2.0)
            outcomes.append("ok")
        except RecommendationFailed as failure:
            outcomes.append(failure.reason.value)

    callers = [threading.Thread(target=call) for _ in range(4)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(timeout=5)

    assert sorted(outcomes) == ["circuit_open"] * 3 + ["ok"]
    assert server.attempt_count == reached + 1


@pytest.mark.parametrize(
    ("interruption", "reason"),
    [(Behaviour(), None), (Behaviour(status=grpc.StatusCode.NOT_FOUND), FallbackReason.COLD_START)],
    ids=["answer", "cold-start"],
)
def test_an_answer_or_a_cold_start_ends_a_streak_of_failures(
    server: FaultServer,
    connect: Connect,
    interruption: Behaviour,
    reason: FallbackReason | None,
) -> None:
    client = connect(server.target)
    server.fail_always(grpc.StatusCode.UNAVAILABLE)
    for _ in range(4):
        failure_of(lambda: rank(client))
    server.then(interruption)
    try:
        rank(client)
        interrupted_with = None
    except RecommendationFailed as failure:
        interrupted_with = failure.reason

    later = [failure_of(lambda: rank(client))[0].reason for _ in range(4)]

    assert interrupted_with is reason
    assert later == [FallbackReason.UNAVAILABLE] * 4  # four in a row again, not nine


def test_cold_starts_never_open_the_breaker(server: FaultServer, connect: Connect) -> None:
    client = connect(server.target)
    server.fail_always(grpc.StatusCode.NOT_FOUND)

    reasons = {failure_of(lambda: rank(client))[0].reason for _ in range(8)}

    assert reasons == {FallbackReason.COLD_START}
    assert server.attempt_count == 8


# --- the real model service --------------------------------------------------------------------


@pytest.fixture(scope="module")
def models() -> TwoModels:
    return train_two_models()


ModelServiceAt = Callable[[LocalModelStore, bool], str]


@pytest.fixture
def model_service_at() -> Iterator[ModelServiceAt]:
    """Starts the real model service (with its model loaded or not) and returns its target."""
    started: list[tuple[grpc.Server, ModelService]] = []

    def start(store: LocalModelStore, load: bool) -> str:
        service = ModelService(store, SystemClock())
        server, port = build_server(service, "127.0.0.1:0", max_workers=4)
        server.start()
        started.append((server, service))
        if load:
            service.load()
        return f"127.0.0.1:{port}"

    yield start
    for server, service in started:
        service.stop_polling()
        server.stop(grace=None).wait()


def test_against_the_model_service_known_unknown_and_no_model(
    tmp_path: Path, models: TwoModels, model_service_at: ModelServiceAt, connect: Connect
) -> None:
    client = connect(model_service_at(store_with(tmp_path / "models", models), True))
    no_model = connect(model_service_at(LocalModelStore(tmp_path / "empty"), False))
    user = models.first.user_ids[0]

    top = rank(client, user, limit=5, timeout_s=2.0)
    rest = rank(client, user, limit=5, exclude=[item.video_id for item in top.items], timeout_s=2)
    cold, _ = failure_of(lambda: rank(client, "u-never-seen", timeout_s=2.0))
    down, _ = failure_of(lambda: rank(no_model, timeout_s=2.0))

    assert len(top.items) == 5 and top.model_version == models.first.info.version
    assert not {item.video_id for item in top.items} & {item.video_id for item in rest.items}
    assert cold.reason is FallbackReason.COLD_START
    assert down.reason is FallbackReason.UNAVAILABLE


def test_health_is_ok_only_while_the_model_service_serves_a_model(
    tmp_path: Path, models: TwoModels, model_service_at: ModelServiceAt
) -> None:
    targets = (
        model_service_at(store_with(tmp_path / "models", models), True),
        model_service_at(LocalModelStore(tmp_path / "empty"), False),
        f"127.0.0.1:{free_port()}",
    )
    checks = [ModelServiceHealth(target) for target in targets]
    try:
        started = time.perf_counter()
        up, no_model, nothing = (check.check() for check in checks)
        took = time.perf_counter() - started
    finally:
        for check in checks:
            check.close()

    assert up.ok
    assert not no_model.ok and "NOT_SERVING" in no_model.detail
    assert not nothing.ok and "UNAVAILABLE" in nothing.detail
    assert took < 1.5
    assert (checks[0].name, checks[0].critical) == ("model", False)


# --- gevent ------------------------------------------------------------------------------------

GEVENT_CALLS = """
import json, sys, time
from gevent import monkey
monkey.patch_all()
from app.cooperative import make_c_clients_cooperative
assert make_c_clients_cooperative()
import gevent
from adapters.lightfm.client import GrpcRecommender
from domain.feed import RankRequest

client = GrpcRecommender(sys.argv[1])
client.rank(RankRequest("warm-up", 1, timeout_s=5.0))  # time the calls, not the handshake
started = time.perf_counter()
calls = [gevent.spawn(client.rank, RankRequest(f"u{i}", 2, timeout_s=0.5)) for i in range(10)]
gevent.joinall(calls, raise_error=True)
elapsed = time.perf_counter() - started
client.close()
print(json.dumps({"elapsed_s": elapsed, "answered": sum(len(c.value.items) == 2 for c in calls)}))
"""


def test_under_gevent_ten_greenlets_wait_for_the_model_at_the_same_time(
    server: FaultServer,
) -> None:
    server.answer_normally(delay_s=0.1)

    done = subprocess.run(
        [sys.executable, "-c", GEVENT_CALLS, server.target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["answered"] == 10
    assert result["elapsed_s"] < 0.6  # one after another would take 10 x 100 ms
    assert server.peak_in_flight >= 5


def test_fresh_positives_travel_with_the_call_and_realtime_comes_back(
    server: FaultServer, connect: Connect
) -> None:
    client = connect(server.target)
    liked_at = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
    request = RankRequest(
        "u1",
        5,
        ("v2",),
        (FreshPositive("v042", 3.0, liked_at), FreshPositive("v043", 1.0, liked_at)),
        DEADLINE_S,
    )
    ranking = client.rank(request)
    sent = server.requests[-1]
    assert [(p.video_id, p.weight) for p in sent.recent_positives] == [("v042", 3.0), ("v043", 1.0)]
    assert sent.recent_positives[0].occurred_at.ToDatetime(tzinfo=UTC) == liked_at
    assert ranking.personalization is Personalization.REALTIME
    assert ranking.algorithm is Algorithm.LIGHTFM
    assert {item.source for item in ranking.items} == {ItemSource.MODEL}
    assert rank(client).personalization is Personalization.MODEL


def test_the_catalogue_says_which_videos_the_model_knows(
    server: FaultServer, connect: Connect
) -> None:
    client = connect(server.target)
    known_id = CATALOGUE[0][0]
    known = client.known_videos([known_id, "v-brand-new"])
    assert known.video_ids == frozenset({known_id})
    assert known.model_version == MODEL_VERSION
    server.fail_always(grpc.StatusCode.UNAVAILABLE)
    with pytest.raises(DependencyUnavailable):
        client.known_videos([known_id])


# --- a restarted model service ------------------------------------------------------------------


def test_a_restarted_service_answers_within_a_second_of_its_health_check(
    metrics: RecordingMetrics,
) -> None:
    # The production cool-down (5 s): the breaker must not make a restarted service wait it out.
    first = FaultServer()
    port = first.port
    client = GrpcRecommender(first.target, breaker_cooldown_s=5.0, metrics=metrics)
    health = ModelServiceHealth(first.target)
    try:
        assert rank(client).model_version == MODEL_VERSION
        first.stop()
        for _ in range(5):
            failure_of(lambda: rank(client))
        assert failure_of(lambda: rank(client))[0].reason is FallbackReason.CIRCUIT_OPEN
        time.sleep(1.0)  # down long enough for gRPC's reconnect backoff to grow
        second = FaultServer(port=port)
        try:
            while not health.check().ok:
                time.sleep(0.01)
            healthy_at = time.monotonic()
            while True:
                try:
                    answered = rank(client)
                    break
                except RecommendationFailed:
                    assert time.monotonic() - healthy_at < 3.0, "the model never answered"
                    time.sleep(0.02)
            recovered_s = time.monotonic() - healthy_at
        finally:
            second.stop()
    finally:
        client.close()
        health.close()
    assert answered.model_version == MODEL_VERSION
    assert recovered_s < 1.0


GEVENT_BACKSTOP = """
import json, sys, time
from gevent import monkey
monkey.patch_all()
from app.cooperative import make_c_clients_cooperative
assert make_c_clients_cooperative()
import gevent
from adapters.lightfm.client import GrpcRecommender
from domain.feed import RankRequest, RecommendationFailed

def timed(client, user):
    started = time.perf_counter()
    try:
        client.rank(RankRequest(user, 2, timeout_s=0.15))
    except RecommendationFailed as failure:
        return failure.reason.value, time.perf_counter() - started
    return "answered", time.perf_counter() - started

hanging = GrpcRecommender(sys.argv[1], breaker_failures=1000)
calls = [gevent.spawn(timed, hanging, f"u{i}") for i in range(20)]
gevent.joinall(calls, raise_error=True)
hanging.close()

# gRPC that does not return at its deadline (the case the backstop is for): a stub whose call
# ignores the deadline and yields to the hub for a second.
deaf = GrpcRecommender(sys.argv[1], breaker_failures=1000)
deaf._stub.Recommend = lambda message, timeout: gevent.sleep(1.0)
deaf_call = timed(deaf, "deaf")
deaf.close()
print(json.dumps({"hanging": [c.value for c in calls], "deaf": deaf_call}))
"""


def test_under_gevent_a_frozen_model_costs_the_deadline_and_the_backstop_bounds_a_deaf_call(
    server: FaultServer,
) -> None:
    server.answer_normally(delay_s=2.0)

    done = subprocess.run(
        [sys.executable, "-c", GEVENT_BACKSTOP, server.target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert {reason for reason, _ in result["hanging"]} == {"deadline"}
    assert max(took for _, took in result["hanging"]) < 0.17  # the bound a feed request keeps
    reason, took = result["deaf"]
    assert reason == "deadline"
    assert 0.15 <= took < 0.17  # deadline + BACKSTOP_S, not the stub's whole second
