"""Faults on the product's real stack, under load: what each costs, against its goal.

    python bench/chaos.py            (or `make bench-chaos`; about 6 minutes)
    python bench/chaos.py --quick    (shorter outages, about 3 minutes)

The stack (`tests/stack.py`): PostgreSQL, a Kafka-protocol broker, the `relay`, the LightFM model
service and gunicorn with 2 gevent workers, all on loopback. All along, paced ingest (batches of
10 events, `--rate` events/s, a service token) and paced feed requests (`--feed-rate` first pages
of known viewers). Every eventId answered 202 must reach the topic (`lost` counts those that did
not); `server_errors` counts 5xx answers other than the documented 503 (which says
`Retry-After`), and `unavailable` counts those 503s.

Scenarios, in order:
1. model killed (SIGKILL, restarted after the outage): `model_recovery_s`, from the model service
   answering its health check again to the first feed page with `fallbackReason: null`.
2. model frozen (SIGSTOP, then SIGCONT): `hang_p999_ms`, p99.9 of feed request latency while
   frozen (goal: under 170 ms).
3. broker down (`--broker-down` s): `drain_ratio`, the relay's publish rate while it drains the
   backlog after the broker is back (backlog at return plus arrivals, over the time to drain)
   divided by the arrival rate (goal: 5 or more); `drain_net_ratio` is the backlog's own shrink.
4. relay killed (a second relay standing by, SIGKILL the holder): `relay_takeover_s`, from the
   kill to the first message the successor marks sent.
5. database crashed (SIGKILL of the postmaster and every backend, restarted on its data
   directory, which recovers from its WAL): `database_recovery_s`, from PostgreSQL accepting
   connections again to the first 202 of ingest.

Last line: one JSON object (keys are only ever added).
"""

from __future__ import annotations

import argparse
import functools
import http.client
import json
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.lightfm.client import ModelServiceHealth
from tests.servers import (
    PostgresServer,
    consume_all,
    create_topic,
    port_accepts,
    start_kafka,
    start_postgres,
    unique_topic,
)
from tests.stack import Stack, StackPlan

HANG_BOUND_MS = 170.0
DRAIN_GOAL = 5.0


@dataclass
class Sample:
    at: float  # time.monotonic() at the answer
    status: int
    latency_ms: float
    fallback: str | None = None


@dataclass
class Load:
    """Paced ingest and feed requests on persistent connections; keeps every answer."""

    stack: Stack
    rate: float
    feed_rate: float
    accepted: list[str] = field(default_factory=list)
    ingest: list[Sample] = field(default_factory=list)
    feed: list[Sample] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        per_batch = 10
        for i in range(2):  # two senders: one sequential client tops out near the rate
            self._run(
                functools.partial(self._post, sender=i, size=per_batch), self.rate / per_batch / 2
            )
        for i in range(3):
            self._run(functools.partial(self._get, reader=i), self.feed_rate / 3)

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)

    def _run(self, call: Callable[[int], None], per_s: float) -> None:
        def loop() -> None:
            started, n = time.monotonic(), 0
            while not self.stop.is_set():
                if (wait := started + n / per_s - time.monotonic()) > 0:
                    time.sleep(wait)
                call(n)
                n += 1

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _connection(self, key: str) -> http.client.HTTPConnection:
        local = _LOCAL.__dict__
        if key not in local:
            local[key] = http.client.HTTPConnection("127.0.0.1", self.stack.web_port, timeout=10)
        connection: http.client.HTTPConnection = local[key]
        return connection

    def _call(self, method: str, path: str, token: str, body: str | None) -> Sample:
        connection = self._connection("c")
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        started = time.monotonic()
        try:
            connection.request(method, path, body, headers)
            response = connection.getresponse()
            raw = response.read()
            status = response.status
            payload = json.loads(raw) if raw else {}
        except (OSError, http.client.HTTPException, ValueError):
            connection.close()
            _LOCAL.__dict__.pop("c", None)
            status, payload = 0, {}
        now = time.monotonic()
        sample = Sample(now, status, (now - started) * 1000)
        sample.fallback = payload.get("fallbackReason") if status == 200 else None
        _LOCAL.payload = payload
        return sample

    def _post(self, n: int, sender: int, size: int) -> None:
        videos = self.stack.history.video_ids.tolist()
        token = _token(self.stack, "service", self.stack.service_token)
        events = [
            {
                "eventId": str(uuid.uuid4()),
                "userId": f"chaos-{sender}-{(n * size + k) % 211}",
                "videoId": videos[(n * size + k) * 7919 % len(videos)],
                "interactionType": "view",
                "watchTime": 12_000,
                "timestamp": datetime.now(UTC).isoformat(),
            }
            for k in range(size)
        ]
        sample = self._call("POST", "/feed/interactions", token, json.dumps({"events": events}))
        self.ingest.append(sample)
        if sample.status == 202:
            self.accepted.extend(_LOCAL.payload["eventIds"])

    def _get(self, n: int, reader: int) -> None:
        users = self.stack.known_users
        user = users[(n * 3 + reader) * 31 % len(users)]
        token = _token(self.stack, user, lambda: self.stack.token(user))
        path = f"/feed/recommendations?userId={user}&limit=20"
        self.feed.append(self._call("GET", path, token, None))


_LOCAL = threading.local()
_TOKENS: dict[str, str] = {}


def _token(stack: Stack, key: str, issue: Callable[[], str]) -> str:
    if key not in _TOKENS:
        _TOKENS[key] = issue()
    return _TOKENS[key]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] if ordered else 0.0


def wait_until(check: Callable[[], bool], timeout: float, step: float = 0.05) -> float:
    """Seconds until `check()` held (raises TimeoutError past `timeout`)."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"not within {timeout:.0f} s")
        time.sleep(step)
    return time.monotonic() - started


def backlog(stack: Stack) -> int:
    return int(stack.query("SELECT count(*) FROM outbox WHERE sent_at IS NULL")[0][0])


def report(name: str, goal: str, measured: str, ok: bool) -> None:
    print(f"[{'ok' if ok else 'MISSED'}] {name}: goal {goal}; measured {measured}", flush=True)


def model_killed(stack: Stack, load: Load, outage_s: float) -> float:
    stack.kill("lightfm")
    time.sleep(outage_s)
    stack.restart("lightfm")
    health = ModelServiceHealth(f"127.0.0.1:{stack.model_port}")
    try:
        wait_until(lambda: health.check().ok, 60, step=0.01)
    finally:
        health.close()
    healthy_at = time.monotonic()
    wait_until(
        lambda: any(
            s.at > healthy_at and s.status == 200 and s.fallback is None for s in load.feed
        ),
        60,
        step=0.01,
    )
    first = min(s.at for s in load.feed if s.at > healthy_at and s.status == 200 and not s.fallback)
    recovery = first - healthy_at
    report("model killed", "model_recovery_s <= 1", f"{recovery:.2f} s", recovery <= 1.0)
    return recovery


def model_frozen(stack: Stack, load: Load, outage_s: float) -> float:
    started = time.monotonic()
    stack.signal("lightfm", signal.SIGSTOP)
    try:
        time.sleep(outage_s)
    finally:
        stack.signal("lightfm", signal.SIGCONT)
    ended = time.monotonic()
    # A request belongs to the freeze when it was in flight during it.
    latencies = [
        s.latency_ms for s in load.feed if s.at >= started and s.at - s.latency_ms / 1000 <= ended
    ]
    p999, worst = percentile(latencies, 99.9), max(latencies, default=0.0)
    report(
        "model frozen",
        f"hang_p999_ms < {HANG_BOUND_MS:.0f}",
        f"{p999:.1f} ms p99.9 (p99 {percentile(latencies, 99):.1f}, max {worst:.1f}) over"
        f" {len(latencies)} feed requests",
        p999 < HANG_BOUND_MS,
    )
    return p999


def broker_down(
    stack: Stack, kafka: Any, load: Load, outage_s: float, rate: float
) -> dict[str, float]:
    kafka.stop()
    time.sleep(outage_s)
    kafka.start()
    at_return = backlog(stack)
    steady = max(rate, 100.0)  # a second of arrivals: what a relay that keeps up leaves pending
    drain_s = wait_until(lambda: backlog(stack) <= steady, 600, step=0.1)
    gross = (at_return + rate * drain_s) / drain_s
    figures = {
        "drain_backlog": float(at_return),
        "drain_s": drain_s,
        "drain_ratio": gross / rate,
        "drain_net_ratio": at_return / drain_s / rate,
    }
    report(
        "broker down",
        f"drain_ratio >= {DRAIN_GOAL:.0f}",
        f"{figures['drain_ratio']:.1f} (a backlog of {at_return} drained in {drain_s:.1f} s:"
        f" {gross:.0f} events/s published against {rate:.0f}/s arriving; net"
        f" {figures['drain_net_ratio']:.1f}x)",
        figures["drain_ratio"] >= DRAIN_GOAL,
    )
    return figures


def relay_killed(stack: Stack, load: Load) -> float:
    stack.start_relay("relay2")
    time.sleep(3)  # it starts, finds the lease taken and stands by
    holder = "relay" if "holding the relay lease" in stack.log_tail("relay", 100_000) else "relay2"
    stack.kill(holder)
    killed = datetime.now(UTC)
    killed_at = time.monotonic()
    wait_until(
        lambda: stack.query("SELECT count(*) FROM outbox WHERE sent_at > :k", k=killed)[0][0] > 0,
        60,
        step=0.02,
    )
    takeover = time.monotonic() - killed_at
    report(
        "relay killed",
        "relay_takeover_s <= 2",
        f"{takeover:.2f} s ({holder} killed)",
        takeover <= 2,
    )
    return takeover


def database_crashed(postgres: PostgresServer, load: Load, outage_s: float) -> float:
    postgres.crash()
    time.sleep(outage_s)
    postgres.start_again()
    wait_until(lambda: port_accepts(postgres.host, postgres.port), 60)
    up_at = time.monotonic()
    wait_until(lambda: any(s.at > up_at and s.status == 202 for s in load.ingest), 120, step=0.02)
    recovery = min(s.at for s in load.ingest if s.at > up_at and s.status == 202) - up_at
    report(
        "database crashed",
        "database_recovery_s <= 5, nothing accepted lost",
        f"{recovery:.2f} s to the first 202 after PostgreSQL accepted connections again",
        recovery <= 5,
    )
    return recovery


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter outages")
    parser.add_argument("--rate", type=float, default=300.0, help="ingested events/s")
    parser.add_argument("--feed-rate", type=float, default=50.0, help="feed requests/s")
    args = parser.parse_args()
    outage, frozen, broker = (5.0, 10.0, 15.0) if args.quick else (10.0, 30.0, 60.0)
    postgres, kafka = start_postgres(), start_kafka()
    topic = create_topic(kafka.bootstrap, unique_topic("bench-chaos"), partitions=3)
    figures: dict[str, float] = {}
    with (
        tempfile.TemporaryDirectory(prefix="bench-chaos-") as workdir,
        postgres.fresh_database("bench_chaos") as url,
    ):
        stack = Stack(Path(workdir), url, kafka.bootstrap, topic, StackPlan())
        stack.start()
        load = Load(stack, args.rate, args.feed_rate)
        load.start()
        try:
            time.sleep(3)
            figures["model_recovery_s"] = model_killed(stack, load, outage)
            time.sleep(3)
            figures["hang_p999_ms"] = model_frozen(stack, load, frozen)
            time.sleep(3)
            figures |= broker_down(stack, kafka, load, broker, args.rate)
            figures["relay_takeover_s"] = relay_killed(stack, load)
            figures["database_recovery_s"] = database_crashed(postgres, load, outage)
            time.sleep(3)
        finally:
            load.close()
        accepted = set(load.accepted)
        wait_until(lambda: backlog(stack) == 0, 120, step=0.2)
        records = consume_all(kafka.bootstrap, topic, timeout=120, idle=2.0)
        on_topic = {json.loads(r.value or b"{}").get("eventId") for r in records}
        answers = [*load.ingest, *load.feed]
        statuses = [s.status for s in answers]
        figures["lost"] = float(len(accepted - on_topic))
        figures["accepted"] = float(len(accepted))
        figures["duplicates"] = float(len(records) - len(on_topic))
        figures["server_errors"] = float(sum(s >= 500 and s != 503 for s in statuses))
        figures["unavailable"] = float(statuses.count(503))
        figures["no_answer"] = float(statuses.count(0))
        report(
            "every scenario",
            "lost == 0, server_errors == 0",
            f"{len(accepted)} events accepted, {int(figures['lost'])} lost,"
            f" {int(figures['duplicates'])} duplicates on the topic; {len(answers)} requests,"
            f" {int(figures['server_errors'])} 5xx, {int(figures['unavailable'])} documented 503,"
            f" {int(figures['no_answer'])} unanswered",
            figures["lost"] == 0 and figures["server_errors"] == 0,
        )
        stack.close()
    postgres.close()
    kafka.close()
    print(json.dumps({k: round(v, 3) for k, v in figures.items()}))


if __name__ == "__main__":
    main()
