"""POST /feed/interactions through the Flask app, with real JWTs and a real SQLite database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from adapters.sql.migrations import upgrade_database
from app.bootstrap import token_codec
from app.settings import Settings
from app.web import create_app
from domain.auth import SERVICE_SCOPE
from tests.web_support import an_event, bearer, error_of, settings_for

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    chosen = settings_for(tmp_path, max_request_bytes=64 * 1024)
    upgrade_database(chosen.resolved_database_url)
    return chosen


@pytest.fixture
def client(settings: Settings) -> Iterator[FlaskClient]:
    app = create_app(settings, start_background=False)
    with app.test_client() as test_client:
        yield test_client


def token_for(settings: Settings, user: str, service: bool = False) -> str:
    return token_codec(settings).issue(user, [SERVICE_SCOPE] if service else [])


def stored_rows(settings: Settings) -> tuple[int, int]:
    engine = create_engine(settings.resolved_database_url)
    with engine.connect() as connection:
        interactions = connection.execute(
            text("SELECT count(*) FROM user_interactions")
        ).scalar_one()
        outbox = connection.execute(text("SELECT count(*) FROM outbox")).scalar_one()
    engine.dispose()
    return interactions, outbox


def test_an_event_is_stored_with_its_outbox_message(
    client: FlaskClient, settings: Settings
) -> None:
    response = client.post(
        "/feed/interactions",
        json=an_event(eventId="e-1"),
        headers=bearer(token_for(settings, "u1")),
    )
    assert response.status_code == 202
    assert response.json == {"accepted": 1, "eventIds": ["e-1"]}
    assert stored_rows(settings) == (1, 1)


def test_a_retried_event_is_stored_once(client: FlaskClient, settings: Settings) -> None:
    headers = bearer(token_for(settings, "u1"))
    event = an_event(eventId="e-retry")
    for _ in range(3):
        assert client.post("/feed/interactions", json=event, headers=headers).status_code == 202
    assert stored_rows(settings) == (1, 1)


def test_an_event_id_reused_for_another_event_is_a_conflict(
    client: FlaskClient, settings: Settings
) -> None:
    headers = bearer(token_for(settings, "u1"))
    client.post("/feed/interactions", json=an_event(eventId="e-9"), headers=headers)
    response = client.post(
        "/feed/interactions", json=an_event(eventId="e-9", videoId="v2"), headers=headers
    )
    assert response.status_code == 409
    assert error_of(response.json)["code"] == "conflict"
    assert stored_rows(settings) == (1, 1)


def test_a_batch_is_stored_whole(client: FlaskClient, settings: Settings) -> None:
    events = [an_event(eventId=f"b-{i}", videoId=f"v{i}") for i in range(50)]
    response = client.post(
        "/feed/interactions", json={"events": events}, headers=bearer(token_for(settings, "u1"))
    )
    assert response.status_code == 202
    assert response.json is not None and response.json["accepted"] == 50
    assert stored_rows(settings) == (50, 50)


def test_one_bad_event_rejects_the_whole_batch_naming_its_field(
    client: FlaskClient, settings: Settings
) -> None:
    events = [an_event(videoId=f"v{i}") for i in range(5)]
    events[3]["watchTime"] = -5
    response = client.post(
        "/feed/interactions", json={"events": events}, headers=bearer(token_for(settings, "u1"))
    )
    assert response.status_code == 400
    assert list(error_of(response.json)["fields"]) == ["events[3].watchTime"]
    assert stored_rows(settings) == (0, 0)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"interactionType": "stare"}, "interactionType"),
        ({"watchTime": -1}, "watchTime"),
        ({"watchTime": 86_400_001}, "watchTime"),
        ({"watchTime": "12"}, "watchTime"),
        ({"watchTime": 1.5}, "watchTime"),
        ({"timestamp": "2026-11-24T10:00:00"}, "timestamp"),
        ({"timestamp": "2099-01-01T00:00:00Z"}, "timestamp"),
        ({"timestamp": 1_700_000_000}, "timestamp"),
        ({"userId": ""}, "userId"),
        ({"videoId": "v" * 129}, "videoId"),
        ({"surprise": True}, "surprise"),
    ],
)
def test_invalid_fields_get_400_with_the_field_named_and_nothing_stored(
    client: FlaskClient, settings: Settings, change: dict[str, object], field: str
) -> None:
    event = an_event() | change
    response = client.post(
        "/feed/interactions", json=event, headers=bearer(token_for(settings, "u1"))
    )
    assert response.status_code == 400, response.json
    assert field in error_of(response.json)["fields"]
    assert stored_rows(settings) == (0, 0)


def test_a_missing_field_is_named(client: FlaskClient, settings: Settings) -> None:
    event = an_event()
    del event["videoId"]
    response = client.post(
        "/feed/interactions", json=event, headers=bearer(token_for(settings, "u1"))
    )
    assert response.status_code == 400
    assert "videoId" in error_of(response.json)["fields"]


def test_wrong_content_type_is_415(client: FlaskClient, settings: Settings) -> None:
    response = client.post(
        "/feed/interactions",
        data="userId=u1",
        content_type="application/x-www-form-urlencoded",
        headers=bearer(token_for(settings, "u1")),
    )
    assert response.status_code == 415
    assert error_of(response.json)["code"] == "unsupported_media_type"


def test_a_body_over_the_limit_is_413(client: FlaskClient, settings: Settings) -> None:
    events = [an_event(videoId="v" * 100) for _ in range(400)]
    response = client.post(
        "/feed/interactions", json={"events": events}, headers=bearer(token_for(settings, "u1"))
    )
    assert response.status_code == 413
    assert stored_rows(settings) == (0, 0)


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[" * 20_000 + b"]" * 20_000, b'{"events": ' * 5_000, b"\xff"],
    ids=["malformed", "deep-array", "deep-object", "not-utf8"],
)
def test_malformed_or_absurdly_deep_json_is_400(
    client: FlaskClient, settings: Settings, body: bytes
) -> None:
    response = client.post(
        "/feed/interactions",
        data=body,
        content_type="application/json",
        headers=bearer(token_for(settings, "u1")),
    )
    assert response.status_code == 400
    assert error_of(response.json)["code"] == "invalid_input"


def test_more_than_500_events_is_400(client: FlaskClient, settings: Settings) -> None:
    events = [{"userId": "u1"}] * 501
    response = client.post(
        "/feed/interactions", json={"events": events}, headers=bearer(token_for(settings, "u1"))
    )
    assert response.status_code == 400
    assert "events" in error_of(response.json)["fields"]


def test_no_token_is_401_with_a_challenge(client: FlaskClient) -> None:
    response = client.post("/feed/interactions", json=an_event())
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert error_of(response.json)["code"] == "unauthenticated"


def test_an_expired_token_is_401(client: FlaskClient, settings: Settings) -> None:
    expired = token_codec(settings).issue("u1", ttl_s=-120)
    response = client.post("/feed/interactions", json=an_event(), headers=bearer(expired))
    assert response.status_code == 401


def test_a_token_signed_with_another_secret_is_401(client: FlaskClient, tmp_path: Path) -> None:
    other = settings_for(tmp_path, jwt_secret="another-secret-" + "y" * 40)
    forged = token_codec(other).issue("u1")
    response = client.post("/feed/interactions", json=an_event(), headers=bearer(forged))
    assert response.status_code == 401
    assert stored_rows(settings_for(tmp_path)) == (0, 0)


def test_a_viewer_writing_for_another_user_is_403(client: FlaskClient, settings: Settings) -> None:
    response = client.post(
        "/feed/interactions", json=an_event("u2"), headers=bearer(token_for(settings, "u1"))
    )
    assert response.status_code == 403
    assert error_of(response.json)["code"] == "forbidden"
    assert stored_rows(settings) == (0, 0)


def test_a_service_token_writes_for_any_user(client: FlaskClient, settings: Settings) -> None:
    events = [an_event("u2"), an_event("u3")]
    response = client.post(
        "/feed/interactions",
        json={"events": events},
        headers=bearer(token_for(settings, "ingest", service=True)),
    )
    assert response.status_code == 202


def test_injection_strings_are_stored_verbatim(client: FlaskClient, settings: Settings) -> None:
    hostile = "'); DROP TABLE user_interactions; -- <script>alert(1)</script>"
    response = client.post(
        "/feed/interactions",
        json=an_event(videoId=hostile, eventId="e-hostile"),
        headers=bearer(token_for(settings, "u1")),
    )
    assert response.status_code == 202
    engine = create_engine(settings.resolved_database_url)
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT video_id FROM user_interactions")).scalar_one()
    engine.dispose()
    assert stored == hostile
