"""The composition root: the one place that builds adapters and wires them into the domain.

Every part can be overridden (tests pass fakes or pre-built adapters). Building opens no
connection: engines and clients connect lazily, on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from adapters.jwt_tokens import JwtTokens
from adapters.sql.engine import make_engine
from adapters.sql.health import DatabaseHealth
from adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from adapters.system_clock import SystemClock
from adapters.web.dependencies import WebDependencies
from app.secrets import jwt_secret, public_key
from app.settings import Settings
from domain.ingestion import InteractionIngestion
from ports.auth import TokenVerifier
from ports.clock import Clock
from ports.health import HealthCheck
from ports.repositories import UnitOfWork


@dataclass
class Overrides:
    """Parts a caller supplies instead of the ones the settings describe."""

    clock: Clock | None = None
    token_verifier: TokenVerifier | None = None
    unit_of_work: Callable[[], UnitOfWork] | None = None
    health_checks: Sequence[HealthCheck] | None = None


def token_codec(settings: Settings) -> JwtTokens:
    return JwtTokens(
        secret=jwt_secret(settings),
        audience=settings.jwt_audience,
        leeway_s=settings.jwt_leeway_s,
        public_key_pem=public_key(settings),
    )


def build_web_dependencies(
    settings: Settings, overrides: Overrides | None = None
) -> WebDependencies:
    chosen = overrides or Overrides()
    clock = chosen.clock or SystemClock()
    checks: list[HealthCheck] = []
    unit_of_work = chosen.unit_of_work
    if unit_of_work is None:
        engine = make_engine(settings.resolved_database_url)
        unit_of_work = SqlUnitOfWorkFactory(engine)
        checks.append(DatabaseHealth(engine))
    return WebDependencies(
        token_verifier=chosen.token_verifier or token_codec(settings),
        ingestion=InteractionIngestion(unit_of_work, clock, settings.kafka_topic),
        health_checks=chosen.health_checks if chosen.health_checks is not None else checks,
        max_request_bytes=settings.max_request_bytes,
    )
