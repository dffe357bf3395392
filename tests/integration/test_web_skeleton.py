"""The app factory, health endpoints, error bodies and the OpenAPI document."""

from __future__ import annotations

from pathlib import Path

import pytest
from openapi_spec_validator import validate

from adapters.sql.migrations import upgrade_database
from app.bootstrap import Overrides
from app.web import create_app
from ports.health import ComponentHealth
from tests.web_support import error_of, settings_for

pytestmark = pytest.mark.integration


class StubCheck:
    def __init__(self, name: str, ok: bool, critical: bool) -> None:
        self.name, self.critical, self._ok = name, critical, ok

    def check(self) -> ComponentHealth:
        return ComponentHealth(self._ok, "" if self._ok else "down for the test")


def test_the_factory_builds_an_app_that_is_alive(tmp_path: Path) -> None:
    app = create_app(settings_for(tmp_path), start_background=False)
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_reports_the_real_database_per_component(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    upgrade_database(settings.resolved_database_url)
    response = create_app(settings, start_background=False).test_client().get("/readyz")
    assert response.status_code == 200
    assert response.json is not None
    assert response.json["components"]["database"]["ok"] is True


def test_readyz_is_503_when_a_critical_component_is_down(tmp_path: Path) -> None:
    checks = [
        StubCheck("database", ok=False, critical=True),
        StubCheck("kafka", ok=True, critical=False),
    ]
    app = create_app(
        settings_for(tmp_path), Overrides(health_checks=checks), start_background=False
    )
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert response.json is not None and response.json["status"] == "unready"


def test_readyz_is_degraded_when_only_an_optional_component_is_down(tmp_path: Path) -> None:
    checks = [
        StubCheck("database", ok=True, critical=True),
        StubCheck("kafka", ok=False, critical=False),
    ]
    response = (
        create_app(settings_for(tmp_path), Overrides(health_checks=checks), start_background=False)
        .test_client()
        .get("/readyz")
    )
    assert response.status_code == 200
    assert response.json is not None and response.json["status"] == "degraded"


def test_openapi_json_is_a_valid_openapi_3_1_document(tmp_path: Path) -> None:
    response = (
        create_app(settings_for(tmp_path), start_background=False)
        .test_client()
        .get("/openapi.json")
    )
    assert response.status_code == 200
    document = response.json
    assert document is not None and document["openapi"].startswith("3.1")
    validate(document)
    assert "/feed/interactions" in document["paths"]
    schema = document["components"]["schemas"]["InteractionIn"]
    assert schema["properties"]["watchTime"]["maximum"] == 86_400_000


def test_unknown_routes_and_methods_get_the_error_body(tmp_path: Path) -> None:
    client = create_app(settings_for(tmp_path), start_background=False).test_client()
    missing = client.get("/nope")
    assert missing.status_code == 404
    assert error_of(missing.json)["code"] == "not_found"
    wrong_method = client.delete("/feed/interactions")
    assert wrong_method.status_code == 405
    assert "POST" in wrong_method.headers["Allow"]


def test_an_unexpected_failure_is_a_500_body_without_a_stack_trace(tmp_path: Path) -> None:
    app = create_app(settings_for(tmp_path), start_background=False)

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret internals")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert "secret internals" not in response.get_data(as_text=True)
    assert error_of(response.json)["code"] == "internal"
