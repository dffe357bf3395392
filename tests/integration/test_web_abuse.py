"""Hostile callers against both endpoints: bad tokens, bad bodies, tampered cursors, injection
strings, rate limits, and logs that must never hold a token or a secret."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from adapters.sql.migrations import upgrade_database
from app.bootstrap import Overrides, cursor_codec, token_codec
from app.logs import json_formatter
from app.settings import Settings
from app.web import create_app
from domain.auth import SERVICE_SCOPE
from tests.fakes_feed import FakeRecommender
from tests.web_support import SECRET, an_event, bearer, error_of, settings_for

pytestmark = pytest.mark.integration

FEED = "/feed/recommendations"
INTERACTIONS = "/feed/interactions"
HOSTILE = [
    "'; DROP TABLE user_interactions; --",
    "<script>alert(1)</script>",
    "{{7*7}}",
    "%s%s%n",
    "${jndi:ldap://x}",
    "\u202ev\u00edd\u00e9o \U0001f600 \u4e2d\u6587",
]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    chosen = settings_for(tmp_path, max_request_bytes=64 * 1024)
    upgrade_database(chosen.resolved_database_url)
    return chosen


def make_app(settings: Settings) -> Flask:
    return create_app(settings, Overrides(recommender=FakeRecommender()), start_background=False)


@pytest.fixture
def client(settings: Settings) -> Iterator[FlaskClient]:
    with make_app(settings).test_client() as test_client:
        yield test_client


def token_for(settings: Settings, user: str, service: bool = False) -> str:
    return token_codec(settings).issue(user, [SERVICE_SCOPE] if service else [])


def call(client: FlaskClient, endpoint: str, user: str, headers: dict[str, str]) -> Any:
    if endpoint == FEED:
        return client.get(FEED, query_string={"userId": user}, headers=headers)
    return client.post(INTERACTIONS, json=an_event(user), headers=headers)


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(**extra: object) -> dict[str, object]:
    base: dict[str, object] = {
        "sub": "u1",
        "aud": "feedrec",
        "exp": int((datetime.now(UTC) + timedelta(minutes=5)).timestamp()),
    }
    base.update(extra)
    return base


def bad_tokens(settings: Settings) -> dict[str, str]:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    good = token_for(settings, "u1")
    head, _, signature = good.split(".")
    return {
        "forged-secret": jwt.encode(_claims(), "another-secret-" + "y" * 40, algorithm="HS256"),
        "expired": token_codec(settings).issue("u1", ttl_s=-120),
        "alg-none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}.",
        "wrong-audience": jwt.encode(_claims(aud="someone-else"), SECRET, algorithm="HS256"),
        "rs256-without-key": jwt.encode(_claims(), rsa_key, algorithm="RS256"),
        "payload-swapped": f"{head}.{_b64(_claims(sub='u2'))}.{signature}",
        "garbage": "not.a.jwt",
    }


@pytest.mark.parametrize("endpoint", [FEED, INTERACTIONS])
def test_every_kind_of_bad_token_is_401_on_both_endpoints(
    client: FlaskClient, settings: Settings, endpoint: str
) -> None:
    for kind, token in bad_tokens(settings).items():
        response = call(client, endpoint, "u1", bearer(token))
        assert response.status_code == 401, (kind, response.json)
        assert error_of(response.json)["code"] == "unauthenticated"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("endpoint", [FEED, INTERACTIONS])
def test_a_viewer_token_for_another_user_is_403_on_both_endpoints(
    client: FlaskClient, settings: Settings, endpoint: str
) -> None:
    response = call(client, endpoint, "u2", bearer(token_for(settings, "u1")))
    assert response.status_code == 403
    assert error_of(response.json)["code"] == "forbidden"


def test_a_huge_array_is_refused_without_storing_anything(
    client: FlaskClient, settings: Settings
) -> None:
    headers = bearer(token_for(settings, "u1"))
    huge = client.post(
        INTERACTIONS,
        data=b"[" + b"0," * 100_000 + b"0]",
        content_type="application/json",
        headers=headers,
    )
    assert huge.status_code == 413
    within_size = client.post(
        INTERACTIONS,
        data=b"[" + b"0," * 10_000 + b"0]",
        content_type="application/json",
        headers=headers,
    )
    assert within_size.status_code == 400
    assert error_of(within_size.json)["code"] == "invalid_input"


def test_deep_json_inside_a_field_is_400(client: FlaskClient, settings: Settings) -> None:
    nested = "[" * 900 + "]" * 900  # within json's limit; pydantic's is lower
    body = json.dumps(an_event()).replace('"v1"', nested).encode()
    response = client.post(
        INTERACTIONS,
        data=body,
        content_type="application/json",
        headers=bearer(token_for(settings, "u1")),
    )
    assert response.status_code == 400
    assert error_of(response.json)["code"] == "invalid_input"


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json-patch+json",
        "application/merge-patch+json",
        "text/plain",
        "text/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        None,
    ],
)
def test_only_application_json_is_accepted(
    client: FlaskClient, settings: Settings, content_type: str | None
) -> None:
    # A `+json` suffix names another format (JSON Patch means "apply these operations"), so
    # only `application/json` itself counts.
    headers = bearer(token_for(settings, "u1"))
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = client.post(INTERACTIONS, data=json.dumps(an_event()), headers=headers)
    assert response.status_code == 415
    assert error_of(response.json)["code"] == "unsupported_media_type"


def test_application_json_with_a_charset_is_accepted(
    client: FlaskClient, settings: Settings
) -> None:
    response = client.post(
        INTERACTIONS,
        data=json.dumps(an_event()),
        content_type="application/json; charset=utf-8",
        headers=bearer(token_for(settings, "u1")),
    )
    assert response.status_code == 202


def first_page_cursor(client: FlaskClient, settings: Settings, user: str = "u1") -> str:
    response = client.get(
        FEED, query_string={"userId": user, "limit": 5}, headers=bearer(token_for(settings, user))
    )
    assert response.status_code == 200, response.json
    assert response.json is not None
    cursor: str = response.json["nextCursor"]
    return cursor


def test_tampered_cursors_are_400_naming_the_cursor(
    client: FlaskClient, settings: Settings
) -> None:
    mine = first_page_cursor(client, settings, "u1")
    theirs = first_page_cursor(client, settings, "u2")
    body, _, signature = mine.partition(".")
    flipped = ("A" if body[3] != "A" else "B").join((body[:3], body[4:]))
    expired = cursor_codec(settings).encode("s-1", "u1", 1, datetime.now(UTC) - timedelta(days=30))
    tampered = {
        "byte-flipped": f"{flipped}.{signature}",
        "signature-swapped": f"{body}.{theirs.partition('.')[2]}",
        "no-signature": body,
        "another-viewers": theirs,
        "expired": expired,
        "not-base64": "%%%.###",
    }
    headers = bearer(token_for(settings, "u1"))
    for kind, cursor in tampered.items():
        response = client.get(
            FEED, query_string={"userId": "u1", "cursor": cursor}, headers=headers
        )
        assert response.status_code == 400, (kind, response.json)
        assert "cursor" in error_of(response.json)["fields"], kind


@pytest.mark.parametrize("hostile", HOSTILE)
def test_injection_strings_are_stored_and_echoed_verbatim(
    client: FlaskClient, settings: Settings, hostile: str
) -> None:
    headers = bearer(token_for(settings, "u1"))
    posted = client.post(
        INTERACTIONS,
        json=an_event(videoId=hostile, feedSessionId=hostile, experimentVariantId=hostile),
        headers=headers,
    )
    assert posted.status_code == 202, posted.json
    engine = create_engine(settings.resolved_database_url)
    with engine.connect() as connection:
        row = connection.execute(
            text("SELECT video_id, feed_session_id, experiment_variant_id FROM user_interactions")
        ).one()
    engine.dispose()
    assert tuple(row) == (hostile, hostile, hostile)
    served = client.get(
        FEED, query_string={"userId": "u1", "feedSessionId": hostile}, headers=headers
    )
    assert served.status_code == 200, served.json
    assert served.mimetype == "application/json"
    assert served.json is not None and served.json["feedSessionId"] == hostile


def test_logs_never_hold_tokens_or_the_secret(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(settings)

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("failure while serving")

    client = app.test_client()
    good = token_for(settings, "u1")
    tokens = [good, *bad_tokens(settings).values()]
    with caplog.at_level(logging.DEBUG):
        for token in tokens:
            for endpoint in (FEED, INTERACTIONS):
                call(client, endpoint, "u1", bearer(token))
            client.post(
                INTERACTIONS, data=b"{bad", content_type="application/json", headers=bearer(token)
            )
            assert client.get("/boom", headers=bearer(token)).status_code == 500
    formatter = json_formatter()
    lines = [formatter.format(record) for record in caplog.records]
    assert any('"status": 500' in line for line in lines)
    logged = "\n".join(lines)
    assert SECRET not in logged
    for token in tokens:
        for part in (token, *[p for p in token.split(".") if len(p) > 8]):
            assert part not in logged


def test_past_the_limit_a_token_gets_429_and_another_token_still_passes(
    tmp_path: Path,
) -> None:
    settings = settings_for(
        tmp_path, rate_limit_feed="3/minute", rate_limit_interactions="2/minute"
    )
    upgrade_database(settings.resolved_database_url)
    client = make_app(settings).test_client()
    for endpoint, allowed in ((FEED, 3), (INTERACTIONS, 2)):
        mine, theirs = bearer(token_for(settings, "u1")), bearer(token_for(settings, "u2"))
        for _ in range(allowed):
            assert call(client, endpoint, "u1", mine).status_code in (200, 202)
        refused = call(client, endpoint, "u1", mine)
        assert refused.status_code == 429
        assert error_of(refused.json)["code"] == "rate_limited"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        # The subject is the key, not the token: a fresh token for u1 is still refused.
        assert call(client, endpoint, "u1", bearer(token_for(settings, "u1"))).status_code == 429
        assert call(client, endpoint, "u2", theirs).status_code in (200, 202)
    assert client.get("/healthz").status_code == 200
    for _ in range(5):
        assert client.get("/openapi.json").status_code == 200


def test_callers_without_a_token_are_limited_too(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, rate_limit_feed="2/minute")
    upgrade_database(settings.resolved_database_url)
    client = make_app(settings).test_client()
    statuses = [client.get(FEED, query_string={"userId": "u1"}).status_code for _ in range(3)]
    assert statuses == [401, 401, 429]


def test_unverified_tokens_are_limited_under_a_hash_never_the_token(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, rate_limit_feed="2/minute")
    upgrade_database(settings.resolved_database_url)
    app = make_app(settings)
    client = app.test_client()
    forged = bad_tokens(settings)["forged-secret"]
    statuses = [call(client, FEED, "u1", bearer(forged)).status_code for _ in range(3)]
    assert statuses == [401, 401, 429]
    (limiter,) = app.extensions["limiter"]
    keys = " ".join(str(key) for key in limiter.storage.storage)
    assert keys and forged not in keys
    assert all(part not in keys for part in forged.split("."))


def test_empty_limits_disable_rate_limiting(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, rate_limit_feed="", rate_limit_interactions="")
    upgrade_database(settings.resolved_database_url)
    client = make_app(settings).test_client()
    headers = bearer(token_for(settings, "u1"))
    assert all(call(client, FEED, "u1", headers).status_code == 200 for _ in range(150))


def test_a_malformed_limit_fails_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        make_app(settings_for(tmp_path, rate_limit_feed="lots"))
