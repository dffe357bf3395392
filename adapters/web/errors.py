"""The one place that turns errors into HTTP statuses and the error body
`{"error": {"code", "message", "fields"?}}`."""

from __future__ import annotations

import logging
import math
import time

from flask import Flask, Response, current_app, jsonify
from flask_limiter import RateLimitExceeded
from werkzeug.exceptions import HTTPException

from domain.errors import (
    Conflict,
    DependencyUnavailable,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthenticated,
)

log = logging.getLogger(__name__)

STATUS_OF: dict[type[DomainError], int] = {
    InvalidInput: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    DependencyUnavailable: 503,
}


def error_response(
    status: int,
    code: str,
    message: str,
    fields: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    detail: dict[str, object] = {"code": code, "message": message}
    if fields:
        detail["fields"] = fields
    response = jsonify({"error": detail})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def domain_error_response(error: DomainError) -> Response:
    status = next((code for kind, code in STATUS_OF.items() if isinstance(error, kind)), 500)
    headers: dict[str, str] = {}
    if isinstance(error, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="feedrec"'
    if isinstance(error, DependencyUnavailable):
        headers["Retry-After"] = str(error.retry_after_s)
        log.warning("dependency unavailable", extra={"component": error.component})
    fields = error.fields if isinstance(error, InvalidInput) else None
    return error_response(status, error.code, error.message, fields, headers)


def rate_limited_response(error: RateLimitExceeded) -> Response:
    return error_response(
        429,
        "rate_limited",
        f"too many requests: the limit is {error.description}",
        headers={"Retry-After": str(_seconds_until_reset(error))},
    )


def _seconds_until_reset(error: RateLimitExceeded) -> int:
    """Seconds until the breached window resets; the window's length if the limiter cannot
    say (a conservative answer)."""
    window_s = max(1, int(error.limit.limit.get_expiry()))
    for limiter in current_app.extensions.get("limiter", ()):
        current = limiter.current_limit
        if current is not None and current.breached:
            # reset_at is rounded up to the next second; never claim more than one window
            return min(window_s, max(1, math.ceil(int(current.reset_at) - time.time())))
    return window_s


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(DomainError, domain_error_response)
    app.register_error_handler(RateLimitExceeded, rate_limited_response)

    def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        code = (error.name or "error").lower().replace(" ", "_")
        allowed = getattr(error, "valid_methods", None)
        headers = {"Allow": ", ".join(allowed)} if allowed else {}
        return error_response(status, code, error.description or error.name, headers=headers)

    def unexpected_error(error: Exception) -> Response:
        # The stack trace goes to the log, never to the client.
        log.exception("unhandled error", exc_info=error)
        return error_response(500, "internal", "the service failed to handle this request")

    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected_error)
