"""Accepting interaction events: authorise, validate, de-duplicate, persist with outbox rows."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from domain.auth import Principal, ensure_may_act_for
from domain.errors import Conflict, InvalidInput
from domain.feed import FeedConsumed, FeedSession, ServedItem
from domain.interactions import (
    MAX_BATCH_SIZE,
    InteractionEvent,
    StoredInteraction,
    event_problems,
    published_form,
)
from domain.outbox import OutboxMessage

if TYPE_CHECKING:  # ports are the domain's types, never its runtime imports
    from ports.clock import Clock
    from ports.observability import Analytics
    from ports.repositories import UnitOfWork


@dataclass(frozen=True)
class IngestionReceipt:
    """`event_ids` in request order (duplicates included); `newly_stored` counts first sightings."""

    event_ids: tuple[str, ...]
    newly_stored: int


class InteractionIngestion:
    """Stores events and their outbox messages in one transaction, idempotently by `event_id`.
    After the commit, each newly stored event on a video its viewer was served in that session
    is queued to `analytics` as `feed_recommendation_consumed` (never inside the transaction:
    an event that did not commit is not reported)."""

    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        clock: Clock,
        topic: str,
        analytics: Analytics | None = None,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._clock = clock
        self._topic = topic
        self._analytics = analytics

    def ingest(
        self, principal: Principal, events: Sequence[InteractionEvent], *, as_batch: bool
    ) -> IngestionReceipt:
        """Raises Forbidden, InvalidInput (nothing stored), Conflict (an eventId already names a
        different event; nothing stored) or DependencyUnavailable (nothing stored)."""
        if not 1 <= len(events) <= MAX_BATCH_SIZE:
            raise InvalidInput(
                "a request carries 1 to 500 events",
                {"events": f"must hold between 1 and {MAX_BATCH_SIZE} events"},
            )
        for user_id in {event.user_id for event in events}:
            ensure_may_act_for(principal, user_id)
        unique = self._validated_unique(events, as_batch)
        # A concurrent request may store the same new eventId between our read and our commit;
        # the second attempt then sees it as already stored.
        for attempt in range(2):
            try:
                newly_stored, consumed = self._store(unique)
                break
            except Conflict:
                if attempt == 1:
                    raise
        if self._analytics is not None:
            for event in consumed:
                self._analytics.feed_consumed(event)
        return IngestionReceipt(tuple(event.event_id for event in events), newly_stored)

    def _validated_unique(
        self, events: Sequence[InteractionEvent], as_batch: bool
    ) -> list[InteractionEvent]:
        now = self._clock.now()
        problems: dict[str, str] = {}
        first_index: dict[str, int] = {}
        unique: list[InteractionEvent] = []
        for index, event in enumerate(events):
            prefix = f"events[{index}]." if as_batch else ""
            for field, problem in event_problems(event, now).items():
                problems[prefix + field] = problem
            seen_at = first_index.setdefault(event.event_id, index)
            if seen_at == index:
                unique.append(event)
            elif events[seen_at] != event:
                problems[prefix + "eventId"] = (
                    f"repeats the eventId of events[{seen_at}] with different content"
                )
        if problems:
            raise InvalidInput("the request has invalid fields", problems)
        return unique

    def _store(self, events: list[InteractionEvent]) -> tuple[int, list[FeedConsumed]]:
        """(events newly stored, their consumed-side analytics events)."""
        now = self._clock.now()
        with self._unit_of_work() as uow:
            stored, served = _attributed(uow, events, now)
            inserted = uow.interactions.add_new(stored)
            # Those not inserted were stored before: the viewer's own event again is a retry
            # (accepted); the viewer's own id reused for something else is a Conflict (leaving
            # the unit of work without commit stores nothing of this request).
            taken = _taken_by_others(
                uow, [item for item in stored if item.event.event_id not in inserted]
            )
            # An id another viewer used first is kept, for this viewer, under an id derived
            # from both: the answer is the same as for a new id (no oracle of others' events),
            # nobody can take a viewer's future ids, and a retry derives the same id again.
            rekeyed = [
                replace(item, event=replace(item.event, event_id=scoped_event_id(item.event)))
                for item in taken
            ]
            inserted_again = uow.interactions.add_new(rekeyed)
            if _taken_by_others(
                uow, [item for item in rekeyed if item.event.event_id not in inserted_again]
            ):
                raise Conflict("an eventId of this request cannot be used; send another eventId")
            new = [item for item in stored if item.event.event_id in inserted]
            new += [item for item in rekeyed if item.event.event_id in inserted_again]
            uow.outbox.add(
                [
                    OutboxMessage(self._topic, item.event.user_id, published_form(item.event), now)
                    for item in new
                ]
            )
            uow.commit()
        consumed = [c for item in new if (c := _consumed(item.event, served)) is not None]
        return len(inserted) + len(inserted_again), consumed


#: Namespace of the ids derived by `scoped_event_id` (UUID v5, so every process agrees).
SCOPED_EVENT_ID_NAMESPACE = uuid.UUID("6f0d8c52-3a4e-5b1f-9c7d-2e8a4b6c0f13")


def scoped_event_id(event: InteractionEvent) -> str:
    """The id an event is stored under when another viewer used its eventId first."""
    return str(uuid.uuid5(SCOPED_EVENT_ID_NAMESPACE, f"{event.user_id}\x1f{event.event_id}"))


def _same_report(a: InteractionEvent, b: InteractionEvent) -> bool:
    """The same thing done: attribution is the server's, so it does not tell events apart."""
    return (a.user_id, a.video_id, a.interaction_type, a.watch_time_ms, a.occurred_at) == (
        b.user_id,
        b.video_id,
        b.interaction_type,
        b.watch_time_ms,
        b.occurred_at,
    )


def _taken_by_others(uow: UnitOfWork, items: list[StoredInteraction]) -> list[StoredInteraction]:
    """Those of `items` (not inserted) whose event id another viewer holds. Raises Conflict
    when the viewer's own event id names another event, or the holder is gone (a race the
    caller retries)."""
    if not items:
        return []
    earlier = uow.interactions.get_by_event_ids([item.event.event_id for item in items])
    taken: list[StoredInteraction] = []
    for item in items:
        found = earlier.get(item.event.event_id)
        if found is not None and found.event.user_id != item.event.user_id:
            taken.append(item)
        elif found is None or not _same_report(found.event, item.event):
            raise Conflict(
                f"eventId {item.event.event_id!r} is already stored for a different event"
            )
    return taken


#: (feed session id, video id) -> the session as recorded and the video's place in it.
_Served = dict[tuple[str, str], tuple[FeedSession, ServedItem]]


def _attributed(
    uow: UnitOfWork, events: list[InteractionEvent], received_at: datetime
) -> tuple[list[StoredInteraction], _Served]:
    """The events as stored, and where their videos were served. A `feed_session_id` naming a
    session the server recorded for this viewer takes that session's algorithm and variant
    and the score each video was served with there; one naming another viewer's session is
    dropped with its algorithm and variant (the claim is ignored, the event kept); one the
    server has no record of (a page served while the database was down, or an id the client
    made up) stays as reported, scoreless."""
    sessions = {
        session_id: uow.feed_sessions.get(session_id)
        for session_id in {event.feed_session_id for event in events}
        if session_id is not None
    }
    attributed: list[InteractionEvent] = []
    videos: dict[str, set[str]] = defaultdict(set)
    for event in events:
        session = sessions.get(event.feed_session_id) if event.feed_session_id else None
        if session is None:
            attributed.append(event)
        elif session.user_id != event.user_id:
            attributed.append(
                replace(event, feed_session_id=None, algorithm=None, experiment_variant_id=None)
            )
        else:
            attributed.append(
                replace(
                    event,
                    algorithm=session.algorithm.value,
                    experiment_variant_id=session.experiment_variant_id,
                )
            )
            videos[session.feed_session_id].add(event.video_id)
    served: _Served = {}
    for session_id, wanted in videos.items():
        session = sessions[session_id]
        assert session is not None  # only recorded sessions were collected
        for video_id, item in uow.feed_cache.served_items(session_id, wanted).items():
            served[(session_id, video_id)] = (session, item)
    stored = [
        StoredInteraction(
            event,
            received_at,
            served[(event.feed_session_id, event.video_id)][1].score
            if event.feed_session_id and (event.feed_session_id, event.video_id) in served
            else None,
        )
        for event in attributed
    ]
    return stored, served


def _consumed(event: InteractionEvent, served: _Served) -> FeedConsumed | None:
    """The consumed-side event of a stored interaction; None unless its video was served to
    this viewer in the session it names."""
    found = served.get((event.feed_session_id, event.video_id)) if event.feed_session_id else None
    if found is None:
        return None
    session, item = found
    return FeedConsumed(
        user_id=event.user_id,
        event_id=event.event_id,
        video_id=event.video_id,
        interaction_type=event.interaction_type.value,
        watch_time_ms=event.watch_time_ms,
        occurred_at=event.occurred_at,
        feed_session_id=session.feed_session_id,
        rank=item.rank,
        score=item.score,
        source=item.source,
        algorithm=session.algorithm,
        experiment_variant_id=session.experiment_variant_id,
        model_version=session.model_version,
    )
