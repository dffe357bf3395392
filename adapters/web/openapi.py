"""`/openapi.json`: OpenAPI 3.1 assembled from the pydantic models the routes validate with."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from adapters.web.schemas import ErrorBody
from adapters.web.wire_formats import (
    HEADER_FIELD_MAX_BYTES,
    HEADER_FIELDS_MAX,
    REQUEST_LINE_MAX_BYTES,
)

REF = "#/components/schemas/{model}"

ERROR_MEANINGS = {
    400: "Invalid input (`error.fields` names each bad field), or malformed HTTP",
    401: "Missing, expired or invalid bearer token",
    403: "The token may not act for this user",
    404: "Not found",
    409: "Conflicts with what is stored",
    413: "Body too large",
    414: f"Request line over {REQUEST_LINE_MAX_BYTES} bytes",
    415: "Body is not application/json",
    429: "Too many requests; see Retry-After",
    431: f"A header over {HEADER_FIELD_MAX_BYTES} bytes, or over {HEADER_FIELDS_MAX} headers",
    501: "A Transfer-Encoding the server does not understand",
    503: "A dependency is down; see Retry-After",
}
#: The HTTP server's own refusals, possible on every operation.
HTTP_REFUSALS = (400, 414, 431, 501)
DESCRIPTION = (
    'Errors are `{"error": {"code", "message", "fields"?}}`, the HTTP server\'s own refusals'
    " (400, 414, 431, 501) included. A method a path does not list is 405 with `Allow`; HEAD"
    " is 405 on a personal GET, which would do the work of a GET for nothing. Every response"
    " is `Cache-Control: no-store` and `X-Content-Type-Options: nosniff`."
)

RETRY_AFTER_STATUSES = (429, 503)
RETRY_AFTER = {
    "description": "Seconds to wait before trying again",
    "required": True,
    "schema": {"type": "integer", "minimum": 1},
}


@dataclass(frozen=True)
class Operation:
    """One documented operation. `request_models` are alternatives (oneOf) for the JSON body;
    `responses` maps a success status to its model (None: no body documented)."""

    method: str
    path: str
    summary: str
    responses: dict[int, type[BaseModel] | None]
    errors: Sequence[int] = ()
    request_models: Sequence[type[BaseModel]] = ()
    parameters: Sequence[dict[str, Any]] = ()
    secured: bool = True
    tags: Sequence[str] = field(default_factory=tuple)


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The OpenAPI query parameters of a model that validates `request.args`."""
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    return [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "description": field.pop("description", ""),
            "schema": field,
        }
        for name, field in schema["properties"].items()
    ]


def openapi_document(operations: Sequence[Operation], version: str) -> dict[str, Any]:
    models: set[type[BaseModel]] = {ErrorBody}
    for operation in operations:
        models.update(operation.request_models)
        models.update(m for m in operation.responses.values() if m is not None)
    ordered = sorted(models, key=lambda m: m.__name__)
    _, schemas = models_json_schema([(model, "validation") for model in ordered], ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for operation in operations:
        paths.setdefault(operation.path, {})[operation.method.lower()] = _operation(operation)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "feedrec: personalised video feed",
            "version": version,
            "description": DESCRIPTION,
        },
        "paths": paths,
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _operation(operation: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, model in operation.responses.items():
        entry: dict[str, Any] = {"description": "Success" if status < 300 else "See body"}
        if model is not None:
            entry["content"] = {"application/json": {"schema": _ref(model)}}
        responses[str(status)] = entry
    errors = {*operation.errors, *HTTP_REFUSALS, *((401, 429) if operation.secured else ())}
    for status in sorted(errors):
        responses[str(status)] = {
            "description": ERROR_MEANINGS.get(status, "Error"),
            "content": {"application/json": {"schema": _ref(ErrorBody)}},
        }
        if status in RETRY_AFTER_STATUSES:
            responses[str(status)]["headers"] = {"Retry-After": RETRY_AFTER}
    document: dict[str, Any] = {
        "summary": operation.summary,
        "operationId": f"{operation.method.lower()}{operation.path.replace('/', '_')}",
        "responses": responses,
    }
    if operation.tags:
        document["tags"] = list(operation.tags)
    if operation.parameters:
        document["parameters"] = list(operation.parameters)
    if operation.secured:
        document["security"] = [{"bearerAuth": []}]
    if operation.request_models:
        refs = [_ref(model) for model in operation.request_models]
        schema = refs[0] if len(refs) == 1 else {"oneOf": refs}
        document["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    return document
