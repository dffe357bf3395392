"""Builds the Flask app from its dependencies. Opens no connection and reads no environment."""

from __future__ import annotations

import logging
import re
import time
import uuid
from importlib.metadata import PackageNotFoundError, version

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import MethodNotAllowed

from adapters.web import experiments, feed, health, interactions
from adapters.web.dependencies import EXTENSION_KEY, WebDependencies
from adapters.web.errors import register_error_handlers
from adapters.web.openapi import Operation, openapi_document
from adapters.web.rate_limits import apply_rate_limits

log = logging.getLogger("feedrec.access")
#: A client-supplied request id is echoed only when it is this tame.
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

OPERATIONS: tuple[Operation, ...] = (
    *health.OPERATIONS,
    *feed.OPERATIONS,
    *interactions.OPERATIONS,
    *experiments.OPERATIONS,
)


def build_flask_app(deps: WebDependencies) -> Flask:
    app = Flask("feedrec")
    app.config["MAX_CONTENT_LENGTH"] = deps.max_request_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions[EXTENSION_KEY] = deps
    app.register_blueprint(health.blueprint)
    app.register_blueprint(interactions.blueprint)
    app.register_blueprint(feed.blueprint)
    app.register_blueprint(experiments.blueprint)
    apply_rate_limits(app, deps)
    register_error_handlers(app)
    document = openapi_document(OPERATIONS, _package_version())
    # A personal GET ranks, records or verifies on every call: a HEAD would do all of it for a
    # response nobody reads, so it is refused (405) rather than answered.
    no_head = frozenset(op.path for op in OPERATIONS if op.method == "GET" and op.secured)

    @app.get("/openapi.json")
    def openapi() -> Response:
        return jsonify(document)

    @app.before_request
    def start_timer() -> None:
        g.started = time.perf_counter()
        offered = request.headers.get("X-Request-Id", "")
        g.request_id = offered if REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex

    @app.before_request
    def refuse_head_of_personal_gets() -> None:
        if request.method == "HEAD" and request.url_rule and request.url_rule.rule in no_head:
            raise MethodNotAllowed(["GET"], "HEAD is not served here: use GET")

    @app.after_request
    def access_log(response: Response) -> Response:
        elapsed_ms = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
        response.headers["X-Request-Id"] = g.get("request_id", "")
        # Feeds and errors are personal: no shared cache keeps them; no browser sniffs a type.
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers["X-Content-Type-Options"] = "nosniff"
        # Never log headers or bodies: they carry tokens and viewers' data.
        deps.metrics.timing(
            "feed.request.latency_ms",
            elapsed_ms,
            {
                "route": request.url_rule.rule if request.url_rule else "unmatched",
                "status": str(response.status_code),
            },
        )
        log.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round(elapsed_ms, 2),
                "request_id": g.get("request_id", ""),
            },
        )
        return response

    return app


def _package_version() -> str:
    try:
        return version("feedrec")
    except PackageNotFoundError:
        return "0.0.0"
