"""The Datadog dashboard and monitors under ops/datadog/ name only metrics the code emits: a
renamed metric fails here, not silently on an empty graph at 3 a.m."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
OPS = ROOT / "ops" / "datadog"
#: Where metrics are sent from.
SOURCES = ("domain", "adapters", "app")
#: Series Datadog derives from a histogram (what `Metrics.timing` sends).
HISTOGRAM_SERIES = (".95percentile", ".median", ".avg", ".max", ".count")
_QUERIED = re.compile(r"\b(?:avg|sum|min|max):([a-z][a-z0-9_.]*)\{")
_METRIC = re.compile(r"^(?:feed|retrain)\.[a-z0-9_.]+$")


def emitted_names() -> tuple[set[str], set[str]]:
    """(exact names, prefixes of names built with an f-string) of the code's metrics: every
    string constant shaped like one, in the modules that send metrics."""
    exact: set[str] = set()
    prefixes: set[str] = set()
    for package in SOURCES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    if _METRIC.match(node.value):
                        exact.add(node.value)
                elif isinstance(node, ast.JoinedStr) and node.values:
                    head = node.values[0]
                    if isinstance(head, ast.Constant) and _METRIC.match(str(head.value)):
                        prefixes.add(str(head.value))
    return exact, prefixes


def queried_names() -> dict[str, list[str]]:
    """Metric name -> the ops files' queries naming it."""
    queries: list[str] = []
    dashboard = json.loads((OPS / "dashboard.json").read_text())
    for widget in dashboard["widgets"]:
        queries += [request["q"] for request in widget["definition"]["requests"]]
    queries += [monitor["query"] for monitor in json.loads((OPS / "monitors.json").read_text())]
    named: dict[str, list[str]] = {}
    for query in queries:
        for name in _QUERIED.findall(query):
            named.setdefault(name, []).append(query)
    return named


def is_emitted(name: str, exact: set[str], prefixes: set[str]) -> bool:
    candidates = {name} | {name.removesuffix(s) for s in HISTOGRAM_SERIES if name.endswith(s)}
    return any(
        c in exact or any(c.startswith(p) and c[len(p) :].isidentifier() for p in prefixes)
        for c in candidates
    )


def test_every_metric_the_dashboard_and_monitors_name_is_one_the_code_emits() -> None:
    exact, prefixes = emitted_names()
    named = queried_names()
    assert named, "the queries name metrics"
    unknown = {name: q for name, q in named.items() if not is_emitted(name, exact, prefixes)}
    assert unknown == {}


def test_a_metric_the_code_never_emits_is_caught() -> None:
    exact, prefixes = emitted_names()
    assert is_emitted("feed.kafka.publish_latency_ms.95percentile", exact, prefixes)
    assert is_emitted("retrain.model.auc", exact, prefixes)
    assert not is_emitted("feed.kafka.publish_latency", exact, prefixes)
    assert not is_emitted("feed.outbox.backlog_size", exact, prefixes)


def test_the_issue_s_four_monitors_are_there() -> None:
    monitors = json.loads((OPS / "monitors.json").read_text())
    queries = " ".join(monitor["query"] for monitor in monitors)
    for metric in (
        "feed.recommendation.fallback",
        "feed.kafka.publish_latency_ms.95percentile",
        "feed.outbox.backlog",
        "retrain.runs{status:failed",
    ):
        assert metric in queries
    for monitor in monitors:
        assert monitor["message"] and monitor["options"]["thresholds"]["critical"] is not None
