"""Domain errors. The web adapter maps each class to one HTTP status, in one place."""

from __future__ import annotations

from collections.abc import Mapping


class DomainError(Exception):
    """Base of every error a domain service raises on purpose."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(DomainError):
    """The request is malformed; `fields` maps a field path to what is wrong with it."""

    code = "invalid_input"

    def __init__(self, message: str, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.fields: dict[str, str] = dict(fields or {})


class Unauthenticated(DomainError):
    """No credentials, or credentials that are expired, forged or malformed."""

    code = "unauthenticated"


class Forbidden(DomainError):
    """The caller is known but may not act on this resource."""

    code = "forbidden"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    """The request contradicts what is already stored (e.g. an eventId reused for another event)."""

    code = "conflict"


class DependencyUnavailable(DomainError):
    """A dependency the operation cannot do without is down; retrying later may succeed."""

    code = "dependency_unavailable"

    def __init__(self, component: str, message: str, retry_after_s: int = 5) -> None:
        super().__init__(message)
        self.component = component
        self.retry_after_s = retry_after_s
