"""Per-caller rate limits on the feed endpoints (flask-limiter), keyed without the raw token.

A caller is the subject of a token that verifies, else the client address: every failed
authentication from one address counts against one bucket, so rotating bad tokens gains
nothing and the counters grow with addresses, never with tokens. With `memory://` storage
each worker process counts on its own (the 429 says so); a shared store (`redis://`) makes
the limit the configured one for the whole service."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, request
from flask_limiter import Limiter
from limits import parse_many

from adapters.web.dependencies import WebDependencies, dependencies
from domain.errors import DomainError

#: endpoint -> the WebDependencies field holding its limit ("120/minute"; empty: no limit).
LIMITED_ENDPOINTS = {
    "feed.get_recommendations": "rate_limit_feed",
    "interactions.post_interactions": "rate_limit_interactions",
}


def caller_key() -> str:
    """The token's subject when it verifies; the client address when there is no token or it
    does not verify (a key or a log never holds a token)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and token:
        try:
            return f"sub:{dependencies().token_verifier.verify(token).subject}"
        except DomainError:
            pass
    return f"addr:{request.remote_addr or 'unknown'}"


def limit_message(limit: str, storage_uri: str) -> str:
    """What a 429 says the limit is: true per worker process when each counts on its own."""
    stated = " and ".join(str(item) for item in parse_many(limit))
    if storage_uri.strip().startswith("memory://"):
        return f"{stated}, counted by each web worker process on its own"
    return stated


def apply_rate_limits(app: Flask, deps: WebDependencies) -> None:
    """Wrap the limited views. Call after their blueprints are registered. Limits are checked
    before authentication, so a flood of bad tokens is throttled too."""
    chosen = {
        endpoint: str(getattr(deps, name)).strip() for endpoint, name in LIMITED_ENDPOINTS.items()
    }
    chosen = {endpoint: limit for endpoint, limit in chosen.items() if limit}
    if not chosen:
        return
    for limit in chosen.values():
        parse_many(limit)  # a typo in the settings fails at start-up, not on the first request
    limiter = Limiter(
        key_func=caller_key,
        storage_uri=deps.rate_limit_storage_uri,
        headers_enabled=False,  # errors.py writes Retry-After on the 429 itself
        swallow_errors=True,  # a limiter storage outage must not take the API down
    )
    limiter.init_app(app)
    for endpoint, limit in chosen.items():
        message = limit_message(limit, deps.rate_limit_storage_uri)
        limited: Callable[..., Any] = limiter.limit(limit, error_message=message)(
            app.view_functions[endpoint]
        )
        app.view_functions[endpoint] = limited
