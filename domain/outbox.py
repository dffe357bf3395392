"""Messages waiting to be published: written in the same transaction as the data they announce."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class OutboxMessage:
    """A message for `topic`, partitioned by `key`; `payload` is the JSON-ready value.

    `created_at` is when the event was accepted: publish latency is measured from it.
    """

    topic: str
    key: str
    payload: Mapping[str, object]
    created_at: datetime


@dataclass(frozen=True)
class PendingMessage:
    """An outbox row not yet acknowledged by the broker; `id` orders messages oldest first."""

    id: int
    message: OutboxMessage
    attempts: int
