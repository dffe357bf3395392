"""Periodic background work inside a process (a thread; a greenlet under gevent)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class PeriodicTask:
    """Runs `action` at once and then every `interval_s` seconds until `stop()`. A failing run
    is logged and retried at the next tick; it never kills the loop.

    A `warm` task is one requests depend on (a board the fallback serves from): its owner runs
    it once before serving (`warm_up()`), and the loop then starts with a wait."""

    def __init__(
        self, name: str, interval_s: float, action: Callable[[], object], *, warm: bool = False
    ) -> None:
        self.name = name
        self.warm = warm
        self._interval_s = interval_s
        self._action = action
        self._warmed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> None:
        """Run the action now, in the caller's thread (start-up warm-up, tests); raises what
        it raises."""
        self._action()

    def warm_up(self) -> None:
        """Run the action once now, in the caller's thread; a failure is logged, and the loop
        retries at its first tick."""
        try:
            self._action()
        except Exception:
            log.exception("background task failed", extra={"task": self.name})
        self._warmed = True

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _loop(self) -> None:
        if self._warmed:
            self._stop.wait(self._interval_s)
        while not self._stop.is_set():
            try:
                self._action()
            except Exception:
                log.exception("background task failed", extra={"task": self.name})
            self._stop.wait(self._interval_s)
