"""`feedrec up` checks its ports before it starts anything: a taken one is named, and the
command exits non-zero (instead of a broker panic, a torn-down Procfile and exit 0)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.ports_check import taken_ports
from app.settings import Settings
from tests.servers import free_port

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def listening() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


def test_free_ports_pass(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        web_bind=f"127.0.0.1:{free_port()}",
        lightfm_bind=f"127.0.0.1:{free_port()}",
        embedded_kafka_bind=f"127.0.0.1:{free_port()}",
    )
    assert taken_ports(settings) == []


def test_a_taken_port_is_named_with_its_setting(tmp_path: Path, listening: int) -> None:
    settings = Settings(
        data_dir=tmp_path,
        web_bind=f"127.0.0.1:{free_port()}",
        lightfm_bind=f"127.0.0.1:{free_port()}",
        embedded_kafka_bind=f"127.0.0.1:{listening}",
    )
    [taken] = taken_ports(settings)
    assert (taken.setting, taken.address) == ("EMBEDDED_KAFKA_BIND", f"127.0.0.1:{listening}")
    assert "in use" in taken.describe()


def test_the_embedded_broker_port_is_not_checked_with_a_broker_configured(
    tmp_path: Path, listening: int
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        web_bind=f"127.0.0.1:{free_port()}",
        lightfm_bind=f"127.0.0.1:{free_port()}",
        embedded_kafka_bind=f"127.0.0.1:{listening}",
        kafka_bootstrap_servers="127.0.0.1:1",
    )
    assert taken_ports(settings) == []


def test_feedrec_up_exits_non_zero_naming_the_taken_port(tmp_path: Path, listening: int) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEB_", "LIGHTFM_", "KAFKA_"))}
    env.update(
        PYTHONPATH=str(REPO),
        FEEDREC_DATA_DIR=str(tmp_path),
        WEB_BIND=f"127.0.0.1:{listening}",
        LIGHTFM_BIND=f"127.0.0.1:{free_port()}",
        EMBEDDED_KAFKA_BIND=f"127.0.0.1:{free_port()}",
    )
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "up"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert f"WEB_BIND=127.0.0.1:{listening}" in done.stderr
    assert "in use" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "Procfile.embedded").exists()  # nothing was started
