"""PostgreSQL over verified TLS, through the service's own engine factory and settings: a real
PostgreSQL with `ssl=on` (the operating system's; see postgres_tls_support) presenting a
certificate for `db.internal` that a test CA signed.

`hostaddr=127.0.0.1` in the URL reaches it while libpq checks the certificate against the
URL's host name, as it would for a managed database's DNS name.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from adapters.sql.engine import make_engine
from app.settings import Settings
from tests.integration.postgres_tls_support import TlsPostgres, system_postgres_bin, tls_postgres
from tests.integration.tls_support import TestCa

pytestmark = pytest.mark.integration

SERVER_NAME = "db.internal"


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCa:
    return TestCa(tmp_path_factory.mktemp("pg-certs"))


def _bin_dir() -> Path:
    bin_dir = system_postgres_bin()
    if bin_dir is None:
        pytest.skip(
            "needs a PostgreSQL built with OpenSSL under /usr/lib/postgresql "
            "(apt-get install postgresql); the pip-packaged servers have no TLS"
        )
    return bin_dir


@pytest.fixture(scope="module")
def server(ca: TestCa) -> Iterator[TlsPostgres]:
    pem = ca.issue(SERVER_NAME, server=True, loopback=False)
    with tls_postgres(_bin_dir(), pem.cert_file, pem.key_file) as running:
        yield running


def _settings(server: TlsPostgres, host: str, ca_file: str, **extra: str) -> Settings:
    address = "?hostaddr=127.0.0.1" if host == SERVER_NAME else ""
    return Settings.from_env(
        {
            "DATABASE_URL": f"postgresql+psycopg2://postgres@{host}:{server.port}/postgres{address}",
            "DATABASE_SSLMODE": "verify-full",
            "DATABASE_SSLROOTCERT": ca_file,
            **extra,
        }
    )


def _connect_and_ask_for_tls(settings: Settings) -> tuple[bool, str]:
    engine = make_engine(settings.resolved_database_url)
    try:
        with engine.connect() as connection:
            row = connection.execute(
                text("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            ).one()
            return bool(row[0]), str(row[1])
    finally:
        engine.dispose()


def test_verify_full_connects_with_the_right_ca_and_host_name(
    server: TlsPostgres, ca: TestCa
) -> None:
    encrypted, version = _connect_and_ask_for_tls(_settings(server, SERVER_NAME, ca.ca_file))

    assert encrypted and version.startswith("TLS")


def test_a_server_certificate_from_another_ca_is_refused(
    server: TlsPostgres, tmp_path: Path
) -> None:
    stranger = TestCa(tmp_path, "another CA")

    with pytest.raises(OperationalError, match="certificate verify failed"):
        _connect_and_ask_for_tls(_settings(server, SERVER_NAME, stranger.ca_file))


def test_a_host_name_the_certificate_does_not_carry_is_refused(
    server: TlsPostgres, ca: TestCa
) -> None:
    with pytest.raises(OperationalError, match="does not match host name"):
        _connect_and_ask_for_tls(_settings(server, "localhost", ca.ca_file))


def test_a_client_certificate_signs_in_where_the_server_demands_one(
    ca: TestCa, tmp_path: Path
) -> None:
    pem = ca.issue(SERVER_NAME, server=True, loopback=False)
    client = ca.issue("postgres", server=False)  # the certificate's CN is the database user
    Path(client.key_file).chmod(0o600)  # libpq refuses a key others can read
    with tls_postgres(_bin_dir(), pem.cert_file, pem.key_file, client_ca=ca.ca_file) as mutual:
        signed_in = _connect_and_ask_for_tls(
            _settings(
                mutual,
                SERVER_NAME,
                ca.ca_file,
                DATABASE_SSLCERT=client.cert_file,
                DATABASE_SSLKEY=client.key_file,
            )
        )
        with pytest.raises(OperationalError, match="certificate"):
            _connect_and_ask_for_tls(_settings(mutual, SERVER_NAME, ca.ca_file))

    assert signed_in[0]
