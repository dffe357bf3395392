"""Reading a JSON request body: content type, size and depth are checked before validation."""

from __future__ import annotations

import json
from typing import TypeVar

from flask import request
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import UnsupportedMediaType

from domain.errors import InvalidInput

Model = TypeVar("Model", bound=BaseModel)


def raw_json_body() -> tuple[bytes, object]:
    """The body's bytes and parsed value. 415 unless JSON; 413 past the size limit (Flask's
    MAX_CONTENT_LENGTH); 400 when it is not well-formed JSON (absurdly deep nesting included)."""
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("the body must be application/json")
    raw = request.get_data(cache=False)
    try:  # the C parser turns absurd nesting into RecursionError, not a crash
        return raw, json.loads(raw)
    except (ValueError, RecursionError) as err:
        raise InvalidInput("the body is not well-formed UTF-8 JSON") from err


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
