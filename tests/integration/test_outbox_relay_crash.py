"""The relay process killed (SIGKILL) while it publishes a large backlog, then started again:
every event reaches the topic, and a consumer de-duplicating by `eventId` sees each exactly
once, in order per user. Real PostgreSQL, real broker, `python -m app.relay_main` processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from adapters.sql.migrations import upgrade_database
from app.bootstrap import token_codec
from app.web import create_app, shutdown
from domain.auth import SERVICE_SCOPE
from tests.servers import KafkaBroker, RecordProperty, consume_all
from tests.web_support import an_event, bearer, settings_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
USERS = [f"u{n:02d}" for n in range(20)]
BATCHES = 12  # of 500 events: a backlog of 6,000


def outbox_counts(url: str) -> tuple[int, int]:
    """(sent, unsent) outbox rows."""
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            row = connection.execute(
                sa.text("SELECT count(sent_at), count(*) - count(sent_at) FROM outbox")
            ).one()
    finally:
        engine.dispose()
    return int(row[0]), int(row[1])


@pytest.fixture
def relay_env(
    tmp_path: Path, fresh_postgres_url: str, kafka_broker: KafkaBroker, kafka_topic: str
) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "KAFKA_", "RELAY_", "OUTBOX_", "DD_", "FEEDREC_"))
    }
    env.update(
        FEEDREC_DATA_DIR=str(tmp_path),
        DATABASE_URL=fresh_postgres_url,
        KAFKA_BOOTSTRAP_SERVERS=kafka_broker.bootstrap,
        KAFKA_TOPIC=kafka_topic,
        RELAY_BATCH_SIZE="250",
        RELAY_LEASE_TTL_S="2",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def accepted(tmp_path: Path, fresh_postgres_url: str, kafka_topic: str) -> list[str]:
    """Post the backlog through the API (no relay running yet); the accepted event ids."""
    upgrade_database(fresh_postgres_url)
    settings = settings_for(tmp_path, database_url=fresh_postgres_url, kafka_topic=kafka_topic)
    app = create_app(settings, start_background=False)
    headers = bearer(token_codec(settings).issue("ingest", [SERVICE_SCOPE]))
    event_ids: list[str] = []
    try:
        with app.test_client() as client:
            for batch in range(BATCHES):
                events: list[dict[str, Any]] = [
                    an_event(user, eventId=f"{user}-{batch:02d}-{n:03d}", videoId=f"v{n}")
                    for n in range(500 // len(USERS))
                    for user in USERS
                ]
                response = client.post(
                    "/feed/interactions", json={"events": events}, headers=headers
                )
                assert response.status_code == 202
                event_ids += [event["eventId"] for event in events]
    finally:
        shutdown(app)
    return event_ids


@pytest.fixture
def relays(tmp_path: Path, relay_env: dict[str, str]) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def start_relay(
    env: dict[str, str], log: Path, started: list[subprocess.Popen[bytes]]
) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.relay_main"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    started.append(process)
    return process


def test_a_relay_killed_mid_backlog_and_restarted_delivers_every_event_once_after_dedup(
    tmp_path: Path,
    fresh_postgres_url: str,
    kafka_broker: KafkaBroker,
    kafka_topic: str,
    relay_env: dict[str, str],
    accepted: list[str],
    relays: list[subprocess.Popen[bytes]],
    record_property: RecordProperty,
) -> None:
    log = tmp_path / "relay.log"
    total = len(accepted)
    first = start_relay(relay_env, log, relays)
    deadline = time.monotonic() + 30
    while outbox_counts(fresh_postgres_url)[0] == 0:  # until its first round is marked sent
        assert first.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"the relay sent nothing:\n{log.read_text()}"
        time.sleep(0.005)
    time.sleep(0.04)  # into a later round: reading, publishing or marking it
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    sent_at_kill, unsent_at_kill = outbox_counts(fresh_postgres_url)
    on_topic_at_kill = len(consume_all(kafka_broker.bootstrap, kafka_topic, idle=0.3))
    assert 0 < sent_at_kill < total and unsent_at_kill > 0
    # Records on the topic beyond the rows marked sent: published, acknowledged or not, and
    # never marked because the relay died first. They go out again (duplicates).
    record_property("published_unmarked_at_kill", on_topic_at_kill - sent_at_kill)

    second = start_relay(relay_env, log, relays)
    deadline = time.monotonic() + 40
    while outbox_counts(fresh_postgres_url)[1] > 0:
        assert second.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"the backlog did not drain:\n{log.read_text()}"
        time.sleep(0.05)
    second.send_signal(signal.SIGTERM)
    assert second.wait(15) == 0  # graceful: finishes its round, closes, releases the lease

    records = consume_all(kafka_broker.bootstrap, kafka_topic, idle=1.0, timeout=30)
    seen: dict[str, list[str]] = {}
    delivered: set[str] = set()
    duplicates = 0
    for record in records:  # a consumer de-duplicating by eventId
        value = json.loads(record.value or b"{}")
        if value["eventId"] in delivered:
            duplicates += 1
            continue
        delivered.add(value["eventId"])
        seen.setdefault(value["userId"], []).append(value["eventId"])
    record_property("duplicates_after_kill", duplicates)
    assert delivered == set(accepted)  # nothing lost
    assert sum(len(ids) for ids in seen.values()) == total  # each exactly once after dedup
    for user, ids in seen.items():  # and in the order they were accepted
        assert ids == [event_id for event_id in accepted if event_id.startswith(f"{user}-")]


def sent_count(url: str) -> int:
    return outbox_counts(url)[0]


def test_a_standby_relay_publishes_within_two_seconds_of_the_holders_death(
    tmp_path: Path,
    fresh_postgres_url: str,
    relay_env: dict[str, str],
    accepted: list[str],
    relays: list[subprocess.Popen[bytes]],
    record_property: RecordProperty,
) -> None:
    # A long TTL: on PostgreSQL the session lease must not need it to lapse.
    env = {**relay_env, "RELAY_LEASE_TTL_S": "30", "RELAY_BATCH_SIZE": "50"}
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    first = start_relay(env, first_log, relays)
    deadline = time.monotonic() + 30
    while sent_count(fresh_postgres_url) == 0:
        assert first.poll() is None, first_log.read_text()
        assert time.monotonic() < deadline, f"the relay sent nothing:\n{first_log.read_text()}"
        time.sleep(0.005)
    second = start_relay(env, second_log, relays)
    time.sleep(2.0)  # the standby is up and polling
    assert "holding the relay lease" not in second_log.read_text()  # never two at once
    before = sent_count(fresh_postgres_url)
    assert before < len(accepted)

    first.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    first.wait(10)
    at_death = sent_count(fresh_postgres_url)
    while sent_count(fresh_postgres_url) == at_death:
        assert second.poll() is None, second_log.read_text()
        assert time.monotonic() - killed_at < 10, second_log.read_text()
        time.sleep(0.01)
    takeover_s = time.monotonic() - killed_at
    record_property("relay_takeover_s", round(takeover_s, 3))
    assert takeover_s < 2.0, second_log.read_text()
