from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from domain.outbox import PendingMessage


@dataclass(frozen=True)
class PublishOutcome:
    """Which messages the broker acknowledged (ids, in any order) and which failed."""

    acknowledged: tuple[int, ...]
    failed: tuple[int, ...]


class EventBus(Protocol):
    def publish(self, messages: Sequence[PendingMessage], timeout_s: float) -> PublishOutcome:
        """Send messages (in the given order, which per key is the order consumers see) and wait
        up to `timeout_s` seconds for the broker's acknowledgements. Messages neither
        acknowledged nor failed by then count as failed. Never raises for broker trouble."""
        ...

    def close(self) -> None:
        """Flush what can be flushed quickly and release connections. Closing twice is
        harmless."""
        ...
