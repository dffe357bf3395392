"""What the web adapter needs from the composition root, attached to the Flask app."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flask import current_app

from domain.ingestion import InteractionIngestion
from ports.auth import TokenVerifier
from ports.health import HealthCheck

EXTENSION_KEY = "feedrec"


@dataclass(frozen=True)
class WebDependencies:
    token_verifier: TokenVerifier
    ingestion: InteractionIngestion
    health_checks: Sequence[HealthCheck]
    max_request_bytes: int


def dependencies() -> WebDependencies:
    deps: WebDependencies = current_app.extensions[EXTENSION_KEY]
    return deps
