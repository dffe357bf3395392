"""What viewers do with videos: the event, its validation rules and its published form."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from domain.feed import Algorithm

#: Identifiers (user, video, event, feed session, variant) are 1..128 printable characters.
MAX_ID_LENGTH = 128
#: Watch time is integer milliseconds; a day is the most one event can report.
MAX_WATCH_TIME_MS = 86_400_000
#: Events from clients whose clocks run ahead are accepted up to this much in the future.
MAX_FUTURE_SKEW = timedelta(minutes=5)
#: Offline clients flush late; older than this is a client bug, not a late event.
MAX_EVENT_AGE = timedelta(days=30)
#: The most events one request may carry.
MAX_BATCH_SIZE = 500
#: Unicode categories Cc (C0 and C1 controls) and Cs (surrogates): never part of an id.
_CONTROL_OR_SURROGATE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

#: The names an event may carry in `algorithm`: the recommendation sources, from one enum.
ALGORITHM_NAMES: tuple[str, ...] = tuple(algorithm.value for algorithm in Algorithm)


class InteractionType(StrEnum):
    VIEW = "view"
    LIKE = "like"
    SHARE = "share"
    COMMENT = "comment"
    SKIP = "skip"
    COMPLETE = "complete"
    HIDE = "hide"


@dataclass(frozen=True)
class InteractionEvent:
    """One thing a viewer did. `occurred_at` is timezone-aware; `watch_time_ms` is milliseconds."""

    event_id: str
    user_id: str
    video_id: str
    interaction_type: InteractionType
    watch_time_ms: int
    occurred_at: datetime
    feed_session_id: str | None = None
    algorithm: str | None = None
    experiment_variant_id: str | None = None


@dataclass(frozen=True)
class StoredInteraction:
    """An accepted event as persisted in `user_interactions`.

    `recommendation_score` is the score the video was served with in the event's feed session,
    or None when it was not served there (or the event names no session).
    """

    event: InteractionEvent
    received_at: datetime
    recommendation_score: float | None


def id_problem(value: str) -> str | None:
    """What is wrong with an identifier, or None when it is acceptable."""
    if not value:
        return "must not be empty"
    if len(value) > MAX_ID_LENGTH:
        return f"must be at most {MAX_ID_LENGTH} characters"
    if _CONTROL_OR_SURROGATE.search(value):
        return "must not contain control characters"
    return None


def event_problems(event: InteractionEvent, now: datetime) -> dict[str, str]:
    """Field name -> problem, for every rule the event breaks; empty when it is valid."""
    problems: dict[str, str] = {}
    for field, value in (
        ("eventId", event.event_id),
        ("userId", event.user_id),
        ("videoId", event.video_id),
        ("feedSessionId", event.feed_session_id),
        ("experimentVariantId", event.experiment_variant_id),
    ):
        if value is not None and (problem := id_problem(value)):
            problems[field] = problem
    if not 0 <= event.watch_time_ms <= MAX_WATCH_TIME_MS:
        problems["watchTime"] = f"must be between 0 and {MAX_WATCH_TIME_MS} milliseconds"
    if event.occurred_at.tzinfo is None or event.occurred_at.utcoffset() is None:
        problems["timestamp"] = "must carry a UTC offset"
    elif event.occurred_at > now + MAX_FUTURE_SKEW:
        problems["timestamp"] = "must not be in the future"
    elif event.occurred_at < now - MAX_EVENT_AGE:
        problems["timestamp"] = f"must not be older than {MAX_EVENT_AGE.days} days"
    if event.algorithm is not None and event.algorithm not in ALGORITHM_NAMES:
        problems["algorithm"] = "must be one of " + ", ".join(repr(a) for a in ALGORITHM_NAMES)
    return problems


def published_form(event: InteractionEvent) -> dict[str, object]:
    """The event as it appears on `feed.interactions.v1` (camelCase, RFC 3339 UTC timestamp).

    Optional metadata is left out when absent, as the topic's JSON Schema allows.
    """
    payload: dict[str, object] = {
        "eventId": event.event_id,
        "userId": event.user_id,
        "videoId": event.video_id,
        "interactionType": event.interaction_type.value,
        "watchTime": event.watch_time_ms,
        "timestamp": rfc3339_utc(event.occurred_at),
    }
    for key, value in (
        ("feedSessionId", event.feed_session_id),
        ("algorithm", event.algorithm),
        ("experimentVariantId", event.experiment_variant_id),
    ):
        if value is not None:
            payload[key] = value
    return payload


def rfc3339_utc(moment: datetime) -> str:
    """`2026-11-24T06:55:00.123000Z`: the moment in UTC, microseconds kept."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
