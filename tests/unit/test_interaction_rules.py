"""The validation rules of an interaction event and its published form."""

from __future__ import annotations

import unicodedata
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.interactions import (
    MAX_WATCH_TIME_MS,
    InteractionEvent,
    InteractionType,
    event_problems,
    id_problem,
    published_form,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
EVENT = InteractionEvent(
    event_id="e-1",
    user_id="u1",
    video_id="v1",
    interaction_type=InteractionType.VIEW,
    watch_time_ms=1500,
    occurred_at=NOW - timedelta(minutes=1),
)


def test_a_plausible_event_has_no_problems() -> None:
    assert event_problems(EVENT, NOW) == {}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"user_id": ""}, "userId"),
        ({"video_id": "v" * 129}, "videoId"),
        ({"event_id": "bad\x00id"}, "eventId"),
        ({"watch_time_ms": -1}, "watchTime"),
        ({"watch_time_ms": MAX_WATCH_TIME_MS + 1}, "watchTime"),
        ({"occurred_at": NOW + timedelta(minutes=6)}, "timestamp"),
        ({"occurred_at": NOW - timedelta(days=31)}, "timestamp"),
        ({"occurred_at": datetime(2026, 11, 24, 11, 0)}, "timestamp"),
        ({"algorithm": "random"}, "algorithm"),
        ({"feed_session_id": ""}, "feedSessionId"),
    ],
)
def test_each_broken_rule_names_its_field(change: dict[str, object], field: str) -> None:
    problems = event_problems(replace(EVENT, **change), NOW)  # type: ignore[arg-type]
    assert list(problems) == [field]


def test_clock_skew_of_a_few_minutes_is_tolerated() -> None:
    assert event_problems(replace(EVENT, occurred_at=NOW + timedelta(minutes=4)), NOW) == {}


def test_identifiers_keep_any_printable_text_verbatim() -> None:
    assert id_problem("'; DROP TABLE user_interactions; --") is None
    assert id_problem("vidéo-🎬") is None


def test_published_form_is_camel_case_with_utc_timestamp_and_no_absent_metadata() -> None:
    event = replace(
        EVENT,
        occurred_at=datetime(2026, 11, 24, 13, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1))),
        feed_session_id="s1",
    )
    assert published_form(event) == {
        "eventId": "e-1",
        "userId": "u1",
        "videoId": "v1",
        "interactionType": "view",
        "watchTime": 1500,
        "timestamp": "2026-11-24T12:00:00.123456Z",
        "feedSessionId": "s1",
    }


def test_identifiers_refuse_exactly_the_control_and_surrogate_code_points() -> None:
    disagreements = [
        code_point
        for code_point in range(0x110000)
        if (unicodedata.category(chr(code_point)) in ("Cc", "Cs"))
        != (id_problem("a" + chr(code_point)) is not None)
    ]
    assert disagreements == []
