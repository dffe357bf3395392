"""Abuse of identity and limits through the real web process, gunicorn with two gevent
workers (issue #15, items 9-11): where the defects showed, since the limiter counts per
worker process and only a real server has more than one."""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest

from adapters.sql.migrations import upgrade_database
from app.settings import Settings
from tests.servers import _spawn, _terminate, free_port, wait_for_port
from tests.web_support import SECRET

pytestmark = pytest.mark.integration

WORKERS = 2
LIMIT = 5


@dataclass(frozen=True)
class WebServer:
    url: str


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    data_dir = tmp_path_factory.mktemp("gunicorn-abuse")
    port = free_port()
    upgrade_database(Settings(data_dir=data_dir).resolved_database_url)
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "FEEDREC_DATA_DIR": str(data_dir),
        "WEB_BIND": f"127.0.0.1:{port}",
        "WEB_WORKERS": str(WORKERS),
        "JWT_SECRET": SECRET,
        "RATE_LIMIT_FEED": f"{LIMIT}/minute",
        "RATE_LIMIT_STORAGE_URI": "memory://",
        "LIGHTFM_TARGET": f"127.0.0.1:{free_port()}",  # nobody there: the feed falls back
        "TRENDING_REFRESH_S": "3600",
        "HOME": str(data_dir),  # gunicorn 27 keeps its control socket under ~/.gunicorn
    }
    argv = [sys.executable, "-m", "gunicorn", "-c", "python:app.gunicorn_conf"]
    process, log = _spawn([*argv, "app.web:create_app()"], log_path=data_dir / "web.log", env=env)
    try:
        wait_for_port("127.0.0.1", port, 30.0, what="gunicorn")
        yield WebServer(f"http://127.0.0.1:{port}")
    finally:
        _terminate(process, timeout=10.0)
        log.close()


def get_feed(web: WebServer, token: str) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        f"{web.url}/feed/recommendations?userId=u1", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def token(lifetime: timedelta, secret: str = SECRET, sub: str = "u1") -> str:
    now = datetime.now(UTC)
    claims = {"sub": sub, "aud": "feedrec", "iat": now, "exp": now + lifetime}
    return jwt.encode(claims, secret, "HS256")


def test_a_100_year_viewer_token_is_refused(web: WebServer) -> None:
    # first: a refused token counts against the address, which the next test exhausts
    status, body = get_feed(web, token(timedelta(days=36_500), sub="u2"))
    assert status == 401, body
    status, body = get_feed(web, token(timedelta(hours=1)))
    assert status in (200, 503), body  # accepted (trending may still be loading)


def test_distinct_bad_tokens_from_one_address_are_limited_and_the_429_says_per_worker(
    web: WebServer,
) -> None:
    # each request a never-seen forged token: before, each was a bucket of its own
    answers = [
        get_feed(web, token(timedelta(minutes=5), secret=f"forged-{n:04d}-" + "x" * 40))
        for n in range(60)
    ]

    statuses = Counter(status for status, _ in answers)
    assert set(statuses) == {401, 429}
    # however the connections spread over the workers, each counts to LIMIT on its own
    assert statuses[401] <= LIMIT * WORKERS
    assert statuses[429] >= len(answers) - LIMIT * WORKERS
    refused = next(body for status, body in answers if status == 429)
    message = refused["error"]["message"]  # type: ignore[index]
    assert f"{LIMIT} per 1 minute" in message
    assert "each web worker process" in message


def test_the_server_stayed_up(web: WebServer) -> None:
    deadline = time.monotonic() + 5
    with urllib.request.urlopen(f"{web.url}/healthz", timeout=deadline - time.monotonic()) as r:
        assert r.status == 200
