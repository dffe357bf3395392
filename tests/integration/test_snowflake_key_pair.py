"""Snowflake key-pair sign-in, from the settings through the worker's composition to the
connector, against fakesnow's server: a run is logged, and what the connector sent to sign in
is checked here (fakesnow itself accepts any login and verifies no JWT).

A recorder in front of fakesnow's ASGI app keeps each login request's body, so the test can
verify that the connector chose `SNOWFLAKE_JWT`, sent no password, and signed its JWT with the
configured key.
"""

from __future__ import annotations

import gzip
import importlib
import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from adapters.snowflake_run_log import SnowflakeRunLog
from app.composition.worker import build_worker, snowflake_connect_kwargs
from app.settings import Settings, SettingsError
from domain.retrain import RetrainRun, RunStatus
from tests.integration.snowflake_support import DATABASE, FAKESNOW_WARNING, SCHEMA, unique_table
from tests.servers import STARTED_SERVERS, free_port

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings(FAKESNOW_WARNING)]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
LOGIN_PATH = "/session/v1/login-request"


class LoginRecorder:
    """ASGI middleware: keeps the `data` of every login request, then lets fakesnow answer."""

    def __init__(self, inner: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self._inner = inner
        self.logins: list[dict[str, Any]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != LOGIN_PATH:
            await self._inner(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        gzipped = (b"content-encoding", b"gzip") in scope["headers"]
        self.logins.append(json.loads(gzip.decompress(body) if gzipped else body)["data"])
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self._inner(scope, replay, send)


@contextmanager
def recording_fakesnow(port: int) -> Iterator[LoginRecorder]:
    # the module, imported after tests.integration.snowflake_support captured the function of
    # the same name
    recorder = LoginRecorder(importlib.import_module("fakesnow.server").app)
    server = uvicorn.Server(
        uvicorn.Config(recorder, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="fakesnow (recorded)", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while thread.is_alive() and not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.started:
        raise RuntimeError("fakesnow did not start")
    STARTED_SERVERS["snowflake"] = f"fakesnow server mode with a login recorder (127.0.0.1:{port})"
    try:
        yield recorder
    finally:
        server.should_exit = True
        thread.join(10)


def _key(path: Path, passphrase: bytes) -> rsa.RSAPrivateKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase),
        )
    )
    return key


def _settings(port: int, data_dir: Path, **extra: str) -> Settings:
    return Settings.from_env(
        {
            "FEEDREC_DATA_DIR": str(data_dir),
            "SNOWFLAKE_ACCOUNT": "fakesnow",
            "SNOWFLAKE_USER": "feedrec_svc",
            "SNOWFLAKE_HOST": "127.0.0.1",
            "SNOWFLAKE_PORT": str(port),
            "SNOWFLAKE_PROTOCOL": "http",
            "SNOWFLAKE_DATABASE": DATABASE,
            "SNOWFLAKE_SCHEMA": SCHEMA,
            **extra,
        }
    )


def test_a_run_is_logged_after_a_key_pair_sign_in_with_a_jwt_signed_by_the_key(
    tmp_path: Path,
) -> None:
    key_file = tmp_path / "rsa_key.p8"
    key = _key(key_file, b"correct horse")
    port = free_port()
    settings = _settings(
        port,
        tmp_path,
        SNOWFLAKE_PRIVATE_KEY_PATH=str(key_file),
        SNOWFLAKE_PRIVATE_KEY_PASSPHRASE="correct horse",
    )
    run = RetrainRun("r-key-pair", datetime(2026, 12, 1, 2, 0, tzinfo=UTC), RunStatus.RUNNING)

    with recording_fakesnow(port) as fakesnow:
        log = SnowflakeRunLog(snowflake_connect_kwargs(settings), table=unique_table())
        log.record(run)
        logged = log.recent(1)

    assert logged == [run]
    login = fakesnow.logins[0]
    assert login["AUTHENTICATOR"] == "SNOWFLAKE_JWT"
    assert "PASSWORD" not in login
    claims = jwt.decode(login["TOKEN"], key.public_key(), algorithms=["RS256"])
    assert claims["sub"] == "FAKESNOW.FEEDREC_SVC"
    assert claims["iss"].startswith("FAKESNOW.FEEDREC_SVC.SHA256:")


def test_a_key_the_passphrase_does_not_open_stops_the_worker_at_start(tmp_path: Path) -> None:
    key_file = tmp_path / "rsa_key.p8"
    _key(key_file, b"correct horse")
    settings = _settings(
        free_port(),
        tmp_path,
        SNOWFLAKE_PRIVATE_KEY_PATH=str(key_file),
        SNOWFLAKE_PRIVATE_KEY_PASSPHRASE="battery staple",
    )

    with pytest.raises(SettingsError, match=r"SNOWFLAKE_PRIVATE_KEY_PATH=.*not a PEM private key"):
        build_worker(settings)
