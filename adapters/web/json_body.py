"""Reading a JSON request body: content type, size and depth are checked before validation."""

from __future__ import annotations

import json
import logging
from typing import IO, TypeVar, cast

from flask import request
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge, UnsupportedMediaType

from domain.errors import InvalidInput

log = logging.getLogger(__name__)
Model = TypeVar("Model", bound=BaseModel)
_READ_STEP = 64 * 1024


def raw_json_body() -> tuple[bytes, object]:
    """The body's bytes and parsed value. 415 unless JSON; 413 past the size limit (Flask's
    MAX_CONTENT_LENGTH); 400 when it is not well-formed JSON (absurdly deep nesting included)."""
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("the body must be application/json")
    raw = _whole_body()
    try:  # the C parser turns absurd nesting into RecursionError, not a crash
        return raw, json.loads(raw)
    except (ValueError, RecursionError) as err:
        raise InvalidInput("the body is not well-formed UTF-8 JSON") from err


def _whole_body() -> bytes:
    """All of the body however it is framed: 413 past the limit, chunked bodies too (Werkzeug's
    own stream stops at the limit without a word, so a longer chunked body arrived cut); 400 when
    the framing is broken (a bad chunk size) or the body ends before its Content-Length."""
    limit = request.max_content_length
    declared = request.content_length
    if limit is not None and declared is not None and declared > limit:
        raise RequestEntityTooLarge(f"the body is over {limit} bytes")
    # A server that ends the body itself (gunicorn, for both framings) is read directly, so a
    # body one byte over the limit is seen; otherwise Werkzeug's stream keeps to Content-Length.
    stream = (
        cast(IO[bytes], request.environ["wsgi.input"])
        if request.environ.get("wsgi.input_terminated")
        else request.stream
    )
    chunks: list[bytes] = []
    size = 0
    try:
        while chunk := stream.read(_READ_STEP):
            size += len(chunk)
            if limit is not None and size > limit:
                raise RequestEntityTooLarge(f"the body is over {limit} bytes")
            chunks.append(chunk)
    except HTTPException:
        raise
    except Exception as err:  # the server's HTTP parser refusing the framing, e.g. a chunk size
        log.warning("unreadable request body", extra={"error": type(err).__name__})
        raise InvalidInput("the body is malformed: a bad chunk, or it ended early") from err
    if declared is not None and size < declared:
        raise InvalidInput(f"the body ended after {size} of its {declared} bytes")
    return b"".join(chunks)


def validated(model: type[Model], raw: bytes) -> Model:
    """Validate in pydantic's strict JSON mode, so `"5"` is not an integer and a number is not
    a timestamp. Errors become InvalidInput with one entry per field path."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as err:
        raise InvalidInput("the request has invalid fields", field_errors(err)) from err


def field_errors(err: ValidationError) -> dict[str, str]:
    """Field path (`events[3].watchTime`) -> what pydantic found wrong with it."""
    return {_path(error["loc"]): error["msg"] for error in err.errors()}


def _path(location: tuple[int | str, ...]) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"
