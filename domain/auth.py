"""Who is calling, and what they may do."""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import Forbidden

#: A token carrying this scope acts for any viewer (back-end services, the data team's tools).
SERVICE_SCOPE = "feed:service"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: `subject` is the viewer's userId (the token's `sub`)."""

    subject: str
    scopes: frozenset[str] = frozenset()

    @property
    def is_service(self) -> bool:
        return SERVICE_SCOPE in self.scopes


def ensure_may_act_for(principal: Principal, user_id: str) -> None:
    """A viewer reads only their own feed and writes only their own interactions."""
    if principal.is_service or principal.subject == user_id:
        return
    raise Forbidden(f"this token may not act for user {user_id!r}")


def ensure_operator(principal: Principal) -> None:
    """Operator views (the experiment readout) are for `feed:service` tokens, not viewers."""
    if not principal.is_service:
        raise Forbidden("this needs an operator token (scope feed:service)")
