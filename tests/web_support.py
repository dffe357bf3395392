"""Shared helpers for tests that drive the Flask app."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from app.settings import Settings
from tests.servers import free_port, wait_for_port

SECRET = "test-secret-" + "x" * 40


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"data_dir": tmp_path, "jwt_secret": SECRET}
    values.update(overrides)
    return Settings(**values)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def an_event(user_id: str = "u1", **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "userId": user_id,
        "videoId": "v1",
        "interactionType": "view",
        "watchTime": 12_000,
        "timestamp": (datetime.now(UTC) - timedelta(seconds=30)).isoformat(),
    }
    event.update(fields)
    return event


def error_of(body: Mapping[str, Any] | None) -> dict[str, Any]:
    assert body is not None and "error" in body, body
    error: dict[str, Any] = body["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str)
    return error


#: Environment variables of the product a test's web process sets itself.
_PRODUCT_PREFIXES = ("DATABASE_", "JWT_", "KAFKA_", "LIGHTFM_", "RATE_LIMIT_", "WEB_")
REPO = Path(__file__).resolve().parent.parent


@contextmanager
def gunicorn_web(data_dir: Path, **environment: str) -> Iterator[int]:
    """The real `web` process (gunicorn with a gevent worker, `app/gunicorn_conf.py`) on a free
    loopback port, its data under `data_dir` (log: `gunicorn.log`), no model service behind it
    (pages come from trending) and no rate limits; `environment` adds or overrides settings.
    Yields the port; stops the process after."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(_PRODUCT_PREFIXES)}
    env.update(
        PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]),
        FEEDREC_DATA_DIR=str(data_dir),
        JWT_SECRET=SECRET,
        WEB_BIND=f"127.0.0.1:{port}",
        WEB_WORKERS="1",
        LIGHTFM_TARGET=f"127.0.0.1:{free_port()}",  # nothing there: pages come from trending
        RATE_LIMIT_FEED="",
        RATE_LIMIT_INTERACTIONS="",
    )
    env.update(environment)
    gunicorn = Path(sys.executable).parent / "gunicorn"
    argv = [str(gunicorn), "-c", "python:app.gunicorn_conf", "--no-control-socket"]
    with (data_dir / "gunicorn.log").open("w") as sink:
        process = subprocess.Popen(
            [*argv, "app.web:create_app()"],
            cwd=REPO,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_port("127.0.0.1", port, timeout=60, what="gunicorn")
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
