"""`/healthz` (the process answers) and `/readyz` (per dependency)."""

from __future__ import annotations

import logging
from typing import Literal

from flask import Blueprint, Response, jsonify

from adapters.web.dependencies import dependencies
from adapters.web.openapi import Operation
from adapters.web.schemas import ComponentStatus, Liveness, Readiness
from ports.health import ComponentHealth

log = logging.getLogger(__name__)
blueprint = Blueprint("health", __name__)

OPERATIONS = (
    Operation("GET", "/healthz", "The process is alive", {200: Liveness}, secured=False),
    Operation(
        "GET",
        "/readyz",
        "Readiness of every dependency; 503 when a critical one is down",
        {200: Readiness, 503: Readiness},
        secured=False,
    ),
)


@blueprint.get("/healthz")
def healthz() -> Response:
    return jsonify(Liveness(status="ok").model_dump())


@blueprint.get("/readyz")
def readyz() -> Response:
    components: dict[str, ComponentStatus] = {}
    for check in dependencies().health_checks:
        try:
            health = check.check()
        except Exception as err:  # a broken probe must not break the probe endpoint
            log.exception("health check %s raised", check.name)
            health = ComponentHealth(False, f"probe failed: {type(err).__name__}")
        components[check.name] = ComponentStatus(
            ok=health.ok, critical=check.critical, detail=health.detail
        )
    status: Literal["ready", "degraded", "unready"]
    if any(not c.ok and c.critical for c in components.values()):
        status = "unready"
    elif any(not c.ok for c in components.values()):
        status = "degraded"
    else:
        status = "ready"
    response = jsonify(Readiness(status=status, components=components).model_dump())
    if status == "unready":
        response.status_code = 503
        response.headers["Retry-After"] = "5"
    return response
