"""Values spelt loosely are refused (#15 items 4, 5, 13): epoch timestamps, `limit=5_0`, padded or
non-canonical cursors; and `/readyz` shows its components to operators only. These are rules of
the Flask app, tested through it with real JWTs and a real SQLite database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from adapters.sql.migrations import upgrade_database
from adapters.web.factory import OPERATIONS
from adapters.web.openapi import openapi_document
from app.bootstrap import Overrides, token_codec
from app.settings import Settings
from app.web import create_app
from domain.auth import SERVICE_SCOPE
from domain.cursor import CURSOR_PATTERN, MAX_CURSOR_LENGTH
from tests.fakes_feed import FakeRecommender
from tests.web_support import an_event, bearer, error_of, settings_for

pytestmark = pytest.mark.integration

FEED = "/feed/recommendations"
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
REMOTE = {"REMOTE_ADDR": "203.0.113.7"}  # a caller that is not on this host


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    chosen = settings_for(tmp_path)
    upgrade_database(chosen.resolved_database_url)
    return chosen


@pytest.fixture
def client(settings: Settings) -> Iterator[FlaskClient]:
    app = create_app(settings, Overrides(recommender=FakeRecommender()), start_background=False)
    with app.test_client() as test_client:
        yield test_client


def headers_for(settings: Settings, user: str = "u1", service: bool = False) -> dict[str, str]:
    return bearer(token_codec(settings).issue(user, [SERVICE_SCOPE] if service else []))


def refused_naming(response: TestResponse, field: str) -> bool:
    return response.status_code == 400 and field in error_of(response.json).get("fields", {})


@pytest.mark.parametrize("spelling", ["1764633600", "1764633600000", "1764633600.5", "-1"])
def test_epoch_digits_are_not_a_timestamp(
    client: FlaskClient, settings: Settings, spelling: str
) -> None:
    response = client.post(
        "/feed/interactions",
        json=an_event(timestamp=spelling),
        headers=headers_for(settings),
    )
    assert refused_naming(response, "timestamp"), response.json


@pytest.mark.parametrize(
    "spelling", ["2026-12-01 10:00:00Z", "2026-12-01T10:00:00", "20261201T100000Z", "2026-12-01"]
)
def test_timestamps_that_are_not_rfc_3339_with_an_offset_are_refused(
    client: FlaskClient, settings: Settings, spelling: str
) -> None:
    response = client.post(
        "/feed/interactions", json=an_event(timestamp=spelling), headers=headers_for(settings)
    )
    assert refused_naming(response, "timestamp"), response.json


def test_rfc_3339_in_every_allowed_spelling_is_accepted(
    client: FlaskClient, settings: Settings
) -> None:
    moment = datetime.now(UTC) - timedelta(minutes=1)
    spellings = [
        moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        moment.strftime("%Y-%m-%dt%H:%M:%S.%fz"),
        moment.astimezone(UTC).replace(tzinfo=None).isoformat() + "+00:00",
        (moment + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00"),
    ]
    for spelling in spellings:
        response = client.post(
            "/feed/interactions", json=an_event(timestamp=spelling), headers=headers_for(settings)
        )
        assert response.status_code == 202, (spelling, response.json)


@pytest.mark.parametrize(
    "spelling", ["5_0", " 50", "50 ", "+50", "050", "5e1", "50.0", "\u0665\u0660"]
)
def test_limit_is_plain_decimal_digits(
    client: FlaskClient, settings: Settings, spelling: str
) -> None:
    response = client.get(
        FEED, query_string={"userId": "u1", "limit": spelling}, headers=headers_for(settings)
    )
    assert refused_naming(response, "limit"), response.json


def test_limit_in_plain_digits_is_read(client: FlaskClient, settings: Settings) -> None:
    response = client.get(
        FEED, query_string={"userId": "u1", "limit": "5"}, headers=headers_for(settings)
    )
    assert response.status_code == 200, response.json
    assert response.json is not None and len(response.json["items"]) == 5


def next_cursor(client: FlaskClient, settings: Settings) -> str:
    response = client.get(
        FEED, query_string={"userId": "u1", "limit": "2"}, headers=headers_for(settings)
    )
    assert response.status_code == 200, response.json
    assert response.json is not None
    cursor: str = response.json["nextCursor"]
    return cursor


def test_a_cursor_spelt_other_than_issued_is_refused(
    client: FlaskClient, settings: Settings
) -> None:
    cursor = next_cursor(client, settings)
    body, _, signature = cursor.partition(".")
    spare_bit = signature[:-1] + ALPHABET[ALPHABET.index(signature[-1]) ^ 1]
    for spelling in (f"{cursor}==", f"{cursor}=", f"{body}.{spare_bit}", f"{body}==.{signature}"):
        response = client.get(
            FEED, query_string={"userId": "u1", "cursor": spelling}, headers=headers_for(settings)
        )
        assert refused_naming(response, "cursor"), (spelling, response.json)
    issued = client.get(
        FEED, query_string={"userId": "u1", "cursor": cursor}, headers=headers_for(settings)
    )
    assert issued.status_code == 200, issued.json


def test_the_document_states_the_cursor_spelling_and_every_server_refusal() -> None:
    document = openapi_document(OPERATIONS, "test")
    (cursor,) = [p for p in document["paths"][FEED]["get"]["parameters"] if p["name"] == "cursor"]
    text_form = cursor["schema"]["anyOf"][0]
    assert (text_form["pattern"], text_form["maxLength"]) == (CURSOR_PATTERN, MAX_CURSOR_LENGTH)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert {"400", "414", "431", "501"} <= set(operation["responses"]), (path, method)


def test_readyz_tells_an_anonymous_remote_caller_only_the_status(client: FlaskClient) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        response = client.get("/readyz", headers=headers, environ_base=REMOTE)
        assert response.status_code == 200
        assert response.json is not None and set(response.json) == {"status"}


def test_readyz_tells_a_viewer_only_the_status(client: FlaskClient, settings: Settings) -> None:
    response = client.get("/readyz", headers=headers_for(settings), environ_base=REMOTE)
    assert response.json is not None and set(response.json) == {"status"}


def test_readyz_details_are_for_an_operator_token_or_loopback(
    client: FlaskClient, settings: Settings
) -> None:
    operator = client.get(
        "/readyz", headers=headers_for(settings, "ops", service=True), environ_base=REMOTE
    )
    local = client.get("/readyz", environ_base={"REMOTE_ADDR": "::1"})
    for response in (operator, local):
        assert response.json is not None
        assert response.json["components"]["database"]["ok"] is True
