from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ComponentHealth:
    """`ok` is False when the component cannot serve; `detail` says why, for operators."""

    ok: bool
    detail: str = ""


class HealthCheck(Protocol):
    #: The component's name in `/readyz` (e.g. "database", "kafka", "model").
    name: str
    #: A non-critical component degrades answers when down; a critical one makes us unready.
    critical: bool

    def check(self) -> ComponentHealth:
        """Probe the component quickly (well under a second); never raises."""
        ...
