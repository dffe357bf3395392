"""contracts/feed.interactions.v1.schema.json describes exactly what `published_form` writes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from domain.interactions import (
    MAX_ID_LENGTH,
    MAX_WATCH_TIME_MS,
    InteractionEvent,
    InteractionType,
    published_form,
)

pytestmark = [pytest.mark.unit, pytest.mark.contract]

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "contracts" / "feed.interactions.v1.schema.json"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(loaded)
    return loaded


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def an_event(**changes: Any) -> InteractionEvent:
    fields: dict[str, Any] = {
        "event_id": "e-1",
        "user_id": "u1",
        "video_id": "v1",
        "interaction_type": InteractionType.VIEW,
        "watch_time_ms": 4_200,
        "occurred_at": datetime(2026, 11, 24, 10, 0, 0, 123_456, tzinfo=UTC),
    }
    fields.update(changes)
    return InteractionEvent(**fields)


@pytest.mark.parametrize(
    "event",
    [
        an_event(),
        an_event(
            feed_session_id="s-1",
            algorithm="lightfm",
            experiment_variant_id="variant-a",
            interaction_type=InteractionType.COMPLETE,
        ),
        an_event(algorithm="trending", watch_time_ms=0),
        an_event(watch_time_ms=MAX_WATCH_TIME_MS, event_id="e" * MAX_ID_LENGTH),
        an_event(occurred_at=datetime(2026, 11, 24, 8, 0, tzinfo=timezone(timedelta(hours=-5)))),
        an_event(video_id="'); DROP TABLE x; -- <b>ünïcödé</b>"),
    ]
    + [an_event(interaction_type=kind) for kind in InteractionType],
    ids=lambda e: f"{e.interaction_type.value}-{e.algorithm}-{len(e.event_id)}",
)
def test_the_published_form_of_valid_events_validates(
    validator: Draft202012Validator, event: InteractionEvent
) -> None:
    errors = [error.message for error in validator.iter_errors(published_form(event))]
    assert errors == []


def test_the_interaction_type_enum_is_the_domains(schema: dict[str, Any]) -> None:
    assert schema["properties"]["interactionType"]["enum"] == [
        kind.value for kind in InteractionType
    ]


def test_required_fields_are_what_published_form_always_writes(schema: dict[str, Any]) -> None:
    assert set(schema["required"]) == set(published_form(an_event()))
    assert set(schema["properties"]) == set(
        published_form(
            an_event(feed_session_id="s", algorithm="lightfm", experiment_variant_id="x")
        )
    )


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"watchTime": -1}, "negative watch time"),
        ({"watchTime": MAX_WATCH_TIME_MS + 1}, "more than a day"),
        ({"watchTime": 1.5}, "fractional milliseconds"),
        ({"timestamp": "yesterday"}, "not RFC 3339"),
        ({"interactionType": "stare"}, "unknown type"),
        ({"algorithm": "random"}, "unknown algorithm"),
        ({"userId": ""}, "empty id"),
        ({"videoId": "v" * (MAX_ID_LENGTH + 1)}, "id too long"),
        ({"surprise": True}, "unknown field"),
    ],
)
def test_values_outside_the_contract_are_refused(
    validator: Draft202012Validator, change: dict[str, object], why: str
) -> None:
    value = published_form(an_event()) | change
    assert not validator.is_valid(value), why


def test_a_missing_required_field_is_refused(validator: Draft202012Validator) -> None:
    value = published_form(an_event())
    del value["eventId"]
    assert not validator.is_valid(value)
