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


# --- verified tokens are remembered until they expire --------------------------------------------


class CountingDecode:
    def __init__(self) -> None:
        self.calls = 0
        self._decode = jwt.decode

    def __call__(self, *args: object, **kwargs: object) -> object:
        self.calls += 1
        return self._decode(*args, **kwargs)  # type: ignore[arg-type]


def test_a_token_verified_once_is_not_verified_again(monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = JwtTokens(SECRET, audience="feedrec")
    decode = CountingDecode()
    monkeypatch.setattr(jwt, "decode", decode)
    token = fresh.issue("u1", scopes=[SERVICE_SCOPE])

    first, second = fresh.verify(token), fresh.verify(token)

    assert first == second and first.subject == "u1" and first.is_service
    assert decode.calls == 1


def test_a_remembered_token_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = JwtTokens(SECRET, audience="feedrec", leeway_s=30)
    token = fresh.issue("u1", ttl_s=60)
    issued_at = datetime.now(UTC).timestamp()
    fresh.verify(token)

    monkeypatch.setattr("adapters.jwt_tokens.time.time", lambda: issued_at + 60 + 29)
    assert fresh.verify(token).subject == "u1"  # within the leeway
    monkeypatch.setattr("adapters.jwt_tokens.time.time", lambda: issued_at + 60 + 32)
    with pytest.raises(Unauthenticated, match="expired"):
        fresh.verify(token)


def test_a_refused_token_is_never_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = JwtTokens(SECRET, audience="feedrec")
    forged = jwt.encode(claims(), "x" * 48, algorithm="HS256")
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            fresh.verify(forged)


def test_the_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("adapters.jwt_tokens.VERIFIED_CACHE_SIZE", 3)
    fresh = JwtTokens(SECRET, audience="feedrec")
    decode = CountingDecode()
    monkeypatch.setattr(jwt, "decode", decode)
    issued = [fresh.issue(f"u{n}") for n in range(4)]
    for token in issued:
        fresh.verify(token)
    fresh.verify(issued[3])  # still remembered
    assert decode.calls == 4
    fresh.verify(issued[0])  # the oldest was forgotten: verified again
    assert decode.calls == 5
