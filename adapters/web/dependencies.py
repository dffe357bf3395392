"""What the web adapter needs from the composition root, attached to the Flask app."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flask import current_app

from domain.experiment_report import ExperimentReporter
from domain.feed_service import FeedService
from domain.ingestion import InteractionIngestion
from domain.trending import TrendingBoard
from ports.auth import TokenVerifier
from ports.health import HealthCheck
from ports.observability import Metrics

EXTENSION_KEY = "feedrec"


@dataclass(frozen=True)
class WebDependencies:
    token_verifier: TokenVerifier
    ingestion: InteractionIngestion
    feed: FeedService
    trending: TrendingBoard
    metrics: Metrics
    health_checks: Sequence[HealthCheck]
    max_request_bytes: int
    #: flask-limiter limits per caller ("120/minute"); empty means not limited.
    rate_limit_feed: str = ""
    rate_limit_interactions: str = ""
    #: Where the counters live; "memory://" counts per worker process.
    rate_limit_storage_uri: str = "memory://"
    #: The readout of `GET /experiments/report`; None when no experiment is configured.
    experiment_reporter: ExperimentReporter | None = None


def dependencies() -> WebDependencies:
    deps: WebDependencies = current_app.extensions[EXTENSION_KEY]
    return deps
