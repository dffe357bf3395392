"""Every Kafka client of the product over TLS (KAFKA_SECURITY_PROTOCOL=SSL), built from the
settings by the composition root: a broker whose certificate a test CA signed, reached by the
relay's producer, topic provisioning and the health probe; the wrong CA and a missing client
certificate (mutual TLS) fail with the reason named.

SASL (PLAIN, SCRAM, OAUTHBEARER) is not exercised against a server here: tansu 0.6.0 offers no
PLAIN, and SCRAM users it accepts cannot be provisioned (see docs/security.md).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from adapters.kafka.admin import ensure_topic
from adapters.kafka.health import KafkaHealth
from adapters.kafka.producer import KafkaEventBus
from adapters.kafka.security import KafkaSecurity
from app.composition.common import kafka_security
from app.settings import Settings
from domain.errors import DependencyUnavailable
from domain.outbox import OutboxMessage, PendingMessage
from tests.integration.kafka_tls_support import TlsBroker, tls_broker
from tests.integration.tls_support import Pem, TestCa

pytestmark = pytest.mark.integration

TOPIC = "feed.interactions.tls"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestCa, Pem, Pem]:
    folder = tmp_path_factory.mktemp("kafka-certs")
    ca = TestCa(folder)
    return ca, ca.issue("broker", server=True), ca.issue("relay", server=False)


@pytest.fixture(scope="module")
def broker(
    certificates: tuple[TestCa, Pem, Pem], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TlsBroker]:
    _, server, _ = certificates
    with tls_broker(server, tmp_path_factory.mktemp("tansu-tls")) as running:
        yield running


def _settings(bootstrap: str, cafile: str, **extra: str) -> Settings:
    return Settings.from_env(
        {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "KAFKA_SECURITY_PROTOCOL": "SSL",
            "KAFKA_SSL_CAFILE": cafile,
            **extra,
        }
    )


def _messages(count: int) -> list[PendingMessage]:
    now = datetime.now(UTC)
    return [
        PendingMessage(n + 1, OutboxMessage(TOPIC, f"u{n}", {"n": n}, now), 0) for n in range(count)
    ]


def _read_back(bootstrap: str, security: KafkaSecurity, expected: int) -> list[bytes]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, **security.client_config())
    try:
        partitions = sorted(consumer.partitions_for_topic(TOPIC) or ())
        assigned = [TopicPartition(TOPIC, p) for p in partitions]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        values: list[bytes] = []
        for _ in range(100):
            for records in consumer.poll(timeout_ms=100).values():
                values.extend(record.value for record in records)
            if len(values) >= expected:
                break
        return values
    finally:
        consumer.close()


def test_the_relay_provisions_publishes_and_reads_back_over_tls(
    broker: TlsBroker, certificates: tuple[TestCa, Pem, Pem]
) -> None:
    ca, _, _ = certificates
    security = kafka_security(_settings(broker.bootstrap, ca.ca_file))

    state = ensure_topic(broker.bootstrap, TOPIC, 2, 1, security=security)
    bus = KafkaEventBus(broker.bootstrap, connect_timeout_s=5.0, security=security)
    try:
        outcome = bus.publish(_messages(5), timeout_s=10.0)
    finally:
        bus.close()

    assert state.partitions == 2
    assert sorted(outcome.acknowledged) == [1, 2, 3, 4, 5] and outcome.failed == ()
    values = _read_back(broker.bootstrap, security, expected=5)
    assert sorted(values) == sorted(f'{{"n":{n}}}'.encode() for n in range(5))
    health = KafkaHealth(broker.bootstrap, timeout_s=5.0, security=security).check()
    assert health.ok, health.detail


def test_a_broker_certificate_from_another_ca_is_refused_with_the_reason(
    broker: TlsBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stranger = TestCa(tmp_path, "another CA")
    security = kafka_security(_settings(broker.bootstrap, stranger.ca_file))

    health = KafkaHealth(broker.bootstrap, timeout_s=5.0, security=security).check()
    with pytest.raises(DependencyUnavailable) as provisioning:
        ensure_topic(broker.bootstrap, TOPIC, 2, 1, timeout_s=2.0, security=security)
    bus = KafkaEventBus(broker.bootstrap, connect_timeout_s=1.0, security=security)
    with caplog.at_level(logging.WARNING):
        outcome = bus.publish(_messages(2), timeout_s=2.0)
    bus.close()

    assert not health.ok and "CERTIFICATE_VERIFY_FAILED" in health.detail
    assert provisioning.value.component == "kafka"
    assert outcome.acknowledged == () and sorted(outcome.failed) == [1, 2]
    logged = [record.getMessage() for record in caplog.records]
    assert any("kafka producer cannot connect" in line for line in logged)
    assert any("CERTIFICATE_VERIFY_FAILED" in line for line in logged)  # kafka-python's own


def test_a_host_name_the_certificate_does_not_carry_is_refused_unless_unchecked(
    certificates: tuple[TestCa, Pem, Pem], tmp_path: Path
) -> None:
    ca, _, _ = certificates
    elsewhere = ca.issue("kafka.internal", server=True, loopback=False)
    with tls_broker(elsewhere, tmp_path) as misnamed:
        checked = kafka_security(_settings(misnamed.bootstrap, ca.ca_file))
        unchecked = kafka_security(
            _settings(misnamed.bootstrap, ca.ca_file, KAFKA_SSL_CHECK_HOSTNAME="false")
        )

        refused = KafkaHealth(misnamed.bootstrap, timeout_s=5.0, security=checked).check()
        accepted = KafkaHealth(misnamed.bootstrap, timeout_s=5.0, security=unchecked).check()

    assert not refused.ok and "Hostname mismatch" in refused.detail
    assert accepted.ok, accepted.detail


def test_mutual_tls_admits_the_client_certificate_and_refuses_its_absence(
    certificates: tuple[TestCa, Pem, Pem], tmp_path: Path
) -> None:
    ca, server, client = certificates
    with tls_broker(server, tmp_path, client_ca=ca.ca_file) as mutual:
        with_cert = kafka_security(
            _settings(
                mutual.bootstrap,
                ca.ca_file,
                KAFKA_SSL_CERTFILE=client.cert_file,
                KAFKA_SSL_KEYFILE=client.key_file,
            )
        )
        without = kafka_security(_settings(mutual.bootstrap, ca.ca_file))

        state = ensure_topic(mutual.bootstrap, TOPIC, 1, 1, security=with_cert)
        refused = KafkaHealth(mutual.bootstrap, timeout_s=5.0, security=without).check()

    assert state.partitions == 1
    assert not refused.ok
    assert any("CERTIFICATE" in error.upper() for error in mutual.proxy.handshake_errors)


def test_the_tls_context_verifies_by_default() -> None:
    context = KafkaSecurity(protocol="SSL").ssl_context()

    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
