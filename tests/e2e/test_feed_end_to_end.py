"""GET /feed/recommendations end to end: the Flask app, the real LightFM model service (gRPC,
a trained model) and a real PostgreSQL, with Segment and DogStatsD checked on the wire."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from adapters.lightfm.trainer import LightFMTrainer
from adapters.model_store.local import LocalModelStore
from adapters.sql.bulk import bulk_insert_interactions
from adapters.sql.migrations import upgrade_database
from adapters.web.dependencies import EXTENSION_KEY, WebDependencies
from app.bootstrap import token_codec
from app.composition.model_service import ModelServiceOverrides, build_model_service
from app.demo_data import as_stored, generate_interactions
from app.settings import Settings
from app.web import create_app, shutdown
from tests.servers import PostgresServer, free_port
from tests.web_support import SECRET, bearer

pytestmark = [pytest.mark.e2e]

NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass
class ModelServer:
    target: str
    server: grpc.Server
    known_user: str


@pytest.fixture(scope="module")
def database_url(postgres_server: PostgresServer) -> Iterator[str]:
    with postgres_server.fresh_database("e2e_feed") as url:
        upgrade_database(url)
        yield url


@pytest.fixture(scope="module")
def model_server(
    tmp_path_factory: pytest.TempPathFactory, database_url: str
) -> Iterator[ModelServer]:
    history = generate_interactions(200, 600, 12_000, days=3, seed=11, end=NOW)
    engine = create_engine(database_url)
    try:
        bulk_insert_interactions(
            engine,
            as_stored(history.events(), "seed"),
        )
    finally:
        engine.dispose()
    artifact = LightFMTrainer(no_components=16, epochs=5, num_threads=1).train(
        history.to_training(), NOW - timedelta(days=3), NOW, NOW
    )
    store = LocalModelStore(tmp_path_factory.mktemp("models"))
    store.put(artifact.info.version, artifact.to_bytes(), artifact.info)
    store.publish(artifact.info.version)
    # built as the `lightfm` process builds it, over this store
    composition = build_model_service(
        Settings(lightfm_bind="127.0.0.1:0", lightfm_max_workers=8),
        ModelServiceOverrides(store=store),
    )
    server, port = composition.listen()
    server.start()
    composition.models.load()
    try:
        yield ModelServer(f"127.0.0.1:{port}", server, artifact.user_ids[0])
    finally:
        server.stop(grace=None).wait()


class Receiver(BaseHTTPRequestHandler):
    batches: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.batches.append({"path": self.path, "body": json.loads(body)})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"success": true}')

    def log_message(self, *args: object) -> None:
        pass


@dataclass
class Wire:
    segment_url: str
    statsd: socket.socket

    def datagrams(self) -> list[str]:
        received = []
        self.statsd.settimeout(2.0)
        try:
            while True:
                received.extend(self.statsd.recv(65_535).decode().split("\n"))
                self.statsd.settimeout(0.3)
        except TimeoutError:
            return received


@pytest.fixture(scope="module")
def wire() -> Iterator[Wire]:
    http = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    try:
        yield Wire(f"http://127.0.0.1:{http.server_address[1]}", udp)
    finally:
        http.shutdown()
        http.server_close()
        udp.close()


def make_app(tmp_path: Path, database_url: str, target: str, wire: Wire) -> Flask:
    settings = Settings(
        data_dir=tmp_path,
        jwt_secret=SECRET,
        database_url=database_url,
        lightfm_target=target,
        feed_pool_size=60,
        segment_write_key="e2e-write-key",
        segment_host=wire.segment_url,
        dd_agent_host="127.0.0.1",
        dd_dogstatsd_port=wire.statsd.getsockname()[1],
    )
    app = create_app(settings, start_background=False)
    deps: WebDependencies = app.extensions[EXTENSION_KEY]
    deps.trending.refresh(datetime.now(UTC))
    return app


@pytest.fixture
def app(
    tmp_path: Path, database_url: str, model_server: ModelServer, wire: Wire
) -> Iterator[Flask]:
    application = make_app(tmp_path, database_url, model_server.target, wire)
    yield application
    shutdown(application)


def token(app: Flask, user: str) -> dict[str, str]:
    settings = Settings(data_dir=Path("."), jwt_secret=SECRET)
    return bearer(token_codec(settings).issue(user))


def feed_cache_rows(database_url: str, session: str) -> list[tuple[int, str, int]]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT page_number, algorithm, items FROM feed_cache "
                    "WHERE feed_session_id = :s ORDER BY page_number"
                ),
                {"s": session},
            ).all()
    finally:
        engine.dispose()
    return [
        (row[0], row[1], len(row[2] if isinstance(row[2], list) else json.loads(row[2])))
        for row in rows
    ]


def walk(
    client: FlaskClient, user: str, headers: dict[str, str], limit: int
) -> list[dict[str, Any]]:
    pages = []
    response = client.get(f"/feed/recommendations?userId={user}&limit={limit}", headers=headers)
    while True:
        assert response.status_code == 200, response.json
        assert response.json is not None
        pages.append(response.json)
        cursor = response.json["nextCursor"]
        if cursor is None:
            return pages
        response = client.get(
            "/feed/recommendations",
            query_string={"userId": user, "limit": limit, "cursor": cursor},
            headers=headers,
        )


def test_a_session_pages_through_lightfm_without_repeats_and_is_recorded(
    app: Flask, model_server: ModelServer, database_url: str
) -> None:
    user = model_server.known_user
    pages = walk(app.test_client(), user, token(app, user), limit=25)
    assert len(pages) == 3  # a pool of 60: 25 + 25 + 10
    assert {p["algorithm"] for p in pages} == {"lightfm"}
    assert {p["fallbackReason"] for p in pages} == {None}
    assert len({p["feedSessionId"] for p in pages}) == 1
    videos = [item["videoId"] for p in pages for item in p["items"]]
    assert len(videos) == len(set(videos)) == 60
    scores = [item["score"] for p in pages for item in p["items"]]
    assert scores == sorted(scores, reverse=True)
    assert [item["rank"] for p in pages for item in p["items"]] == list(range(1, 61))
    assert pages[0]["modelVersion"]
    assert feed_cache_rows(database_url, pages[0]["feedSessionId"]) == [
        (1, "lightfm", 25),
        (2, "lightfm", 25),
        (3, "lightfm", 10),
    ]


def test_a_viewer_the_model_does_not_know_gets_trending_as_a_cold_start(app: Flask) -> None:
    response = app.test_client().get(
        "/feed/recommendations?userId=newcomer&limit=10", headers=token(app, "newcomer")
    )
    assert response.status_code == 200
    body = response.json
    assert body is not None
    assert (body["algorithm"], body["fallbackReason"]) == ("trending", "cold_start")
    assert len(body["items"]) == 10
    assert body["modelVersion"] is None


def test_the_model_service_down_degrades_to_trending_and_tells_segment_and_datadog(
    tmp_path: Path, database_url: str, wire: Wire
) -> None:
    closed = f"127.0.0.1:{free_port()}"
    app = make_app(tmp_path, database_url, closed, wire)
    Receiver.batches.clear()
    wire.datagrams()  # drain
    try:
        response = app.test_client().get(
            "/feed/recommendations?userId=u000001&limit=5", headers=token(app, "u000001")
        )
        assert response.status_code == 200
        assert response.json is not None
        assert response.json["algorithm"] == "trending"
        assert response.json["fallbackReason"] == "unavailable"
    finally:
        shutdown(app)  # flushes Segment and DogStatsD
    datagrams = wire.datagrams()
    assert any(
        d.startswith("_e{") and "feed.recommendation.fallback" in d and "reason:unavailable" in d
        for d in datagrams
    ), datagrams
    assert any(
        d.startswith("feed.recommendation.fallback:1|c") and "reason:unavailable" in d
        for d in datagrams
    ), datagrams
    events = [
        item
        for batch in Receiver.batches
        for item in batch["body"]["batch"]
        if item["event"] == "feed_recommendation_served"
    ]
    assert len(events) == 1
    properties = events[0]["properties"]
    assert properties["algorithm"] == "trending"
    assert properties["fallback_reason"] == "unavailable"
    assert properties["page"] == 1 and properties["item_count"] == 5
    assert properties["feed_session_id"] == response.json["feedSessionId"]


def test_an_interaction_on_a_served_video_keeps_the_score_it_was_served_with(
    app: Flask, model_server: ModelServer, database_url: str
) -> None:
    user = model_server.known_user
    headers = token(app, user)
    client = app.test_client()
    page = client.get(f"/feed/recommendations?userId={user}&limit=3", headers=headers).json
    assert page is not None
    served = page["items"][1]
    response = client.post(
        "/feed/interactions",
        json={
            "eventId": f"e2e-{page['feedSessionId']}",
            "userId": user,
            "videoId": served["videoId"],
            "interactionType": "like",
            "watchTime": 9000,
            "timestamp": datetime.now(UTC).isoformat(),
            "feedSessionId": page["feedSessionId"],
            "algorithm": "lightfm",
        },
        headers=headers,
    )
    assert response.status_code == 202
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            score = connection.execute(
                text("SELECT recommendation_score FROM user_interactions WHERE event_id = :e"),
                {"e": f"e2e-{page['feedSessionId']}"},
            ).scalar_one()
    finally:
        engine.dispose()
    assert score == pytest.approx(served["score"])


def test_bad_parameters_and_tampered_cursors_are_400(app: Flask, model_server: ModelServer) -> None:
    user = model_server.known_user
    headers = token(app, user)
    client = app.test_client()
    for query in (
        f"userId={user}&limit=0",
        f"userId={user}&limit=abc",
        "limit=5",
        f"userId={user}&cursor=not-a-cursor",
        f"userId={user}&unknown=1",
    ):
        response = client.get(f"/feed/recommendations?{query}", headers=headers)
        assert response.status_code == 400, (query, response.json)
        assert response.json is not None and "error" in response.json
    first = client.get(f"/feed/recommendations?userId={user}&limit=5", headers=headers).json
    assert first is not None
    other = client.get(
        "/feed/recommendations",
        query_string={"userId": "intruder", "cursor": first["nextCursor"]},
        headers=token(app, "intruder"),
    )
    assert other.status_code == 400
    assert other.json is not None and "cursor" in other.json["error"]["fields"]


def test_another_viewers_feed_is_403_and_no_token_is_401(app: Flask) -> None:
    client = app.test_client()
    assert (
        client.get("/feed/recommendations?userId=u1", headers=token(app, "u2")).status_code == 403
    )
    assert client.get("/feed/recommendations?userId=u1").status_code == 401
