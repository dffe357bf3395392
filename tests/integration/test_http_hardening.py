"""Bad HTTP against the real `web` process: gunicorn with gevent workers, configured by
`app/gunicorn_conf.py`, spoken to in raw bytes. Chunked framing, truncated bodies and gunicorn's
own refusals never reach the WSGI test client, so they are tested here."""

from __future__ import annotations

import json
import socket
import sys
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from adapters.sql.migrations import upgrade_database
from adapters.web.factory import OPERATIONS
from adapters.web.openapi import openapi_document
from adapters.web.wire_formats import REQUEST_LINE_MAX_BYTES
from app.bootstrap import token_codec
from app.settings import Settings
from domain.auth import SERVICE_SCOPE
from domain.cursor import MAX_CURSOR_LENGTH
from domain.feed_service import MAX_PAGE_SIZE
from domain.interactions import MAX_ID_LENGTH
from tests.web_support import an_event, error_of, gunicorn_web, settings_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).parent / "gunicorn"
LIMIT = 16 * 1024  # MAX_REQUEST_BYTES of this server: small, so oversized bodies stay quick
VIEWER = "u000040"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    rest: bytes  # whatever the server wrote after the first response

    def json(self) -> dict[str, object]:
        parsed: dict[str, object] = json.loads(self.body)
        return parsed


@dataclass(frozen=True)
class Web:
    port: int
    settings: Settings
    log: Path

    def send(self, raw: bytes) -> Answer:
        """Write `raw`, half-close, read until the server closes; the first response parsed."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as conn:
            conn.sendall(raw)
            conn.shutdown(socket.SHUT_WR)
            received = b""
            while chunk := conn.recv(65536):
                received += chunk
        head, _, after = received.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        return Answer(int(status_line.split()[1]), headers, after[:length], after[length:])

    def token(self, user: str = VIEWER, service: bool = False) -> str:
        return token_codec(self.settings).issue(user, [SERVICE_SCOPE] if service else [])

    def rows(self, table: str) -> int:
        engine = create_engine(self.settings.resolved_database_url)
        try:
            with engine.connect() as conn:
                return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
        finally:
            engine.dispose()

    def stored_interactions(self) -> int:
        return self.rows("user_interactions")


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    data_dir = tmp_path_factory.mktemp("http-hardening")
    settings = settings_for(data_dir, max_request_bytes=LIMIT)
    upgrade_database(settings.resolved_database_url)
    with gunicorn_web(data_dir, MAX_REQUEST_BYTES=str(LIMIT)) as port:
        yield Web(port, settings, data_dir / "gunicorn.log")


def post_interactions(token: str, framing: str, body: bytes) -> bytes:
    return (
        "POST /feed/interactions HTTP/1.1\r\nHost: feedrec\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n{framing}\r\n\r\n"
    ).encode() + body


def chunked(*pieces: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


def an_event_body(padding: int = 0) -> bytes:
    """One valid event; `padding` spaces after it keep it valid JSON of any length."""
    return json.dumps(an_event(VIEWER, videoId="v000042")).encode() + b" " * padding


def assert_documented_json_error(answer: Answer, status: int, path: str, method: str) -> None:
    assert answer.status == status, (answer.status, answer.body)
    assert answer.headers["content-type"] == "application/json"
    error_of(answer.json())
    document = openapi_document(OPERATIONS, "test")
    assert str(status) in document["paths"][path][method]["responses"]


def test_a_malformed_chunk_size_is_400_and_stores_nothing(web: Web) -> None:
    before = web.stored_interactions()
    body = b"zz\r\n" + an_event_body() + b"\r\n0\r\n\r\n"
    answer = web.send(post_interactions(web.token(), "Transfer-Encoding: chunked", body))
    assert_documented_json_error(answer, 400, "/feed/interactions", "post")
    assert web.stored_interactions() == before


@pytest.mark.parametrize("times_the_limit", [2, 10])
def test_a_chunked_body_over_the_limit_is_413_though_its_first_part_is_valid_json(
    web: Web, times_the_limit: int
) -> None:
    before = web.stored_interactions()
    body = an_event_body(padding=times_the_limit * LIMIT)
    assert json.loads(body[:LIMIT])  # the cut that used to be stored
    pieces = [body[start : start + 4096] for start in range(0, len(body), 4096)]
    answer = web.send(
        post_interactions(web.token(), "Transfer-Encoding: chunked", chunked(*pieces))
    )
    assert_documented_json_error(answer, 413, "/feed/interactions", "post")
    assert web.stored_interactions() == before


def test_bodies_of_exactly_the_limit_are_accepted_in_either_framing(web: Web) -> None:
    event = an_event_body()
    body = an_event_body(padding=LIMIT - len(event))
    assert len(body) == LIMIT
    as_chunks = web.send(
        post_interactions(web.token(), "Transfer-Encoding: chunked", chunked(body))
    )
    with_length = web.send(post_interactions(web.token(), f"Content-Length: {LIMIT}", body))
    assert (as_chunks.status, with_length.status) == (202, 202), (as_chunks.body, with_length.body)
    too_long = web.send(post_interactions(web.token(), f"Content-Length: {LIMIT + 1}", body + b" "))
    assert too_long.status == 413


def test_a_body_shorter_than_its_content_length_is_400_and_stores_nothing(web: Web) -> None:
    before = web.stored_interactions()
    body = an_event_body()
    answer = web.send(post_interactions(web.token(), f"Content-Length: {len(body) + 100}", body))
    assert_documented_json_error(answer, 400, "/feed/interactions", "post")
    assert "ended" in str(error_of(answer.json())["message"])
    assert web.stored_interactions() == before


def test_a_truncated_chunked_body_is_400_and_stores_nothing(web: Web) -> None:
    before = web.stored_interactions()
    body = an_event_body()
    truncated = b"%x\r\n%s" % (len(body) + 50, body)  # the chunk promises 50 bytes more
    answer = web.send(post_interactions(web.token(), "Transfer-Encoding: chunked", truncated))
    assert_documented_json_error(answer, 400, "/feed/interactions", "post")
    assert web.stored_interactions() == before


def get(target: str, *headers: str) -> bytes:
    lines = "".join(f"{header}\r\n" for header in headers)
    return f"GET {target} HTTP/1.1\r\nHost: feedrec\r\n{lines}\r\n".encode()


def test_responses_name_no_server_and_are_neither_cached_nor_sniffed(web: Web) -> None:
    feed = web.send(
        get(f"/feed/recommendations?userId={VIEWER}", f"Authorization: Bearer {web.token()}")
    )
    for answer in (feed, web.send(get("/healthz")), web.send(get("/nowhere"))):
        assert "server" not in answer.headers
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["x-content-type-options"] == "nosniff"


def test_head_of_the_feed_is_405_and_ranks_nothing(web: Web) -> None:
    raw = get(f"/feed/recommendations?userId={VIEWER}", f"Authorization: Bearer {web.token()}")
    sessions = web.rows("feed_sessions")
    answer = web.send(raw.replace(b"GET", b"HEAD", 1))
    assert answer.status == 405
    assert answer.headers["allow"] == "GET"
    assert web.rows("feed_sessions") == sessions
    assert web.send(raw).status == 200  # the same request as a GET does rank and record
    assert web.rows("feed_sessions") == sessions + 1


def test_gunicorns_own_refusals_are_the_documented_json_error(web: Web) -> None:
    refusals = {
        414: get("/healthz?q=" + "a" * REQUEST_LINE_MAX_BYTES),
        431: get("/healthz", "X-Padding: " + "a" * 9000),
        400: b"GET /healthz HTTP/1.1 extra\r\nHost: feedrec\r\n\r\n",
        501: get("/healthz", "Transfer-Encoding: br"),
    }
    for status, raw in refusals.items():
        answer = web.send(raw)
        assert_documented_json_error(answer, status, "/healthz", "get")
        assert "server" not in answer.headers
        assert answer.headers["x-content-type-options"] == "nosniff"


def test_the_longest_documented_feed_request_fits_the_request_line(web: Web) -> None:
    """Ids of 128 characters outside the BMP (12 bytes each once percent-encoded) and a cursor
    of the longest length the service issues: refused by the service (400), not by gunicorn."""
    astral = "\U0001f600" * MAX_ID_LENGTH
    cursor = "A" * (MAX_CURSOR_LENGTH - 23) + "." + "A" * 22
    query = urllib.parse.urlencode(
        {"userId": astral, "limit": MAX_PAGE_SIZE, "cursor": cursor, "feedSessionId": astral}
    )
    target = f"/feed/recommendations?{query}"
    assert len(f"GET {target} HTTP/1.1") <= REQUEST_LINE_MAX_BYTES
    token = web.token("ops", service=True)
    answer = web.send(get(target, f"Authorization: Bearer {token}"))
    assert answer.status == 400, answer.body
    assert "cursor" in error_of(answer.json())["fields"]
