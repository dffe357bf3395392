"""How the nightly retrain reaches the outside, end to end: `feedrec retrain --now` (a real
subprocess) with its progress bars, DogStatsD datagrams to a UDP socket standing in for the
agent, and the Snowflake run log on fakesnow's server mode (HTTP, 127.0.0.1, a free port)
being down during a run and back afterwards."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.snowflake_run_log import SnowflakeRunLog
from app.composition.worker import SPOOL_FILE, build_worker
from app.demo_data import SyntheticInteractions
from domain.retrain import RunStatus, Stage
from tests.integration.retrain_support import (
    ModelServer,
    environment,
    logged,
    retrain_now,
    running_model_server,
    seed,
    settings_for,
    synthetic_history,
)
from tests.integration.snowflake_support import FAKESNOW_WARNING, fakesnow_server
from tests.servers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def model_server(tmp_path: Path) -> Iterator[ModelServer]:
    with running_model_server(tmp_path / "models") as server:
        yield server


@pytest.fixture
def history() -> SyntheticInteractions:
    return synthetic_history()


def test_retrain_now_shows_a_bar_per_stage_and_prints_the_run(
    tmp_path: Path, model_server: ModelServer, history: SyntheticInteractions
) -> None:
    settings = settings_for(tmp_path, model_server.target)
    seed(settings, history)

    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "retrain", "--now"],
        cwd=ROOT,
        env={**os.environ, **environment(settings)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed["status"] == "succeeded"
    assert printed["rows_exported"] == len(history)
    bars = [line for line in done.stderr.replace("\r", "\n").splitlines() if "ok" in line]
    for stage in Stage:
        assert any(line.startswith(stage.value) for line in bars), stage
    assert model_server.models.current is not None
    assert model_server.models.current.version == printed["model_version"]


def test_a_run_reports_duration_status_rows_and_quality_over_dogstatsd(
    tmp_path: Path,
    model_server: ModelServer,
    history: SyntheticInteractions,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("DD_ENV", "DD_SERVICE", "DD_VERSION", "DD_ENTITY_ID", "DATADOG_TAGS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DD_ORIGIN_DETECTION_ENABLED", "false")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as agent:
        agent.bind(("127.0.0.1", 0))
        agent.settimeout(2.0)
        settings = settings_for(
            tmp_path,
            model_server.target,
            dd_agent_host="127.0.0.1",
            dd_dogstatsd_port=agent.getsockname()[1],
        )
        seed(settings, history)

        run = retrain_now(settings)

        lines: list[str] = []
        with contextlib.suppress(TimeoutError):
            while not any(line.startswith("retrain.model.auc") for line in lines[-6:]):
                lines.extend(agent.recvfrom(65535)[0].decode().splitlines())

    assert run.status is RunStatus.SUCCEEDED
    assert "retrain.runs:1|c|#status:succeeded,stage:none" in lines
    assert f"retrain.rows_exported:{len(history)}|g" in lines
    assert f"retrain.rows_trained:{run.rows_trained}|g" in lines
    assert any(
        line.startswith("retrain.duration_ms:") and line.endswith("|h|#status:succeeded")
        for line in lines
    )
    assert run.candidate_metrics is not None
    expected = (
        f"retrain.model.precision_at_10:{run.candidate_metrics.precision_at_10}|g|#model:candidate"
    )
    assert expected in lines


@pytest.mark.filterwarnings(FAKESNOW_WARNING)
def test_with_snowflake_down_the_run_completes_and_its_row_arrives_when_it_is_back(
    tmp_path: Path, model_server: ModelServer, history: SyntheticInteractions
) -> None:
    port = free_port()
    settings = settings_for(
        tmp_path,
        model_server.target,
        snowflake_account="fakesnow",
        snowflake_user="fake",
        snowflake_password="snow",
        snowflake_host="127.0.0.1",
        snowflake_port=port,
        snowflake_protocol="http",
    )
    seed(settings, history)

    run = retrain_now(settings)  # nothing listens on the Snowflake port yet

    assert run.status is RunStatus.SUCCEEDED
    assert model_server.models.current is not None
    assert model_server.models.current.version == run.model_version
    assert (tmp_path / SPOOL_FILE).exists()
    assert logged(settings) == {}  # the embedded run log is not used when Snowflake is set
    with fakesnow_server(port) as kwargs:
        composition = build_worker(settings)
        try:
            composition.deliver_spooled()
        finally:
            composition.close()

        table = SnowflakeRunLog({**kwargs, "database": settings.snowflake_database})
        assert table.recent(10) == [run]
    assert not (tmp_path / SPOOL_FILE).exists()
