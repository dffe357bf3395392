"""Graceful stop of the long-running processes (lightfm, relay, worker) on SIGTERM or SIGINT."""

from __future__ import annotations

import signal
import threading
from types import FrameType


def stop_on_signals() -> threading.Event:
    """A new event that SIGTERM or SIGINT sets. Handlers can only be installed from the main
    thread; elsewhere the event is returned unhooked."""
    event = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        event.set()  # only the event: logging in a signal handler can deadlock on its lock

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)
    return event
