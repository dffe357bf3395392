"""Interactions posted through the API reach `feed.interactions.v1` through the outbox relay:
real PostgreSQL, real broker, the relay's own `run()` in a thread, DogStatsD on a local UDP
socket."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from sqlalchemy.pool import NullPool

from adapters.sql.migrations import upgrade_database
from app.bootstrap import token_codec
from app.relay_main import run
from app.settings import Settings
from app.web import create_app, shutdown
from domain.auth import SERVICE_SCOPE
from tests.servers import ConsumedRecord, KafkaBroker, consume_all
from tests.web_support import an_event, bearer, settings_for

pytestmark = pytest.mark.integration

SCHEMA = json.loads(
    (
        Path(__file__).resolve().parents[2] / "contracts" / "feed.interactions.v1.schema.json"
    ).read_text()
)
VALIDATOR = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
USERS = ("u1", "u2", "u3", "u4")


@dataclass
class StatsdReceiver:
    """A UDP socket on 127.0.0.1 standing in for the Datadog agent; keeps every datagram."""

    sock: socket.socket = field(
        default_factory=lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    )
    lines: list[str] = field(default_factory=list)
    _thread: threading.Thread | None = None

    def start(self) -> int:
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()
        port: int = self.sock.getsockname()[1]
        return port

    def _receive(self) -> None:
        while True:
            try:
                data = self.sock.recv(65_535)
            except TimeoutError:
                continue
            except OSError:
                return
            self.lines.extend(data.decode().splitlines())

    def stop(self) -> None:
        self.sock.close()
        if self._thread is not None:
            self._thread.join(2)

    def values(self, metric: str, kind: str) -> list[float]:
        return [
            float(line.split(":", 1)[1].split("|")[0])
            for line in list(self.lines)
            if line.startswith(f"{metric}:") and line.split("|")[1] == kind
        ]


@dataclass
class Stack:
    settings: Settings
    client: FlaskClient
    token: str
    statsd: StatsdReceiver

    def post(self, events: list[dict[str, Any]]) -> int:
        body: Any = events[0] if len(events) == 1 else {"events": events}
        response = self.client.post("/feed/interactions", json=body, headers=bearer(self.token))
        return response.status_code

    def backlog(self) -> int:
        engine = sa.create_engine(self.settings.database_url, poolclass=NullPool)
        try:
            with engine.connect() as connection:
                query = sa.text("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
                return int(connection.execute(query).scalar_one())
        finally:
            engine.dispose()


class RelayThread:
    """The relay process's `run()` in a thread of the test, stopped like SIGTERM would."""

    def __init__(self, settings: Settings) -> None:
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=run, args=(settings, self.stop_event), daemon=True)

    def __enter__(self) -> RelayThread:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.thread.join(15)
        assert not self.thread.is_alive(), "the relay did not stop"


@pytest.fixture
def stack(
    tmp_path: Path, fresh_postgres_url: str, kafka_broker: KafkaBroker, kafka_topic: str
) -> Iterator[Stack]:
    upgrade_database(fresh_postgres_url)
    statsd = StatsdReceiver()
    settings = settings_for(
        tmp_path,
        database_url=fresh_postgres_url,
        kafka_bootstrap_servers=kafka_broker.bootstrap,
        kafka_topic=kafka_topic,
        dd_agent_host="127.0.0.1",
        dd_dogstatsd_port=statsd.start(),
        relay_publish_timeout_s=2.0,
    )
    app = create_app(settings, start_background=False)
    token = token_codec(settings).issue("ingest", [SERVICE_SCOPE])
    try:
        with app.test_client() as client:
            yield Stack(settings, client, token, statsd)
    finally:
        shutdown(app)
        statsd.stop()


def events_round(number: int) -> list[dict[str, Any]]:
    """One event per user; event ids sort in the order they are posted."""
    return [an_event(user, eventId=f"{user}-{number:04d}", videoId=f"v{number}") for user in USERS]


def first_copies_by_user(records: list[ConsumedRecord]) -> dict[str, list[str]]:
    """What a consumer that keeps the first copy of each eventId sees, per key."""
    seen: set[str] = set()
    by_user: dict[str, list[str]] = {}
    for record in records:  # (partition, offset) order: a key lives on one partition
        value = json.loads(record.value or b"{}")
        if value["eventId"] not in seen:
            seen.add(value["eventId"])
            by_user.setdefault(value["userId"], []).append(value["eventId"])
    return by_user


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def test_events_posted_through_the_api_arrive_keyed_valid_and_in_order_per_user(
    stack: Stack, kafka_broker: KafkaBroker, kafka_topic: str
) -> None:
    with RelayThread(stack.settings):
        statuses = [stack.post(events_round(n)) for n in range(20)]
        statuses += [stack.post([an_event("u1", eventId=f"u1-{n:04d}")]) for n in range(20, 30)]
        records = consume_all(kafka_broker.bootstrap, kafka_topic, expected=90, timeout=20)
        wait_until(lambda: stack.backlog() == 0, 10, "the outbox to drain")

    assert set(statuses) == {202}
    for record in records:
        value = json.loads((record.value or b"").decode("utf-8"))
        assert list(VALIDATOR.iter_errors(value)) == []
        assert (record.key or b"").decode("utf-8") == value["userId"]
        assert dict(record.headers)["content-type"] == b"application/json"
        assert dict(record.headers)["schema-version"] == b"feed.interactions.v1"
    by_user = first_copies_by_user(records)
    assert {user: len(ids) for user, ids in by_user.items()} == {
        "u1": 30,
        "u2": 20,
        "u3": 20,
        "u4": 20,
    }
    for event_ids in by_user.values():
        assert event_ids == sorted(event_ids)
    latencies = stack.statsd.values("feed.kafka.publish_latency_ms", "h")
    assert len(latencies) == 90 and all(0 < ms < 5_000 for ms in latencies)
    assert stack.statsd.values("feed.outbox.backlog", "g")


def test_with_the_broker_stopped_the_api_answers_202_and_every_event_arrives_after(
    stack: Stack, kafka_broker: KafkaBroker, kafka_topic: str
) -> None:
    relay = RelayThread(replace(stack.settings, relay_publish_timeout_s=1.0))
    with relay:
        assert stack.post(events_round(0)) == 202
        wait_until(lambda: stack.backlog() == 0, 10, "the first events to go out")
        kafka_broker.stop()
        try:
            for n in range(1, 16):
                started = time.monotonic()
                assert stack.post(events_round(n)) == 202
                assert time.monotonic() - started < 1.0
            time.sleep(2.0)  # the relay fails and backs off meanwhile
            assert stack.backlog() == 60
            assert relay.thread.is_alive()
        finally:
            kafka_broker.start()
        wait_until(lambda: stack.backlog() == 0, 30, "the relay to catch up")

    records = consume_all(kafka_broker.bootstrap, kafka_topic)
    by_user = first_copies_by_user(records)
    expected = {user: [f"{user}-{n:04d}" for n in range(16)] for user in USERS}
    assert by_user == expected  # none lost, per-user order kept
    assert stack.statsd.values("feed.kafka.publish_failures", "c")


def test_without_a_broker_configured_the_relay_keeps_running_and_reports_the_backlog(
    stack: Stack,
) -> None:
    assert stack.post(events_round(0)) == 202
    with RelayThread(replace(stack.settings, kafka_bootstrap_servers="")) as relay:
        wait_until(lambda: bool(stack.statsd.values("feed.outbox.backlog", "g")), 5, "a gauge")
        assert relay.thread.is_alive()
    assert stack.statsd.values("feed.outbox.backlog", "g") == [4.0]
    assert stack.backlog() == 4
