"""Accepting interaction events: authorise, validate, de-duplicate, persist with outbox rows."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from domain.auth import Principal, ensure_may_act_for
from domain.errors import Conflict, InvalidInput
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
    from ports.repositories import UnitOfWork


@dataclass(frozen=True)
class IngestionReceipt:
    """`event_ids` in request order (duplicates included); `newly_stored` counts first sightings."""

    event_ids: tuple[str, ...]
    newly_stored: int


class InteractionIngestion:
    """Stores events and their outbox messages in one transaction, idempotently by `event_id`."""

    def __init__(self, unit_of_work: Callable[[], UnitOfWork], clock: Clock, topic: str) -> None:
        self._unit_of_work = unit_of_work
        self._clock = clock
        self._topic = topic

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
                newly_stored = self._store(unique)
                break
            except Conflict:
                if attempt == 1:
                    raise
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

    def _store(self, events: list[InteractionEvent]) -> int:
        now = self._clock.now()
        with self._unit_of_work() as uow:
            scores = self._served_scores(uow, events)
            inserted = uow.interactions.add_new(
                [
                    StoredInteraction(
                        event, now, scores.get((event.feed_session_id, event.video_id))
                    )
                    for event in events
                ]
            )
            # Those not inserted were stored before (a retried request): the same event again
            # is accepted; another event under a known eventId is a Conflict, and leaving the
            # unit of work without commit stores nothing of this request.
            if len(inserted) < len(events):
                known = [event for event in events if event.event_id not in inserted]
                stored = uow.interactions.get_by_event_ids([event.event_id for event in known])
                for event in known:
                    earlier = stored.get(event.event_id)
                    if earlier is None or earlier.event != event:
                        raise Conflict(
                            f"eventId {event.event_id!r} is already stored for a different event"
                        )
            uow.outbox.add(
                [
                    OutboxMessage(self._topic, event.user_id, published_form(event), now)
                    for event in events
                    if event.event_id in inserted
                ]
            )
            uow.commit()
        return len(inserted)

    @staticmethod
    def _served_scores(
        uow: UnitOfWork, events: list[InteractionEvent]
    ) -> dict[tuple[str | None, str], float]:
        videos_by_session: dict[str, set[str]] = defaultdict(set)
        for event in events:
            if event.feed_session_id is not None:
                videos_by_session[event.feed_session_id].add(event.video_id)
        scores: dict[tuple[str | None, str], float] = {}
        for session, videos in videos_by_session.items():
            for video_id, score in uow.feed_cache.served_scores(session, videos).items():
                scores[(session, video_id)] = score
        return scores
