"""Segment and DogStatsD adapters, checked on the wire: a local HTTP receiver stands in for
Segment's `/v1/batch`, a local UDP socket for the Datadog agent."""

from __future__ import annotations

import base64
import json
import logging
import re
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from segment.analytics.consumer import Consumer

from adapters.dogstatsd_metrics import DogStatsdMetrics
from adapters.segment_analytics import SegmentAnalytics
from domain.feed import (
    Algorithm,
    FallbackReason,
    FeedConsumed,
    FeedServed,
    ItemSource,
    Personalization,
)
from tests.servers import LOOPBACK

pytestmark = pytest.mark.integration

WRITE_KEY = "test-write-key"
SERVED_AT = datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)


def served(
    feed_session_id: str = "fs-1",
    *,
    algorithm: Algorithm = Algorithm.LIGHTFM,
    fallback_reason: FallbackReason | None = None,
    experiment_variant_id: str | None = "treatment",
    model_version: str | None = "2024-05-01T03-00-00",
    page: int = 1,
    item_count: int = 20,
    personalization: Personalization = Personalization.REALTIME,
) -> FeedServed:
    return FeedServed(
        user_id="u-42",
        feed_session_id=feed_session_id,
        algorithm=algorithm,
        fallback_reason=fallback_reason,
        experiment_variant_id=experiment_variant_id,
        model_version=model_version,
        page=page,
        item_count=item_count,
        served_at=SERVED_AT,
        personalization=personalization,
    )


def consumed(event_id: str = "e-1", **changes: Any) -> FeedConsumed:
    fields: dict[str, Any] = {
        "user_id": "u-42",
        "event_id": event_id,
        "video_id": "v-7",
        "interaction_type": "like",
        "watch_time_ms": 12_000,
        "occurred_at": SERVED_AT,
        "feed_session_id": "fs-1",
        "rank": 23,
        "score": 0.875,
        "source": ItemSource.EXPLORATION,
        "algorithm": Algorithm.LIGHTFM,
        "experiment_variant_id": "treatment",
        "model_version": "2024-05-01T03-00-00",
    }
    return FeedConsumed(**(fields | changes))


# --------------------------------------------------------------------- Segment receiver


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class SegmentReceiver:
    """An HTTP server on 127.0.0.1 that records every request. It answers `status`, or,
    with `hang=True`, reads the request and answers nothing until it is closed."""

    def __init__(self, *, status: int = 200, hang: bool = False) -> None:
        self.requests: list[ReceivedRequest] = []
        self._arrived = threading.Condition()
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver._record(
                    ReceivedRequest("POST", self.path, dict(self.headers.items()), body)
                )
                if hang:
                    receiver._release.wait(timeout=60)
                    return
                payload = b"{}" if status < 300 else b"internal error"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.url = f"http://{LOOPBACK}:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def _record(self, request: ReceivedRequest) -> None:
        with self._arrived:
            self.requests.append(request)
            self._arrived.notify_all()

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[ReceivedRequest]:
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(f"{len(self.requests)} of {count} requests in {timeout} s")
            return list(self.requests)

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()  # joins the handler threads
        self._thread.join(timeout=5)


@pytest.fixture
def start_receiver() -> Iterator[Callable[..., SegmentReceiver]]:
    receivers: list[SegmentReceiver] = []

    def start(**kwargs: Any) -> SegmentReceiver:
        receiver = SegmentReceiver(**kwargs)
        receivers.append(receiver)
        return receiver

    yield start
    for receiver in receivers:
        receiver.close()


@pytest.fixture
def make_analytics(
    start_receiver: Callable[..., SegmentReceiver],
) -> Iterator[Callable[..., SegmentAnalytics]]:
    """Builds adapters and closes them before the receivers they talk to."""
    made: list[SegmentAnalytics] = []

    def make(host: str, **kwargs: Any) -> SegmentAnalytics:
        analytics = SegmentAnalytics(WRITE_KEY, host, **kwargs)
        made.append(analytics)
        return analytics

    yield make
    for analytics in made:
        analytics.close()


def segment_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if isinstance(thread, Consumer)]


def call_times_ms(call: Callable[[], None], times: int) -> list[float]:
    durations = []
    for _ in range(times):
        started = time.perf_counter()
        call()
        durations.append((time.perf_counter() - started) * 1000)
    return durations


# --------------------------------------------------------------------- Segment tests


def test_a_served_page_reaches_segment_as_one_track_call_with_all_its_properties(
    start_receiver: Callable[..., SegmentReceiver],
    make_analytics: Callable[..., SegmentAnalytics],
) -> None:
    receiver = start_receiver()
    analytics = make_analytics(receiver.url, flush_interval_s=0.05)

    analytics.feed_served(served("fs-model"))
    analytics.feed_served(
        served(
            "fs-fallback",
            algorithm=Algorithm.TRENDING,
            fallback_reason=FallbackReason.DEADLINE,
            experiment_variant_id=None,
            model_version=None,
            page=2,
            item_count=7,
            personalization=Personalization.NONE,
        )
    )
    assert analytics.flush(timeout_s=5.0)

    requests = receiver.wait_for_requests(1)
    assert {(r.method, r.path) for r in requests} == {("POST", "/v1/batch")}
    expected_auth = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    assert all(r.headers["Authorization"] == expected_auth for r in requests)
    assert all(r.headers["Content-Type"] == "application/json" for r in requests)
    assert all("Content-Encoding" not in r.headers for r in requests)
    items = _tracks(requests, "feed_session_id", "feed_recommendation_served")
    assert set(items) == {"fs-model", "fs-fallback"}
    assert items["fs-model"]["properties"] == {
        "algorithm": "lightfm",
        "feed_session_id": "fs-model",
        "experiment_variant_id": "treatment",
        "model_version": "2024-05-01T03-00-00",
        "page": 1,
        "item_count": 20,
        "fallback_reason": None,
        "personalization": "realtime",
    }
    assert items["fs-fallback"]["properties"] == {
        "algorithm": "trending",
        "feed_session_id": "fs-fallback",
        "experiment_variant_id": None,
        "model_version": None,
        "page": 2,
        "item_count": 7,
        "fallback_reason": "deadline",
        "personalization": "none",
    }


def test_a_failing_segment_neither_slows_the_page_nor_holds_up_shutdown(
    start_receiver: Callable[..., SegmentReceiver],
    make_analytics: Callable[..., SegmentAnalytics],
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver = start_receiver(status=500)
    threads_before = set(segment_threads())
    analytics = make_analytics(
        receiver.url, flush_interval_s=0.05, timeout_s=1.0, shutdown_timeout_s=0.5
    )

    durations = call_times_ms(lambda: analytics.feed_served(served()), 20)
    receiver.wait_for_requests(2)  # answered 500 and retried

    assert statistics.median(durations) < 5.0
    assert max(durations) < 100.0
    started = time.monotonic()
    analytics.close()
    # shutdown 0.5 s + a retry wait noticing the stop (<= 1 s) + slack, not the library's
    # minutes of retries
    assert time.monotonic() - started < 4.0
    assert set(segment_threads()) <= threads_before  # its consumer thread has stopped
    assert "not sent" in caplog.text


def test_a_segment_that_never_answers_costs_the_page_nothing_and_a_full_queue_drops(
    start_receiver: Callable[..., SegmentReceiver],
    make_analytics: Callable[..., SegmentAnalytics],
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver = start_receiver(hang=True)
    threads_before = set(segment_threads())
    analytics = make_analytics(
        receiver.url,
        flush_interval_s=0.05,
        max_queue_size=1,
        timeout_s=2.0,
        shutdown_timeout_s=0.5,
    )
    analytics.feed_served(served("fs-first"))
    receiver.wait_for_requests(1)  # the consumer is now stuck in that POST

    with caplog.at_level(logging.WARNING, logger="adapters.segment_analytics"):
        durations = call_times_ms(lambda: analytics.feed_served(served()), 20)

    # a blocking send would wait for the 2 s timeout at least once
    assert statistics.median(durations) < 5.0
    assert max(durations) < 100.0
    full_warnings = [r for r in caplog.records if "queue full" in r.getMessage()]
    assert len(full_warnings) == 1  # one of 19 drops is reported, not each
    started = time.monotonic()
    analytics.close()
    assert time.monotonic() - started < 6.0
    assert set(segment_threads()) <= threads_before  # its consumer thread has stopped


def test_a_consumed_recommendation_reaches_segment_with_its_place_in_the_session(
    start_receiver: Callable[..., SegmentReceiver],
    make_analytics: Callable[..., SegmentAnalytics],
) -> None:
    receiver = start_receiver()
    analytics = make_analytics(receiver.url, flush_interval_s=0.05)

    analytics.feed_consumed(consumed("e-1"))
    analytics.feed_consumed(
        consumed(
            "e-2",
            interaction_type="skip",
            watch_time_ms=0,
            source=ItemSource.TRENDING,
            algorithm=Algorithm.TRENDING,
            experiment_variant_id=None,
            model_version=None,
        )
    )
    assert analytics.flush(timeout_s=5.0)

    items = _tracks(receiver.wait_for_requests(1), "event_id", "feed_recommendation_consumed")
    assert set(items) == {"e-1", "e-2"}
    assert items["e-1"]["properties"] == {
        "event_id": "e-1",
        "video_id": "v-7",
        "interaction_type": "like",
        "watch_time_ms": 12_000,
        "rank": 23,
        "score": 0.875,
        "source": "exploration",
        "algorithm": "lightfm",
        "feed_session_id": "fs-1",
        "experiment_variant_id": "treatment",
        "model_version": "2024-05-01T03-00-00",
    }
    assert items["e-2"]["properties"]["source"] == "trending"
    assert items["e-2"]["properties"]["experiment_variant_id"] is None


def test_a_segment_that_never_answers_costs_an_interaction_nothing(
    start_receiver: Callable[..., SegmentReceiver],
    make_analytics: Callable[..., SegmentAnalytics],
) -> None:
    receiver = start_receiver(hang=True)
    analytics = make_analytics(
        receiver.url,
        flush_interval_s=0.05,
        max_queue_size=1,
        timeout_s=2.0,
        shutdown_timeout_s=0.5,
    )
    analytics.feed_consumed(consumed("e-first"))
    receiver.wait_for_requests(1)  # the consumer is now stuck in that POST

    durations = call_times_ms(lambda: analytics.feed_consumed(consumed()), 20)

    assert statistics.median(durations) < 5.0
    assert max(durations) < 100.0


# --------------------------------------------------------------------- DogStatsD


@pytest.fixture
def agent_socket(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A UDP socket on 127.0.0.1 standing in for the Datadog agent. The environment the
    library reads extra tags from is cleared so that datagrams are exact."""
    for name in ("DD_ENV", "DD_SERVICE", "DD_VERSION", "DD_ENTITY_ID", "DATADOG_TAGS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("DD_EXTERNAL_ENV", raising=False)
    monkeypatch.delenv("DD_DOGSTATSD_DISABLE", raising=False)
    monkeypatch.setenv("DD_ORIGIN_DETECTION_ENABLED", "false")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((LOOPBACK, 0))
    sock.settimeout(2.0)
    try:
        yield sock
    finally:
        sock.close()


@pytest.fixture
def metrics(agent_socket: socket.socket) -> Iterator[DogStatsdMetrics]:
    port = agent_socket.getsockname()[1]
    client = DogStatsdMetrics(LOOPBACK, port, constant_tags=("env:test", "service:feedrec"))
    try:
        yield client
    finally:
        client.close()


def receive(sock: socket.socket, count: int) -> list[str]:
    """`count` datagrams (each may hold several newline-separated lines), as lines."""
    lines: list[str] = []
    for _ in range(count):
        data, _ = sock.recvfrom(65535)
        lines.extend(line for line in data.decode().split("\n") if line)
    return lines


EVENT = re.compile(
    r"_e\{(?P<title_len>\d+),(?P<text_len>\d+)\}:(?P<title>[^|]+)\|(?P<text>[^|]+)"
    r"\|k:(?P<key>[^|]+)\|t:(?P<alert>[^|]+)\|#(?P<tags>.+)"
)


def test_a_fallback_sends_the_datadog_event_and_counter_tagged_with_reason_and_variant(
    metrics: DogStatsdMetrics, agent_socket: socket.socket
) -> None:
    metrics.fallback(FallbackReason.DEADLINE, "control")

    event_line, counter_line = receive(agent_socket, 2)
    event = EVENT.fullmatch(event_line)
    assert event is not None, event_line
    assert event["title"] == "feed.recommendation.fallback"
    assert int(event["title_len"]) == len(event["title"])
    assert int(event["text_len"]) == len(event["text"])
    assert "deadline" in event["text"]
    assert event["alert"] == "warning"
    assert event["key"] == "feed.recommendation.fallback:deadline"
    assert event["tags"] == "reason:deadline,variant:control,env:test,service:feedrec"
    assert counter_line == (
        "feed.recommendation.fallback:1|c|#reason:deadline,variant:control,env:test,service:feedrec"
    )


def test_a_fallback_by_design_is_counted_without_an_event_and_tagged_variant_none(
    metrics: DogStatsdMetrics, agent_socket: socket.socket
) -> None:
    metrics.fallback(FallbackReason.COLD_START, None)
    metrics.fallback(FallbackReason.EXPERIMENT_CONTROL, "control")

    first, second = receive(agent_socket, 2)
    assert first == (
        "feed.recommendation.fallback:1|c|#reason:cold_start,variant:none,env:test,service:feedrec"
    )
    assert second == (
        "feed.recommendation.fallback:1|c|#reason:experiment_control,variant:control,"
        "env:test,service:feedrec"
    )


def test_timings_gauges_and_counters_arrive_as_histogram_gauge_and_count(
    metrics: DogStatsdMetrics, agent_socket: socket.socket
) -> None:
    metrics.timing("feed.model.latency_ms", 12.5, {"outcome": "ok"})
    metrics.gauge("feed.model.circuit_open", 1)
    metrics.increment("feed.kafka.publish_failures", 3, {"topic": "feed.interactions.v1"})

    assert receive(agent_socket, 3) == [
        "feed.model.latency_ms:12.5|h|#outcome:ok,env:test,service:feedrec",
        "feed.model.circuit_open:1|g|#env:test,service:feedrec",
        "feed.kafka.publish_failures:3|c|#topic:feed.interactions.v1,env:test,service:feedrec",
    ]


def test_many_samples_of_a_histogram_share_datagrams_and_single_metrics_stay_prompt(
    metrics: DogStatsdMetrics, agent_socket: socket.socket
) -> None:
    samples = [float(n) for n in range(200)]

    metrics.timing_samples("feed.kafka.publish_latency_ms", samples)
    metrics.gauge("feed.outbox.backlog", 7)  # after the batch: one datagram of its own again

    lines: list[str] = []
    datagrams = 0
    while len(lines) < len(samples) + 1:
        data, _ = agent_socket.recvfrom(65535)
        datagrams += 1
        assert len(data) <= 1432  # fits one UDP packet on a 1500-byte MTU
        lines.extend(line for line in data.decode().split("\n") if line)
    assert lines[:-1] == [
        f"feed.kafka.publish_latency_ms:{sample}|h|#env:test,service:feedrec" for sample in samples
    ]
    assert lines[-1] == "feed.outbox.backlog:7|g|#env:test,service:feedrec"
    assert datagrams < len(samples) / 10


def test_metrics_to_an_agent_that_is_gone_are_dropped_without_an_error(
    agent_socket: socket.socket,
) -> None:
    port = agent_socket.getsockname()[1]
    agent_socket.close()  # nothing listens there now: sends meet ECONNREFUSED
    metrics = DogStatsdMetrics(LOOPBACK, port)
    try:
        for _ in range(5):
            metrics.fallback(FallbackReason.ERROR, "treatment")
            metrics.timing("feed.request.latency_ms", 3.0)
            metrics.gauge("feed.model.circuit_open", 0)
            metrics.increment("feed.kafka.publish_failures")
    finally:
        metrics.close()


def _tracks(requests: Sequence[Any], key: str, event: str) -> dict[str, Any]:
    """The batched Segment calls of `requests`, by their property `key`; each a `track` of
    `event` by viewer u-42 at the test's instant."""
    items = {
        item["properties"][key]: item for request in requests for item in request.json()["batch"]
    }
    for item in items.values():
        assert item["type"] == "track"
        assert item["event"] == event
        assert item["userId"] == "u-42"
        assert item["timestamp"] == "2024-05-01T12:00:00.123+00:00"
    return items
