from __future__ import annotations

from typing import Protocol

from domain.auth import Principal


class TokenVerifier(Protocol):
    def verify(self, token: str) -> Principal:
        """The principal a bearer token stands for.

        Raises `domain.errors.Unauthenticated` when the token is malformed, forged, expired,
        unsigned (`alg: none`) or signed with an algorithm the service does not accept.
        """
        ...
