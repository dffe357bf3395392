"""Schemathesis against the app's own `/openapi.json`: every documented operation, generated
inputs, with a service token, a viewer token and no token. No server errors; every response
matches the document (status code, content type, body schema)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from adapters.sql.migrations import upgrade_database
from app.bootstrap import Overrides, token_codec
from app.web import create_app, shutdown
from domain.auth import SERVICE_SCOPE
from tests.fakes_feed import FakeRecommender
from tests.web_support import bearer, settings_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: Per operation and generation mode. Operations without inputs have few distinct cases.
EXAMPLES_PER_RUN = 300
OPERATIONS = [
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/feed/recommendations"),
    ("POST", "/feed/interactions"),
    ("GET", "/experiments/report"),
]
#: Negative (schema-violating) inputs only exist for operations that take inputs.
RUNS = [(method, path, GenerationMode.POSITIVE) for method, path in OPERATIONS] + [
    (method, path, GenerationMode.NEGATIVE)
    for method, path in OPERATIONS
    if path.startswith(("/feed", "/experiments"))
]
CALLERS = ("service", "viewer", "anonymous")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
generated: Counter[str] = Counter()


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    tmp_path: Path = tmp_path_factory.mktemp("fuzz")
    chosen = settings_for(
        tmp_path,
        rate_limit_feed="",
        rate_limit_interactions="",
        # An experiment, so that the report's 200 is fuzzed too (not only its 404).
        feed_experiment='{"name": "fuzz", "variants": [{"id": "a", "weight": 1},'
        ' {"id": "b", "weight": 1}]}',
    )
    upgrade_database(chosen.resolved_database_url)
    app = create_app(chosen, Overrides(recommender=FakeRecommender()), start_background=False)
    codec = token_codec(chosen)
    app.config["FUZZ_HEADERS"] = {
        "service": bearer(codec.issue("fuzz-service", [SERVICE_SCOPE])),
        "viewer": bearer(codec.issue("viewer")),
        "anonymous": {},
    }
    yield app
    shutdown(app)


@pytest.fixture(scope="module")
def web_schema(fuzzed_app: Flask) -> BaseSchema:
    return schemathesis.openapi.from_wsgi("/openapi.json", fuzzed_app)


def test_the_fuzzed_operations_are_every_documented_operation(web_schema: BaseSchema) -> None:
    operations = [result.ok() for result in web_schema.get_all_operations()]  # type: ignore[union-attr]
    documented = {f"{op.method.upper()} {op.path}" for op in operations}
    assert documented == {f"{method} {path}" for method, path in OPERATIONS}


@pytest.mark.parametrize(("method", "path", "mode"), RUNS)
def test_every_operation_answers_as_documented(
    web_schema: BaseSchema, fuzzed_app: Flask, method: str, path: str, mode: GenerationMode
) -> None:
    operation = web_schema[path][method]
    label = f"{method} {path} {mode.value}"

    strategy = operation.as_strategy(generation_mode=mode)
    if mode is GenerationMode.POSITIVE:
        strategy = strategy.map(with_recent_timestamps)

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES_PER_RUN,
        deadline=None,
        derandomize=True,  # the same cases on every CI run
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def answers_as_documented(case: Case[Any]) -> None:
        generated[label] += 1
        for caller in CALLERS:
            headers = {**(case.headers or {}), **fuzzed_app.config["FUZZ_HEADERS"][caller]}
            if caller == "anonymous":
                headers.pop("Authorization", None)
            case.call_and_validate(headers=headers, checks=CHECKS)

    answers_as_documented()


def with_recent_timestamps(case: Case[Any]) -> Case[Any]:
    """The 30-day window of `timestamp` is a rule the schema cannot state; without this almost
    every valid-looking event is refused and the 202 path is never fuzzed."""
    body = case.body
    events = body.get("events") if isinstance(body, dict) and "events" in body else [body]
    for event in events if isinstance(events, list) else []:
        if isinstance(event, dict) and "timestamp" in event:
            event["timestamp"] = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    return case


def test_at_least_a_thousand_cases_were_generated() -> None:
    # Runs after the fuzzing tests (file order); alone, it has nothing to count.
    if not generated:
        pytest.skip("the fuzzing tests did not run in this session")
    assert sum(generated.values()) >= 1_000, generated
