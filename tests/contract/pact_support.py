"""Shared set-up of the Pact tests: where pact files live, and the environment pact needs."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

# pact-python's verifier reports anonymous usage unless told not to; these tests stay offline.
os.environ.setdefault("PACT_DO_NOT_TRACK", "true")

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = REPO / "contracts"
PACTS_DIR = CONTRACTS / "pacts"


def pacts_for(provider: str) -> list[Path]:
    """Every committed pact whose provider is `provider` (any consumer)."""
    found = []
    for path in sorted(PACTS_DIR.glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("provider", {}).get("name") == provider:
            found.append(path)
    return found


def interactions_of(path: Path) -> list[dict[str, Any]]:
    interactions: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))[
        "interactions"
    ]
    return interactions


def run_verifier(verifier: Any) -> str | None:
    """Run a `pact.Verifier`; None when every interaction passed, else its plain-text output
    (where the mismatching paths are: the exception itself only says "Failed to execute").

    pact-python 4.2 shuts its message-relay and state-callback HTTP servers down after a run
    but never closes their listening sockets (a ResourceWarning, an error under
    `filterwarnings=error`), so this closes them.
    """
    try:
        verifier.verify()
    except RuntimeError:
        return str(verifier.output(strip_ansi=True))
    finally:
        for name in ("_message_producer", "_state_handler"):
            helper = getattr(verifier, name, None)
            server = getattr(helper, "_server", None)
            if server is not None and hasattr(server, "server_close"):
                server.server_close()
    return None


class ProviderStates:
    """A provider's state handlers, by state name, for `Verifier.state_handler(states.handle,
    teardown=True)`.

    A state no handler knows is recorded in `unknown` rather than raised: the verifier retries
    a failed state change with a growing back-off (over a minute in all), so raising would make
    a pact with a new state slow to fail. Providers check `unknown` and fail the interaction at
    once (`unknown_state_message`), and the tests assert it is empty.
    """

    def __init__(self, handlers: Mapping[str, Callable[[str, dict[str, Any] | None], None]]):
        self._handlers = dict(handlers)
        self.unknown: list[str] = []
        self.current: str | None = None

    def handle(self, state: str, action: str, parameters: dict[str, Any] | None) -> None:
        if state == "":
            return
        if state not in self._handlers:
            if action == "setup":
                self.unknown.append(state)
                self.current = state
            return
        self.current = None
        self._handlers[state](action, parameters)

    def unknown_state_message(self) -> str | None:
        """Why the current interaction cannot be produced, when its state is unknown."""
        if self.current is not None and self.current in self.unknown:
            return f"the provider has no handler for the state {self.current!r}"
        return None
