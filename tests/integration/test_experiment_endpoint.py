"""GET /experiments/report through the Flask app: real JWTs, a real SQLite database, the
readout over what the service itself served and stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from adapters.sql.migrations import upgrade_database
from app.bootstrap import Overrides, token_codec
from app.settings import Settings
from app.web import create_app, shutdown
from domain.auth import SERVICE_SCOPE
from tests.fakes_feed import FakeRecommender
from tests.web_support import an_event, bearer, error_of, settings_for

pytestmark = pytest.mark.integration

EXPERIMENT = {
    "name": "ranker-test",
    "variants": [{"id": "control", "weight": 50}, {"id": "treatment", "weight": 50}],
}


def client_for(settings: Settings) -> Iterator[FlaskClient]:
    upgrade_database(settings.resolved_database_url)
    app = create_app(settings, Overrides(recommender=FakeRecommender()), start_background=False)
    with app.test_client() as test_client:
        yield test_client
    shutdown(app)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_for(tmp_path, feed_experiment=json.dumps(EXPERIMENT))


@pytest.fixture
def client(settings: Settings) -> Iterator[FlaskClient]:
    yield from client_for(settings)


def token(settings: Settings, user: str, *, service: bool = False) -> dict[str, str]:
    return bearer(token_codec(settings).issue(user, [SERVICE_SCOPE] if service else []))


def serve_and_react(client: FlaskClient, settings: Settings, viewers: int) -> None:
    for n in range(viewers):
        user = f"viewer-{n}"
        page = client.get(
            f"/feed/recommendations?userId={user}&limit=5", headers=token(settings, user)
        ).json
        assert page is not None and page["items"], page
        events = [
            an_event(
                user,
                videoId=item["videoId"],
                interactionType="like" if rank == 0 else "view",
                feedSessionId=page["feedSessionId"],
            )
            for rank, item in enumerate(page["items"])
        ]
        accepted = client.post(
            "/feed/interactions", json={"events": events}, headers=token(settings, user)
        )
        assert accepted.status_code == 202, accepted.json


def test_an_operator_reads_the_report_of_what_the_service_served(
    client: FlaskClient, settings: Settings
) -> None:
    serve_and_react(client, settings, viewers=12)

    response = client.get(
        "/experiments/report?days=2", headers=token(settings, "ops", service=True)
    )

    assert response.status_code == 200, response.json
    body = response.json
    assert body is not None and body["experiment"] == "ranker-test"
    assert body["end"] == datetime.now(UTC).date().isoformat()
    viewers = {v["variant"]: v["viewers"] for v in body["variants"]}
    assert sum(viewers.values()) == 12 and body["sampleRatio"]["observed"] == viewers
    control = next(v for v in body["variants"] if v["variant"] == "control")
    likes = next(m for m in control["metrics"] if m["metric"] == "like_rate")
    assert likes["estimate"]["value"] == pytest.approx(1 / 5)  # one like per page of five
    assert likes["lift"] is None  # the control is not compared with itself


def test_a_viewer_may_not_read_the_report(client: FlaskClient, settings: Settings) -> None:
    response = client.get("/experiments/report", headers=token(settings, "viewer-1"))

    assert response.status_code == 403
    assert error_of(response.json)["code"] == "forbidden"


def test_an_anonymous_caller_is_asked_for_a_token(client: FlaskClient) -> None:
    assert client.get("/experiments/report").status_code == 401


@pytest.mark.parametrize("query", ["days=0", "days=1000", "end=yesterday", "days=1&days=2"])
def test_a_bad_window_is_refused(client: FlaskClient, settings: Settings, query: str) -> None:
    response = client.get(
        f"/experiments/report?{query}", headers=token(settings, "ops", service=True)
    )

    assert response.status_code == 400
    assert error_of(response.json)["code"] == "invalid_input"


def test_a_window_without_traffic_reports_zeros(client: FlaskClient, settings: Settings) -> None:
    long_ago = (datetime.now(UTC) - timedelta(days=400)).date().isoformat()

    response = client.get(
        f"/experiments/report?end={long_ago}&days=1", headers=token(settings, "ops", service=True)
    )

    assert response.status_code == 200
    assert response.json is not None
    assert all(v["viewers"] == 0 for v in response.json["variants"])


def test_without_an_experiment_the_report_is_not_found(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    for client in client_for(settings):
        response = client.get("/experiments/report", headers=token(settings, "ops", service=True))

        assert response.status_code == 404


def test_the_report_is_documented_in_openapi(client: FlaskClient) -> None:
    document = client.get("/openapi.json").json
    assert document is not None

    operation = document["paths"]["/experiments/report"]["get"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ExperimentReportOut"
    }
    assert {"403", "404"} <= set(operation["responses"])
    assert [p["name"] for p in operation["parameters"]] == ["days", "end"]
