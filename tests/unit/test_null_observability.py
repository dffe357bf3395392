"""Analytics and metrics switched off by configuration: they satisfy the ports and do nothing."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from adapters.null_observability import NullAnalytics, NullMetrics
from domain.feed import Algorithm, FallbackReason, FeedServed
from ports.observability import Analytics, Metrics

pytestmark = pytest.mark.unit


def test_switched_off_analytics_and_metrics_accept_every_call_and_do_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # typed as the ports, so mypy checks that the null objects implement them
    analytics: Analytics = NullAnalytics()
    metrics: Metrics = NullMetrics()
    threads_before = threading.active_count()

    with caplog.at_level("DEBUG"):
        analytics.feed_served(
            FeedServed(
                user_id="u-1",
                feed_session_id="fs-1",
                algorithm=Algorithm.TRENDING,
                fallback_reason=FallbackReason.COLD_START,
                experiment_variant_id=None,
                model_version=None,
                page=1,
                item_count=20,
                served_at=datetime(2024, 5, 1, tzinfo=UTC),
            )
        )
        metrics.fallback(FallbackReason.DEADLINE, "control")
        metrics.timing("feed.request.latency_ms", 12.5, {"route": "feed"})
        metrics.gauge("feed.model.circuit_open", 1)
        metrics.increment("feed.kafka.publish_failures")
        NullAnalytics().close()
        NullMetrics().close()

    assert caplog.records == []
    assert threading.active_count() == threads_before
