"""What gunicorn itself answers, made to match the API: its refusals of malformed HTTP (400, 414,
431, 501, ...) carry the JSON error body instead of an HTML page, and no response names the
server software. gunicorn has no setting for either, so `install()` replaces the two functions
that write them (`util.write_error`, `Response.default_headers`); it runs in each worker."""

from __future__ import annotations

import json
import socket
from http import HTTPStatus

from gunicorn import util  # type: ignore[import-untyped]
from gunicorn.http import wsgi  # type: ignore[import-untyped]

from adapters.web.wire_formats import (
    HEADER_FIELD_MAX_BYTES,
    HEADER_FIELDS_MAX,
    REQUEST_LINE_MAX_BYTES,
)

#: status -> (error code, message). gunicorn's own detail can quote the request line or a
#: header's name: it goes to gunicorn's log, never back to the client.
REFUSALS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "the request is not well-formed HTTP/1.1"),
    403: ("forbidden", "the request was refused"),
    414: ("uri_too_long", f"the request line is over {REQUEST_LINE_MAX_BYTES} bytes"),
    417: ("expectation_failed", "the only Expect understood is 100-continue"),
    431: (
        "request_header_fields_too_large",
        f"a header is over {HEADER_FIELD_MAX_BYTES} bytes, or there are over "
        f"{HEADER_FIELDS_MAX} headers",
    ),
    500: ("internal", "the service failed to handle this request"),
    501: ("not_implemented", "the Transfer-Encoding is not one this server understands"),
}


def json_refusal(status: int) -> bytes:
    """The whole HTTP response for one of gunicorn's refusals; the connection then closes."""
    code, message = REFUSALS.get(status, ("error", HTTPStatus(status).phrase))
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "\r\n"
    )
    return head.encode("latin-1") + body


def _write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    util.write_nonblock(sock, json_refusal(status_int))


_gunicorn_default_headers = wsgi.Response.default_headers


def _default_headers_without_server(response: object) -> list[str]:
    lines: list[str] = _gunicorn_default_headers(response)
    return [line for line in lines if not line.startswith("Server:")]


def install() -> None:
    util.write_error = _write_json_error
    wsgi.Response.default_headers = _default_headers_without_server
