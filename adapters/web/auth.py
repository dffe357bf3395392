"""Bearer-token authentication for the routes."""

from __future__ import annotations

from flask import request

from adapters.web.dependencies import dependencies
from domain.auth import Principal
from domain.errors import Unauthenticated


def authenticated_principal() -> Principal:
    """The caller, from `Authorization: Bearer <jwt>`; raises Unauthenticated (401)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("an 'Authorization: Bearer <token>' header is required")
    return dependencies().token_verifier.verify(token.strip())
