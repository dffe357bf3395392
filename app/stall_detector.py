"""The stall detector of a gevent web worker: every time one greenlet keeps the event loop (the
hub) for longer than `WEB_STALL_THRESHOLD_MS`, every other request of the worker waited that
long. gevent's own monitor thread notices it (`gevent.events.EventLoopBlocked`); this module
counts each stall in DogStatsD (`feed.web.loop_blocked`, tagged with the blocking function) and
logs one JSON line per stall with where it happened; the top frames of the blocking greenlet
ride along at most once a second per worker, so a bad minute stays readable. (A stall is at
least `WEB_STALL_THRESHOLD_MS` long, so a worker logs at most 1000 / threshold lines a second.)

Off outside a gevent-patched process (the CLI, tests on threads) and when the threshold is 0.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from ports.observability import Metrics

log = logging.getLogger("feedrec.stalls")

#: Stacks ride along with a stall's log line at most this often per worker (seconds).
STACK_INTERVAL_S = 1.0


class StallCounter:
    """Receives gevent's `EventLoopBlocked` events (from the monitor thread)."""

    def __init__(self, metrics: Metrics, threshold_ms: float, hub: object = None) -> None:
        self._metrics = metrics
        self._hub = hub
        self._threshold_ms = threshold_ms
        self._lock = threading.Lock()
        self._last_stack = 0.0
        self.count = 0

    def __call__(self, event: Any) -> None:
        if type(event).__name__ != "EventLoopBlocked":
            return
        if self._hub is not None and getattr(event, "hub", None) is not self._hub:
            # Another thread's hub (gevent's threadpool, where gRPC waits on its completion
            # queue in C by design): that thread may block; the requests' loop did not.
            return
        where = _blocking_frame(event.info)
        self._metrics.increment("feed.web.loop_blocked", 1, {"where": where})
        now = time.monotonic()
        with self._lock:
            self.count += 1
            with_stack = now - self._last_stack >= STACK_INTERVAL_S
            if with_stack:
                self._last_stack = now
        extra: dict[str, Any] = {
            "threshold_ms": self._threshold_ms,
            "stalls_total": self.count,
            "where": where,
        }
        if with_stack:
            extra["stack"] = _stack(event.info)
        log.warning("event loop blocked", extra=extra)


def configure_gevent_monitor(threshold_ms: float) -> None:
    """Turn gevent's monitor thread on, with `threshold_ms` as the longest tolerated block. Must
    run before the process's hub exists (gunicorn's `post_fork`): a hub started earlier never
    detects a block, even if its monitor thread is started later (seen with gevent 26)."""
    if threshold_ms <= 0:
        return
    from gevent import config

    config.max_blocking_time = threshold_ms / 1000
    config.print_blocking_reports = False  # our one line instead of gevent's full report
    config.monitor_thread = True


def start_stall_detector(metrics: Metrics, threshold_ms: float) -> StallCounter | None:
    """Count and log what gevent's monitor thread reports in this process (`configure_gevent_
    monitor` must have run before the hub started). None unless the socket module is
    gevent-patched and `threshold_ms` > 0."""
    if threshold_ms <= 0:
        return None
    from gevent import config, get_hub, monkey
    from gevent.events import subscribers

    if not monkey.is_module_patched("socket") or not config.monitor_thread:
        return None
    counter = StallCounter(metrics, threshold_ms, get_hub())
    subscribers.append(counter)
    return counter


def _stack(info: list[str]) -> list[str]:
    """The blocking greenlet's innermost frames from gevent's report (file:line function)."""
    lines = (part.strip() for entry in info for part in str(entry).splitlines())
    frames = [line for line in lines if line.startswith("File ")]
    return frames[-6:]


def _blocking_frame(info: list[str]) -> str:
    """The innermost frame of this project's code in the report, else the innermost one."""
    frames = _stack(info) or ["unknown"]
    ours = [f for f in frames if "site-packages" not in f and "/lib/python" not in f]
    frame = (ours or frames)[-1]
    # 'File "/path/to/adapters/sql/x.py", line 12, in read' -> 'adapters/sql/x.py:12 read'
    if frame.startswith("File "):
        path, _, rest = frame[6:].partition('", line ')
        line, _, function = rest.partition(", in ")
        short = "/".join(path.split("/")[-3:])
        return f"{short}:{line} {function}"
    return frame
