"""Data quality of the nightly export: what clients post through the API is what the parquet
export holds, value for value, each event exactly once.

The Flask app (test client, real JWTs) stores into SQLite or a real PostgreSQL; the export
writes a local parquet dataset, read back with pyarrow.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from flask.testing import FlaskClient

from adapters.parquet_export import (
    EXPORT_SCHEMA,
    PARTITIONING,
    ParquetExporter,
    export_filesystem,
    read_training_window,
)
from adapters.sql.engine import make_engine
from adapters.sql.export_source import SqlExportSource
from adapters.sql.migrations import upgrade_database
from app.bootstrap import token_codec
from app.settings import Settings
from app.web import create_app, shutdown
from domain.auth import SERVICE_SCOPE
from domain.interactions import InteractionType
from tests.web_support import bearer, settings_for

pytestmark = pytest.mark.e2e

N = 300
OFFSETS = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    url = "" if request.param == "sqlite" else request.getfixturevalue("fresh_postgres_url")
    chosen = settings_for(tmp_path, database_url=url, export_chunk_rows=64)
    upgrade_database(chosen.resolved_database_url)
    return chosen


@pytest.fixture
def client(settings: Settings) -> Iterator[FlaskClient]:
    app = create_app(settings, start_background=False)
    try:
        with app.test_client() as test_client:
            yield test_client
    finally:
        shutdown(app)


def events_to_post(now: datetime) -> list[dict[str, Any]]:
    """N varied events: microsecond timestamps in several offsets over the last 20 days,
    unicode and hostile ids, optional fields present or not, some without an eventId."""
    rng = random.Random(6)
    events = []
    for n in range(N):
        moment = now - timedelta(
            seconds=rng.randrange(20 * 86_400), microseconds=rng.randrange(10**6)
        )
        event: dict[str, Any] = {
            "userId": rng.choice(["u-1", "u-2", "ユーザー", "'); DROP TABLE user_interactions;--"]),
            "videoId": f"v-{rng.randrange(40)}",
            "interactionType": rng.choice(list(InteractionType)).value,
            "watchTime": rng.randrange(200_000),
            "timestamp": moment.astimezone(OFFSETS[n % len(OFFSETS)]).isoformat(),
        }
        if n % 5:
            event["eventId"] = f"evt-{n}-é"
        if n % 3 == 0:
            event |= {
                "feedSessionId": f"fs-{n % 17}",
                "algorithm": rng.choice(["lightfm", "trending"]),
                "experimentVariantId": "control",
            }
        events.append(event)
    return events


def post(client: FlaskClient, body: dict[str, Any], token: str) -> list[str]:
    response = client.post("/feed/interactions", json=body, headers=bearer(token))
    assert response.status_code == 202, response.json
    assert response.json is not None
    ids: list[str] = response.json["eventIds"]
    return ids


def exported_rows(uri: str) -> list[dict[str, Any]]:
    fs, root = export_filesystem(uri, None)
    schema = EXPORT_SCHEMA.append(pa.field("date", pa.string()))
    dataset = ds.dataset(root, schema=schema, filesystem=fs, partitioning=PARTITIONING)
    rows: list[dict[str, Any]] = dataset.to_table().to_pylist()
    return rows


def test_every_posted_event_is_exported_once_with_identical_values(
    client: FlaskClient, settings: Settings
) -> None:
    # given N events posted singly and in batches, one batch and one event retried
    started = datetime.now(UTC)
    events = events_to_post(started)
    token = token_codec(settings).issue("ingest", [SERVICE_SCOPE])
    stored_ids = [event_id for event in events[:40] for event_id in post(client, event, token)]
    for first in range(40, N, 130):
        batch = {"events": events[first : first + 130]}
        stored_ids += post(client, batch, token)
    retried = [event for event in events[40:170] if "eventId" in event]
    assert post(client, {"events": retried}, token) == [event["eventId"] for event in retried]
    post(client, events[1], token)
    finished = datetime.now(UTC)

    # when the nightly export runs a lag later
    engine = make_engine(settings.resolved_database_url)
    try:
        exported = ParquetExporter(
            SqlExportSource(engine),
            settings.resolved_export_uri,
            chunk_rows=settings.export_chunk_rows,
            lag=timedelta(seconds=settings.export_lag_s),
        ).export_new(finished + timedelta(seconds=settings.export_lag_s + 1))
    finally:
        engine.dispose()

    # then the export holds exactly the N events, each once, as posted
    assert exported == N
    rows = exported_rows(settings.resolved_export_uri)
    assert sorted(row["event_id"] for row in rows) == sorted(stored_ids)
    assert len(set(stored_ids)) == N
    by_id = {row["event_id"]: row for row in rows}
    for event, event_id in zip(events, stored_ids, strict=True):
        row = by_id[event_id]
        occurred = datetime.fromisoformat(event["timestamp"])
        assert (
            row["user_id"],
            row["video_id"],
            row["interaction_type"],
            row["watch_time_ms"],
            row["occurred_at"],
            row["feed_session_id"],
            row["algorithm"],
            row["experiment_variant_id"],
            row["recommendation_score"],  # none of these videos was served in those sessions
            row["date"],
        ) == (
            event["userId"],
            event["videoId"],
            event["interactionType"],
            event["watchTime"],
            occurred,
            event.get("feedSessionId"),
            event.get("algorithm"),
            event.get("experimentVariantId"),
            None,
            occurred.astimezone(UTC).date().isoformat(),
        )
        assert started <= row["received_at"] <= finished
    # and training reads all of them back
    window = read_training_window(
        settings.resolved_export_uri, started - timedelta(days=21), finished
    )
    assert len(window) == N
