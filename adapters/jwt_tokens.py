"""Bearer JWTs with PyJWT. Implements `ports.auth.TokenVerifier`; `issue` signs the tokens the
CLI hands out (`feedrec token`) and the tests use.

HS256 with the shared secret is always accepted; RS256 too when a public key is configured.
The algorithm list is fixed here, never taken from the token, so `alg: none` and algorithm
confusion (an RS256 public key used as an HS256 secret) are refused. With `max_lifetime_s`,
a viewer token must carry `iat` and live at most that long (`exp - iat`); with `issuer`, its
`iss` must be that issuer.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import jwt

from domain.auth import Principal
from domain.errors import Unauthenticated
from domain.interactions import id_problem

ISSUER = "feedrec"
#: How many verified tokens each process remembers (a client sends its token with every call).
VERIFIED_CACHE_SIZE = 4096


class JwtTokens:
    def __init__(
        self,
        secret: str,
        audience: str,
        leeway_s: int = 30,
        public_key_pem: str | None = None,
        *,
        max_lifetime_s: int | None = None,
        issuer: str = "",
    ) -> None:
        if len(secret) < 32:
            raise ValueError("the HS256 secret must be at least 32 characters")
        self._secret = secret
        self._audience = audience
        self._leeway_s = leeway_s
        self._public_key = public_key_pem
        self._max_lifetime_s = max_lifetime_s
        self._issuer = issuer
        # token -> (principal, its exp): a token verified once is the same token until it
        # expires, so its signature is not checked again (a tenth of a feed page's CPU).
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, token: str) -> Principal:
        with self._lock:
            remembered = self._verified.get(token)
            if remembered is not None:
                self._verified.move_to_end(token)
        if remembered is not None:
            principal, expires_at = remembered
            if time.time() <= expires_at + self._leeway_s:
                return principal
            with self._lock:
                self._verified.pop(token, None)
            raise Unauthenticated("the token has expired")
        principal, expires_at = self._verify_signed(token)
        with self._lock:
            self._verified[token] = (principal, expires_at)
            if len(self._verified) > VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        return principal

    def _verify_signed(self, token: str) -> tuple[Principal, float]:
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
            if algorithm == "HS256":
                key: str = self._secret
            elif algorithm == "RS256" and self._public_key:
                key = self._public_key
            else:
                raise Unauthenticated(f"tokens signed with {algorithm!r} are not accepted")
            required = ["exp", "sub", "aud"]
            required += ["iat"] if self._max_lifetime_s is not None else []
            required += ["iss"] if self._issuer else []
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self._audience,
                issuer=self._issuer or None,
                leeway=self._leeway_s,
                options={"require": required},
            )
        except jwt.ExpiredSignatureError as err:
            raise Unauthenticated("the token has expired") from err
        except jwt.PyJWTError as err:
            raise Unauthenticated("the token is not valid") from err
        subject = claims["sub"]
        if not isinstance(subject, str) or id_problem(subject):
            raise Unauthenticated("the token's subject is not a valid user id")
        scope = claims.get("scope", "")
        scopes = frozenset(scope.split()) if isinstance(scope, str) else frozenset()
        principal = Principal(subject=subject, scopes=scopes)
        # Service tokens are minted for back-end callers by their operators; a viewer token
        # lives on a device, so how long a leaked one stays usable is bounded.
        if self._max_lifetime_s is not None and not principal.is_service:
            lifetime = float(claims["exp"]) - float(claims["iat"])
            if lifetime > self._max_lifetime_s:
                raise Unauthenticated(
                    f"a viewer token may live at most {self._max_lifetime_s} seconds"
                )
        return principal, float(claims["exp"])

    def issue(self, subject: str, scopes: Iterable[str] = (), ttl_s: int = 3600) -> str:
        now = datetime.now(UTC)
        claims: dict[str, object] = {
            "sub": subject,
            "aud": self._audience,
            "iss": self._issuer or ISSUER,
            "iat": now,
            "exp": now + timedelta(seconds=ttl_s),
        }
        scope = " ".join(sorted(set(scopes)))
        if scope:
            claims["scope"] = scope
        return jwt.encode(claims, self._secret, algorithm="HS256")
