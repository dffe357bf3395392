"""The `worker` process: its timetable (02:00 UTC whatever the machine's zone), delivery of
spooled run log rows at start, and a graceful stop on SIGTERM. The process is a real
`python -m app.cli worker` subprocess, always stopped by the test."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import schedule

from adapters.sql.engine import make_engine
from adapters.sql.migrations import upgrade_database
from adapters.sql.run_log import SqlRunLog
from app.composition.worker import SPOOL_FILE
from app.worker_main import SPOOL_DELIVERY_S, plan
from domain.retrain import RetrainRun, RunStatus, run_to_json

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def nothing() -> None:
    return None


@pytest.mark.parametrize("retrain_at", ["02:00", "13:37"])
def test_the_retrain_is_planned_daily_at_the_configured_utc_time(retrain_at: str) -> None:
    scheduler = schedule.Scheduler()

    plan(scheduler, retrain_at, nothing, nothing)

    nightly, delivery = scheduler.jobs
    assert nightly.next_run is not None
    # schedule keeps next_run as naive local time; astimezone reads a naive time as local
    due = nightly.next_run.astimezone(UTC)
    assert f"{due:%H:%M}" == retrain_at
    assert timedelta(0) < due - datetime.now(UTC) <= timedelta(days=1)
    assert delivery.interval == SPOOL_DELIVERY_S


def test_the_worker_delivers_spooled_rows_at_start_and_stops_on_sigterm(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'feedrec.db'}"
    upgrade_database(url)
    kept = RetrainRun(
        "20261126T020000Z-abcdef01",
        datetime(2026, 11, 26, 2, 0, tzinfo=UTC),
        RunStatus.FAILED,
        finished_at=datetime(2026, 11, 26, 2, 1, tzinfo=UTC),
        error="database unavailable: the run log was down",
    )
    (tmp_path / SPOOL_FILE).write_text(json.dumps(run_to_json(kept)) + "\n")
    env = {
        **os.environ,
        "FEEDREC_DATA_DIR": str(tmp_path),
        "DATABASE_URL": url,
        "LIGHTFM_TARGET": "127.0.0.1:9",
        "RETRAIN_AT": "02:00",
    }
    with (tmp_path / "worker.log").open("wb") as output:
        worker = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while (tmp_path / SPOOL_FILE).exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            worker.send_signal(signal.SIGTERM)
            code = worker.wait(timeout=15)
        finally:
            worker.kill()
            worker.wait(timeout=10)

    log = (tmp_path / "worker.log").read_text()
    assert code == 0, log
    assert "worker stopped" in log
    engine = make_engine(url)
    try:
        assert SqlRunLog(engine).recent(5) == [kept]
    finally:
        engine.dispose()
