"""Viewer-token lifetime and issuer (issue #15, item 11): a stolen 100-year token, a token
from another issuer and a token without `iat` are refused when the service says so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from adapters.jwt_tokens import JwtTokens
from domain.auth import SERVICE_SCOPE
from domain.errors import Unauthenticated

pytestmark = pytest.mark.unit

SECRET = "s" * 48
DAY = 86_400
tokens = JwtTokens(SECRET, audience="feedrec", max_lifetime_s=DAY, issuer="https://id.example")


def signed(lifetime: timedelta, **extra: object) -> str:
    now = datetime.now(UTC)
    claims: dict[str, object] = {
        "sub": "u1",
        "aud": "feedrec",
        "iss": "https://id.example",
        "iat": now,
        "exp": now + lifetime,
    }
    claims.update(extra)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, SECRET, "HS256")


def test_a_viewer_token_within_the_lifetime_is_accepted() -> None:
    assert tokens.verify(signed(timedelta(hours=23))).subject == "u1"


@pytest.mark.parametrize(
    ("case", "token"),
    [
        ("100-year expiry", signed(timedelta(days=36_500))),
        ("a second over the lifetime", signed(timedelta(seconds=DAY + 1))),
        ("no iat", signed(timedelta(hours=1), iat=None)),
        (
            "iat in the future",
            signed(timedelta(hours=1), iat=datetime.now(UTC) + timedelta(hours=1)),
        ),
        ("another issuer", signed(timedelta(hours=1), iss="https://evil.example")),
        ("no issuer", signed(timedelta(hours=1), iss=None)),
    ],
)
def test_tokens_breaking_the_lifetime_or_issuer_rules_are_refused(case: str, token: str) -> None:
    with pytest.raises(Unauthenticated):
        tokens.verify(token)


def test_a_service_token_may_live_longer() -> None:
    token = signed(timedelta(days=30), scope=SERVICE_SCOPE)
    assert tokens.verify(token).is_service


def test_issued_tokens_carry_the_configured_issuer_and_pass() -> None:
    token = tokens.issue("u1", ttl_s=3600)
    assert jwt.decode(token, options={"verify_signature": False})["iss"] == "https://id.example"
    assert tokens.verify(token).subject == "u1"


def test_without_the_settings_neither_rule_applies() -> None:
    lenient = JwtTokens(SECRET, audience="feedrec")
    assert lenient.verify(signed(timedelta(days=36_500), iat=None, iss=None)).subject == "u1"
