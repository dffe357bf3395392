"""The test harness itself: the real PostgreSQL and Kafka-protocol servers work."""

from __future__ import annotations

import socket
import time
from collections import defaultdict

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from tests.servers import (
    LOOPBACK,
    KafkaBroker,
    PostgresServer,
    RecordProperty,
    consume_all,
    create_topic,
    free_port,
    make_producer,
    port_accepts,
    unique_topic,
)

pytestmark = pytest.mark.integration


# ------------------------------------------------------------------ PostgreSQL


def test_fresh_database_roundtrip(
    fresh_postgres_url: str, postgres_server: PostgresServer, record_property: RecordProperty
) -> None:
    record_property("postgres", postgres_server.kind)
    assert fresh_postgres_url.startswith("postgresql+psycopg2://")
    engine = sa.create_engine(fresh_postgres_url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE videos (id text PRIMARY KEY, score float8)"))
            conn.execute(
                sa.text("INSERT INTO videos VALUES (:id, :score)"),
                [{"id": "v1", "score": 0.5}, {"id": "v2", "score": 0.25}],
            )
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, score FROM videos ORDER BY id")).all()
            version = conn.execute(sa.text("SHOW server_version")).scalar_one()
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [("v1", 0.5), ("v2", 0.25)]
    assert str(version).startswith(postgres_server.version)


def test_fresh_databases_are_isolated(postgres_server: PostgresServer) -> None:
    with (
        postgres_server.fresh_database() as url_a,
        postgres_server.fresh_database() as url_b,
    ):
        assert url_a != url_b
        engine_a = sa.create_engine(url_a, poolclass=NullPool)
        engine_b = sa.create_engine(url_b, poolclass=NullPool)
        try:
            with engine_a.begin() as conn:
                conn.execute(sa.text("CREATE TABLE only_in_a (x int)"))
                conn.execute(sa.text("INSERT INTO only_in_a VALUES (1)"))
            with engine_b.connect() as conn:
                assert sa.inspect(conn).get_table_names() == []
            # a connection left open is terminated when the database is dropped
            lingering = engine_a.connect()
            lingering.execute(sa.text("SELECT 1"))
        finally:
            engine_b.dispose()
    try:
        # the lingering connection was terminated, and the database is gone
        with pytest.raises(sa.exc.DBAPIError):
            lingering.execute(sa.text("SELECT 1"))
        with pytest.raises(sa.exc.OperationalError, match="does not exist"):
            engine_a.connect().close()
    finally:
        lingering.invalidate()
        lingering.close()
        engine_a.dispose()


def test_postgres_listens_on_loopback_tcp(postgres_server: PostgresServer) -> None:
    if postgres_server.kind == "env":
        pytest.skip("an external server is wherever TEST_POSTGRES_URL says")
    assert postgres_server.host in (LOOPBACK, "localhost")
    assert port_accepts(postgres_server.host, postgres_server.port)


# ----------------------------------------------------------------------- Kafka


def _produce(broker: KafkaBroker, topic: str, messages: list[tuple[str, str]]) -> None:
    producer = make_producer(broker.bootstrap)
    try:
        futures = [
            producer.send(topic, key=key.encode(), value=value.encode()) for key, value in messages
        ]
        for future in futures:
            future.get(timeout=15)
    finally:
        producer.close(timeout=10)


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind((LOOPBACK, port))


def test_kafka_keyed_roundtrip(kafka_broker: KafkaBroker, record_property: RecordProperty) -> None:
    record_property("kafka", kafka_broker.kind)
    assert kafka_broker.bootstrap.startswith(f"{LOOPBACK}:") or kafka_broker.kind == "env"
    topic = create_topic(kafka_broker.bootstrap, unique_topic("roundtrip"), partitions=3)
    sent = [(f"user-{i % 4}", f"event-{i}") for i in range(40)]
    _produce(kafka_broker, topic, sent)

    records = consume_all(kafka_broker.bootstrap, topic, expected=len(sent))
    assert len(records) == len(sent)
    assert sorted((r.key, r.value) for r in records) == sorted(
        (k.encode(), v.encode()) for k, v in sent
    )
    # one key lives on one partition, in the order it was produced
    partitions_of_key: dict[bytes | None, set[int]] = defaultdict(set)
    per_key: dict[bytes | None, list[bytes | None]] = defaultdict(list)
    for record in records:  # sorted by (partition, offset)
        partitions_of_key[record.key].add(record.partition)
        per_key[record.key].append(record.value)
    assert all(len(p) == 1 for p in partitions_of_key.values())
    for key in {k for k, _ in sent}:
        assert per_key[key.encode()] == [v.encode() for k, v in sent if k == key]
    assert {r.partition for r in records} <= {0, 1, 2}


@pytest.mark.slow
def test_kafka_restart_keeps_data(
    kafka_broker: KafkaBroker, record_property: RecordProperty
) -> None:
    record_property("kafka", kafka_broker.kind)
    topic = create_topic(kafka_broker.bootstrap, unique_topic("restart"), partitions=3)
    before = [(f"user-{i % 3}", f"before-{i}") for i in range(9)]
    _produce(kafka_broker, topic, before)

    # a producer that lives through the outage, like the service's
    survivor = make_producer(kafka_broker.bootstrap, client_id="survivor", retries=2**31 - 1)
    try:
        survivor.send(topic, key=b"user-0", value=b"pre-outage").get(timeout=15)

        kafka_broker.stop()
        try:
            assert not port_accepts(kafka_broker.host, kafka_broker.port)
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((kafka_broker.host, kafka_broker.port), timeout=1).close()
            during = survivor.send(topic, key=b"user-0", value=b"during-outage")
            time.sleep(0.5)
            assert not during.is_done
        finally:
            kafka_broker.start()
        assert port_accepts(kafka_broker.host, kafka_broker.port)

        during.get(timeout=30)  # sent while the broker was down, delivered after it returned
        survivor.send(topic, key=b"user-0", value=b"post-outage").get(timeout=15)
    finally:
        survivor.close(timeout=10)

    after = [(f"user-{i % 3}", f"after-{i}") for i in range(6)]
    _produce(kafka_broker, topic, after)

    expected = len(before) + 3 + len(after)
    records = consume_all(kafka_broker.bootstrap, topic, expected=expected, timeout=30)
    values = [r.value for r in records]
    assert len(records) == expected
    for _, value in before + after:
        assert value.encode() in values
    user0 = [r.value for r in records if r.key == b"user-0"]
    assert user0.index(b"pre-outage") < user0.index(b"during-outage") < user0.index(b"post-outage")
    assert values.count(b"during-outage") == 1  # idempotence: no duplicate after the retry


def test_kafka_survives_a_crash(kafka_broker: KafkaBroker) -> None:
    """Records acknowledged before the broker is killed (SIGKILL) are there after it."""
    topic = create_topic(kafka_broker.bootstrap, unique_topic("crash"), partitions=3)
    sent = [(f"user-{i % 3}", f"acked-{i}") for i in range(6)]
    _produce(kafka_broker, topic, sent)
    kafka_broker.kill()
    assert not port_accepts(kafka_broker.host, kafka_broker.port)
    kafka_broker.start()
    records = consume_all(kafka_broker.bootstrap, topic, expected=len(sent))
    assert sorted(r.value or b"" for r in records) == sorted(v.encode() for _, v in sent)
