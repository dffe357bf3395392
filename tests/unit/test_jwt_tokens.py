"""Bearer tokens: what is accepted and everything that is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from adapters.jwt_tokens import JwtTokens
from domain.auth import SERVICE_SCOPE
from domain.errors import Unauthenticated

pytestmark = pytest.mark.unit

SECRET = "s" * 48
tokens = JwtTokens(SECRET, audience="feedrec")


def claims(**extra: object) -> dict[str, object]:
    base: dict[str, object] = {
        "sub": "u1",
        "aud": "feedrec",
        "exp": datetime.now(UTC) + timedelta(minutes=5),
    }
    base.update(extra)
    return base


def test_an_issued_token_verifies_to_its_subject_and_scopes() -> None:
    principal = tokens.verify(tokens.issue("u1", scopes=[SERVICE_SCOPE]))
    assert principal.subject == "u1"
    assert principal.is_service


@pytest.mark.parametrize(
    "token",
    [
        jwt.encode(claims(exp=datetime.now(UTC) - timedelta(minutes=5)), SECRET, "HS256"),
        jwt.encode(claims(), "another-secret-that-is-long-enough-000000", "HS256"),
        jwt.encode(claims(aud="someone-else"), SECRET, "HS256"),
        jwt.encode({"sub": "u1", "aud": "feedrec"}, SECRET, "HS256"),  # no exp
        jwt.encode(claims(sub=""), SECRET, "HS256"),
        "not-a-jwt",
    ],
    ids=["expired", "forged", "wrong-audience", "no-expiry", "empty-subject", "garbage"],
)
def test_bad_tokens_are_refused(token: str) -> None:
    with pytest.raises(Unauthenticated):
        tokens.verify(token)


def _unsigned(payload: dict[str, object]) -> str:
    def part(data: dict[str, object]) -> str:
        return (
            base64.urlsafe_b64encode(json.dumps(data, default=str).encode()).rstrip(b"=").decode()
        )

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


def test_alg_none_is_refused() -> None:
    payload = claims(exp=int((datetime.now(UTC) + timedelta(minutes=5)).timestamp()))
    with pytest.raises(Unauthenticated):
        tokens.verify(_unsigned(payload))


def test_rs256_is_accepted_only_with_a_configured_public_key() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    token = jwt.encode(claims(), key, algorithm="RS256")
    assert JwtTokens(SECRET, "feedrec", public_key_pem=public_pem).verify(token).subject == "u1"
    with pytest.raises(Unauthenticated):
        tokens.verify(token)


def test_the_public_key_cannot_be_used_as_an_hs256_secret() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    verifier = JwtTokens(SECRET, "feedrec", public_key_pem=public_pem)
    header = {"alg": "HS256", "typ": "JWT"}
    signing_input = ".".join(
        base64.urlsafe_b64encode(json.dumps(part, default=str).encode()).rstrip(b"=").decode()
        for part in (header, claims(exp=int(datetime.now(UTC).timestamp()) + 300))
    )
    signature = hmac.new(public_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
    forged = signing_input + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()
    with pytest.raises(Unauthenticated):
        verifier.verify(forged)
