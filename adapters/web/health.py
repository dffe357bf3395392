"""`/healthz` (the process answers) and `/readyz` (per dependency)."""

from __future__ import annotations

import ipaddress
import logging
from typing import Literal

from flask import Blueprint, Response, jsonify, request

from adapters.web.auth import authenticated_principal
from adapters.web.dependencies import dependencies
from adapters.web.openapi import Operation
from adapters.web.schemas import ComponentStatus, Liveness, Readiness
from domain.errors import Unauthenticated
from ports.health import ComponentHealth

log = logging.getLogger(__name__)
blueprint = Blueprint("health", __name__)

OPERATIONS = (
    Operation("GET", "/healthz", "The process is alive", {200: Liveness}, secured=False),
    Operation(
        "GET",
        "/readyz",
        "Readiness; 503 when a critical dependency is down. `components` (each dependency's"
        " state and probe detail) only for a `feed:service` token or a loopback caller",
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
    shown = components if _operator_asks() else None
    response = jsonify(Readiness(status=status, components=shown).model_dump(exclude_none=True))
    if status == "unready":
        response.status_code = 503
        response.headers["Retry-After"] = "5"
    return response


def _operator_asks() -> bool:
    """Probe details name hosts and errors: for an operator (a `feed:service` token, or a caller
    on this host's loopback; a unix-socket peer has no address and is not trusted), not for
    anyone who can reach the port. A bad token here is just an anonymous caller, never a 401."""
    try:
        if ipaddress.ip_address(request.remote_addr or "").is_loopback:
            return True
    except ValueError:
        pass
    if "Authorization" not in request.headers:
        return False
    try:
        return authenticated_principal().is_service
    except Unauthenticated:
        return False
