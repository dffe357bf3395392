"""A fake of the relay's event bus (ports.event_bus), for tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from domain.outbox import PendingMessage
from ports.event_bus import PublishOutcome
from tests.fakes import FixedClock


@dataclass
class FakeEventBus:
    """Implements `ports.event_bus.EventBus`. `down` fails every message; `refuse` fails the
    messages whose event id is in it. `delivered` keeps what the broker acknowledged, in
    order; `rounds` the event ids of every publish call. `clock_step` advances the clock per
    publish, as the wait for acknowledgements does; `on_publish` runs after each one.
    `closed` says `close` was called."""

    clock: FixedClock
    down: bool = False
    refuse: set[str] = field(default_factory=set)
    clock_step: timedelta = timedelta(milliseconds=4)
    on_publish: Callable[[], None] | None = None
    delivered: list[str] = field(default_factory=list)
    rounds: list[list[str]] = field(default_factory=list)
    timeouts: list[float] = field(default_factory=list)
    closed: bool = False

    def publish(self, messages: Sequence[PendingMessage], timeout_s: float) -> PublishOutcome:
        self.timeouts.append(timeout_s)
        self.rounds.append([event_id(item) for item in messages])
        self.clock.advance(self.clock_step)
        acknowledged, failed = [], []
        for item in messages:
            if self.down or event_id(item) in self.refuse:
                failed.append(item.id)
            else:
                acknowledged.append(item.id)
                self.delivered.append(event_id(item))
        if self.on_publish is not None:
            self.on_publish()
        return PublishOutcome(tuple(acknowledged), tuple(failed))

    def close(self) -> None:
        self.closed = True


def event_id(item: PendingMessage) -> str:
    return str(item.message.payload["eventId"])
