"""Pact of the REST API between a feed client (consumer `feed-client`) and the web service
(provider `feed-web`): first page, next page, the trending fallback, an accepted interaction,
a validation error and a missing token.

Consumer side: `FeedClient`, a small typed client of what a feed app calls, runs against
pact-python's mock server; the pact pins shapes (matchers), not values.

Provider side: the REAL Flask app (`app.web.create_app`, SQLite, `FakeRecommender` as the model
service) served by werkzeug on 127.0.0.1, with provider states. A pact cannot hold a live
token or cursor (a token expires, a cursor is signed), so the pact carries placeholders, and
the provider-side WSGI wrapper swaps them for real ones: the token of the state's viewer, and
the next-page cursor of the first page the state handler fetched. (pact-python 4.2's Python
state handlers return nothing, so `generate.provider_state` cannot inject them.)
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from pact import Pact, Verifier, match
from werkzeug.serving import make_server

from adapters.sql.migrations import upgrade_database
from adapters.web.dependencies import EXTENSION_KEY, WebDependencies
from app.bootstrap import Overrides, token_codec
from app.web import create_app, shutdown
from domain.feed import FallbackReason
from tests.contract.pact_support import PACTS_DIR, ProviderStates, pacts_for, run_verifier
from tests.fakes_feed import FakeRecommender
from tests.web_support import an_event, bearer, settings_for

pytestmark = [pytest.mark.contract]

CONSUMER = "feed-client"
PROVIDER = "feed-web"
PACT_FILE = PACTS_DIR / f"{CONSUMER}-{PROVIDER}.json"
VIEWER = "u000096"
TOKEN_PLACEHOLDER = "contract-token-of-the-viewer"
CURSOR_PLACEHOLDER = "cursor-of-the-first-page"
STATE_MODEL_UP = "the viewer is signed in and the model service answers"
STATE_FIRST_PAGE_READ = "the viewer has read the first page of a feed session"
STATE_MODEL_DOWN = "the viewer is signed in and the model service is down"
STATE_SIGNED_IN = "the viewer is signed in"
ERROR_CODE = r"^[a-z_]+$"
EVENT = {
    "eventId": "e-contract-1",
    "userId": VIEWER,
    "videoId": "v000123",
    "interactionType": "like",
    "watchTime": 12_000,
    "timestamp": "2026-11-24T06:55:00.123Z",
}

# --- consumer side: the client and the pact it relies on ------------------------------------


@dataclass(frozen=True)
class FeedItem:
    video_id: str
    score: float
    rank: int


@dataclass(frozen=True)
class FeedPage:
    feed_session_id: str
    algorithm: str
    fallback_reason: str | None
    items: tuple[FeedItem, ...]
    next_cursor: str | None


class ApiError(Exception):
    def __init__(self, status: int, code: str, fields: dict[str, str]) -> None:
        super().__init__(f"{status} {code} {fields}")
        self.status = status
        self.code = code
        self.fields = fields


class FeedClient:
    """What a feed app needs of the API, parsed into its own types."""

    def __init__(self, base_url: str, token: str | None) -> None:
        self._base = base_url.rstrip("/")
        self._token = token

    def page(self, user_id: str, limit: int, cursor: str | None = None) -> FeedPage:
        query: dict[str, str | int] = {"userId": user_id, "limit": limit}
        if cursor is not None:
            query["cursor"] = cursor
        body = self._call("GET", f"/feed/recommendations?{urllib.parse.urlencode(query)}")
        return FeedPage(
            feed_session_id=str(body["feedSessionId"]),
            algorithm=str(body["algorithm"]),
            fallback_reason=body["fallbackReason"],
            items=tuple(
                FeedItem(str(i["videoId"]), float(i["score"]), int(i["rank"]))
                for i in body["items"]
            ),
            next_cursor=body["nextCursor"],
        )

    def send(self, event: dict[str, Any]) -> list[str]:
        body = self._call("POST", "/feed/interactions", event)
        assert body["accepted"] == len(body["eventIds"])
        return [str(event_id) for event_id in body["eventIds"]]

    def _call(self, method: str, path: str, payload: object = None) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        data = None
        if payload is not None:
            data = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token}"
        request = urllib.request.Request(self._base + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                parsed: dict[str, Any] = json.loads(response.read())
                return parsed
        except urllib.error.HTTPError as err:
            with err:
                error = json.loads(err.read())["error"]
            raise ApiError(err.code, error["code"], error.get("fields") or {}) from None


def _page_body(algorithm: str, reason: str | None, cursor: str) -> dict[str, Any]:
    return {
        "userId": match.str(VIEWER),
        "feedSessionId": match.str("3f1c9a52-5d7e-4a39-9d0b-1f9b7c1e2a44"),
        "algorithm": algorithm,
        "fallbackReason": reason,
        "experimentVariantId": None,
        "modelVersion": match.str("2026-11-24T01-00-00Z") if reason is None else None,
        "items": match.each_like(
            {"videoId": match.str("v000123"), "score": match.number(0.75), "rank": match.int(1)},
            min=1,
        ),
        "nextCursor": match.str(cursor),
    }


def build_pact() -> Pact:
    pact = Pact(CONSUMER, PROVIDER).with_specification("V4")
    auth = {"Authorization": f"Bearer {TOKEN_PLACEHOLDER}"}
    (
        pact.upon_receiving("the first page of the viewer's feed")
        .given(STATE_MODEL_UP, {"userId": VIEWER})
        .with_request("GET", "/feed/recommendations")
        .with_query_parameters({"userId": VIEWER, "limit": "2"})
        .with_headers(auth)
        .will_respond_with(200)
        .with_body(_page_body("lightfm", None, CURSOR_PLACEHOLDER), "application/json")
    )
    (
        pact.upon_receiving("the next page of the viewer's feed session")
        .given(STATE_FIRST_PAGE_READ, {"userId": VIEWER})
        .with_request("GET", "/feed/recommendations")
        .with_query_parameters({"userId": VIEWER, "limit": "2", "cursor": CURSOR_PLACEHOLDER})
        .with_headers(auth)
        .will_respond_with(200)
        .with_body(_page_body("lightfm", None, "cursor-of-the-third-page"), "application/json")
    )
    (
        pact.upon_receiving("the first page while the model service is down")
        .given(STATE_MODEL_DOWN, {"userId": VIEWER})
        .with_request("GET", "/feed/recommendations")
        .with_query_parameters({"userId": VIEWER, "limit": "3"})
        .with_headers(auth)
        .will_respond_with(200)
        .with_body(_page_body("trending", "unavailable", "cursor-of-a-trending-page"))
    )
    (
        pact.upon_receiving("an interaction the service accepts")
        .given(STATE_SIGNED_IN, {"userId": VIEWER})
        .with_request("POST", "/feed/interactions")
        .with_headers(auth)
        .with_body(EVENT, "application/json")
        .will_respond_with(202)
        .with_body(
            {"accepted": match.int(1), "eventIds": match.each_like(match.str("e-contract-1"))},
            "application/json",
        )
    )
    (
        pact.upon_receiving("an interaction with a negative watch time")
        .given(STATE_SIGNED_IN, {"userId": VIEWER})
        .with_request("POST", "/feed/interactions")
        .with_headers(auth)
        .with_body({**EVENT, "watchTime": -1}, "application/json")
        .will_respond_with(400)
        .with_body(
            {
                "error": {
                    "code": match.regex("invalid_input", regex=ERROR_CODE),
                    "message": match.str("the request has invalid fields"),
                    "fields": {"watchTime": match.str("must be at least 0")},
                }
            },
            "application/json",
        )
    )
    (
        pact.upon_receiving("a feed request without a token")
        .with_request("GET", "/feed/recommendations")
        .with_query_parameters({"userId": VIEWER, "limit": "2"})
        .will_respond_with(401)
        .with_body(
            {
                "error": {
                    "code": match.regex("unauthenticated", regex=ERROR_CODE),
                    "message": match.str("a bearer token is required"),
                }
            },
            "application/json",
        )
    )
    return pact


def test_consumer_the_feed_client_against_the_mock_server(tmp_path: Path) -> None:
    pact = build_pact()
    with pact.serve(addr="127.0.0.1", verbose=False) as server:
        client = FeedClient(str(server.url), TOKEN_PLACEHOLDER)
        first = client.page(VIEWER, 2)
        assert first.algorithm == "lightfm" and first.fallback_reason is None
        assert [item.rank for item in first.items] == [1]
        assert first.next_cursor == CURSOR_PLACEHOLDER
        following = client.page(VIEWER, 2, first.next_cursor)
        assert following.items
        fallback = client.page(VIEWER, 3)
        assert (fallback.algorithm, fallback.fallback_reason) == ("trending", "unavailable")
        assert client.send(EVENT) == ["e-contract-1"]
        with pytest.raises(ApiError) as invalid:
            client.send({**EVENT, "watchTime": -1})
        assert invalid.value.status == 400 and "watchTime" in invalid.value.fields
        with pytest.raises(ApiError) as unauthenticated:
            FeedClient(str(server.url), None).page(VIEWER, 2)
        assert unauthenticated.value.status == 401
    pact.write_file(tmp_path, overwrite=True)
    PACTS_DIR.mkdir(parents=True, exist_ok=True)
    written = tmp_path / PACT_FILE.name
    PACT_FILE.write_text(written.read_text(encoding="utf-8"), encoding="utf-8")


# --- provider side: the real app -------------------------------------------------------------


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class FeedProvider:
    """The real app plus what the states need: the fake model service and live credentials."""

    def __init__(self, app: Flask, recommender: FakeRecommender, token: str) -> None:
        self.app = app
        self.recommender = recommender
        self.token = token
        self.cursor = ""
        self.states = ProviderStates(self.handlers())

    def handlers(self) -> dict[str, Callable[[str, dict[str, Any] | None], None]]:
        def model_up(action: str, parameters: dict[str, Any] | None) -> None:
            self.recommender.failure = None

        def first_page_read(action: str, parameters: dict[str, Any] | None) -> None:
            self.recommender.failure = None
            if action == "setup":
                user = (parameters or {}).get("userId", VIEWER)
                response = self.app.test_client().get(
                    "/feed/recommendations",
                    query_string={"userId": user, "limit": 2},
                    headers=bearer(self.token),
                )
                assert response.status_code == 200, response.json
                assert response.json is not None
                self.cursor = response.json["nextCursor"]

        def model_down(action: str, parameters: dict[str, Any] | None) -> None:
            failing = action == "setup"
            self.recommender.failure = FallbackReason.UNAVAILABLE if failing else None

        def signed_in(action: str, parameters: dict[str, Any] | None) -> None:
            pass

        return {
            STATE_MODEL_UP: model_up,
            STATE_FIRST_PAGE_READ: first_page_read,
            STATE_MODEL_DOWN: model_down,
            STATE_SIGNED_IN: signed_in,
        }

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """The app, with the pact's placeholders swapped for the live token and cursor."""
        if problem := self.states.unknown_state_message():
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [problem.encode()]
        if environ.get("HTTP_AUTHORIZATION") == f"Bearer {TOKEN_PLACEHOLDER}":
            environ["HTTP_AUTHORIZATION"] = f"Bearer {self.token}"
        query = urllib.parse.parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if any(value == CURSOR_PLACEHOLDER for _, value in query):
            environ["QUERY_STRING"] = urllib.parse.urlencode(
                [(k, self.cursor if v == CURSOR_PLACEHOLDER else v) for k, v in query]
            )
        return self.app.wsgi_app(environ, start_response)


@pytest.fixture(scope="module")
def feed_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeedProvider]:
    settings = settings_for(tmp_path_factory.mktemp("web"))
    upgrade_database(settings.resolved_database_url)
    recommender = FakeRecommender()
    app = create_app(settings, Overrides(recommender=recommender), start_background=False)
    token = token_codec(settings).issue(VIEWER)
    # Some activity of other viewers, so the trending fallback has videos to serve (what the
    # viewer touched themselves never comes back to them).
    client = app.test_client()
    moment = datetime.now(UTC) - timedelta(minutes=5)
    for index in range(5):
        other = f"u9{index:05d}"
        event = an_event(other, videoId=f"v{index:06d}", timestamp=moment.isoformat())
        headers = bearer(token_codec(settings).issue(other))
        assert client.post("/feed/interactions", json=event, headers=headers).status_code == 202
    deps: WebDependencies = app.extensions[EXTENSION_KEY]
    deps.trending.refresh(datetime.now(UTC))
    try:
        yield FeedProvider(app, recommender, token)
    finally:
        shutdown(app)


@dataclass
class Served:
    url: str


@pytest.fixture
def served(feed_provider: FeedProvider) -> Iterator[Callable[[WsgiApp], Served]]:
    """Serves a WSGI app on 127.0.0.1 (a free port) in a thread; stops every one it started."""
    started: list[tuple[Any, threading.Thread]] = []

    def serve(app: WsgiApp) -> Served:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        started.append((server, thread))
        return Served(f"http://127.0.0.1:{server.server_port}")

    try:
        yield serve
    finally:
        for server, thread in started:
            server.shutdown()
            server.server_close()
            thread.join(5)


def verifier(provider: FeedProvider, url: str, pact_file: Path = PACT_FILE) -> Verifier:
    provider.states = ProviderStates(provider.handlers())
    return (
        Verifier(PROVIDER, host="127.0.0.1")
        .add_transport(url=url)
        .state_handler(provider.states.handle, teardown=True)
        .add_source(pact_file)
    )


@pytest.mark.parametrize("pact_file", pacts_for(PROVIDER), ids=lambda p: p.name)
def test_provider_the_real_app_honours_the_pact(
    feed_provider: FeedProvider, served: Callable[[WsgiApp], Served], pact_file: Path
) -> None:
    failures = run_verifier(verifier(feed_provider, served(feed_provider.wsgi).url, pact_file))
    unknown = feed_provider.states.unknown
    assert not unknown, f"provider states without a handler: {unknown}"
    assert failures is None, failures


def test_an_app_whose_scores_are_text_fails_with_the_path_named(
    feed_provider: FeedProvider, served: Callable[[WsgiApp], Served]
) -> None:
    def scores_as_text(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        response = feed_provider.app.response_class.from_app(feed_provider.wsgi, environ)
        body = response.get_json(silent=True)
        if isinstance(body, dict) and isinstance(body.get("items"), list):
            for item in body["items"]:
                item["score"] = str(item["score"])
            response.set_data(json.dumps(body))
        return response(environ, start_response)

    failures = run_verifier(verifier(feed_provider, served(scores_as_text).url))
    assert failures is not None
    assert "$.items[0].score" in failures, failures
    assert "to be a number" in failures, failures
