"""`Analytics` on Segment (segment-analytics-python 2.4): `feed_recommendation_served` per page,
`feed_recommendation_consumed` per accepted interaction on a served video.

How the library behaves (read from its source, `segment/analytics/{client,consumer,request}.py`):

- `Client.track` validates the message, serialises it once to check the 32 KB limit and
  `put(block=False)`s it on a bounded `queue.Queue`; a full queue makes it return
  `(False, msg)` and log "queue is full" on the `segment` logger. It never touches the
  network when `sync_mode` is off, so a page is never held up by Segment.
- One daemon `Consumer` thread per client, started by the constructor, collects up to 100
  messages or `upload_interval` seconds' worth and POSTs them as one JSON batch to
  `<host>/v1/batch` (Basic auth `write_key:`, gzip off by default; we keep it off: batches
  of a few KB are not worth the CPU on the web worker).
- A failed POST (connection error, timeout, 408/410/429/460 or any 5xx but 501/505) is
  retried by the consumer's own loop (no `backoff` package in 2.4): `max_retries` retries,
  waiting 0 s, 0.5 s, 1 s, 2 s ... (cap 60 s); a 429 with `Retry-After` pauses uploads for
  up to 300 s. Other 4xx are not retried. A given-up batch goes to `on_error`.
- `Client.flush()` is `queue.join()` and `shutdown()` is flush plus thread join, both
  without a time limit: with Segment down and the library's defaults (10 retries, 15 s
  timeout) a single batch can hold them for minutes. So `flush()`/`close()` here wait on
  the queue with a deadline, then stop the consumer (its retry waits notice the stop
  within a second; a request in flight ends within `timeout_s`).

Under gevent (gunicorn's gevent workers monkey-patch before the app is built) the consumer
thread is a greenlet, its HTTP calls yield on the patched sockets and the client's
`queue.Queue` is gevent's (non-blocking `put` and `full()` behave the same; it lacks the
stdlib's `all_tasks_done` condition, which `flush()` therefore does not use).
Build this adapter after the worker forks: a thread started in a parent does not exist in
its children, and their events would only fill the queue.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
import time
from datetime import datetime
from typing import Any

from segment.analytics import Client

from domain.feed import FeedConsumed, FeedServed

EVENT_NAME = "feed_recommendation_served"
CONSUMED_EVENT_NAME = "feed_recommendation_consumed"

_log = logging.getLogger(__name__)

#: At most one "queue full" warning per this many seconds (it carries the count dropped).
QUEUE_FULL_WARNING_INTERVAL_S = 60.0


class SegmentAnalytics:
    """Implements `ports.observability.Analytics` with a Segment `Client` of its own.

    `timeout_s` bounds one HTTP attempt (connect and each read), `max_retries` the retries
    of one batch, `shutdown_timeout_s` how long `close()` waits for queued events to go out.
    """

    def __init__(
        self,
        write_key: str,
        host: str,
        *,
        flush_interval_s: float = 0.5,
        max_queue_size: int = 10_000,
        timeout_s: float = 5.0,
        max_retries: int = 3,
        shutdown_timeout_s: float = 5.0,
    ) -> None:
        if not write_key:
            raise ValueError("SegmentAnalytics needs a write key; use NullAnalytics without one")
        self._timeout_s = timeout_s
        self._shutdown_timeout_s = shutdown_timeout_s
        self._closed = False
        self._dropped = 0
        self._last_full_warning = float("-inf")
        self._drop_lock = threading.Lock()
        self._client: Any = Client(
            write_key=write_key,
            host=host,
            sync_mode=False,
            send=True,
            gzip=False,
            max_queue_size=max_queue_size,
            upload_interval=flush_interval_s,
            timeout=timeout_s,
            max_retries=max_retries,
            on_error=self._on_error,
        )

    def feed_served(self, event: FeedServed) -> None:
        self._track(
            EVENT_NAME,
            event.user_id,
            {
                "algorithm": event.algorithm.value,
                "feed_session_id": event.feed_session_id,
                "experiment_variant_id": event.experiment_variant_id,
                "model_version": event.model_version,
                "page": event.page,
                "item_count": event.item_count,
                "fallback_reason": (event.fallback_reason.value if event.fallback_reason else None),
                "personalization": event.personalization.value,
            },
            event.served_at,
        )

    def feed_consumed(self, event: FeedConsumed) -> None:
        self._track(
            CONSUMED_EVENT_NAME,
            event.user_id,
            {
                "event_id": event.event_id,
                "video_id": event.video_id,
                "interaction_type": event.interaction_type,
                "watch_time_ms": event.watch_time_ms,
                "rank": event.rank,
                "score": event.score,
                "source": event.source.value,
                "algorithm": event.algorithm.value,
                "feed_session_id": event.feed_session_id,
                "experiment_variant_id": event.experiment_variant_id,
                "model_version": event.model_version,
            },
            event.occurred_at,
        )

    def _track(
        self, name: str, user_id: str, properties: dict[str, Any], timestamp: datetime
    ) -> None:
        if self._closed:
            return
        if self._client.queue.full():
            # Checked first so that a long outage costs one warning a minute, not the
            # library's warning per event.
            self._count_dropped()
            return
        try:
            queued, _ = self._client.track(
                user_id=user_id, event=name, properties=properties, timestamp=timestamp
            )
        except Exception as err:
            # The library rejects a message with AssertionError (e.g. an empty user id) or
            # RuntimeError (over 32 KB); analytics must not fail the request over either.
            _log.warning("analytics event %s not queued: %s", name, err)
            return
        if not queued:  # filled up between the check above and the put
            self._count_dropped()

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every queued event was uploaded or given up on, at most `timeout_s`
        seconds (default: the shutdown timeout). True if the queue drained in time."""
        limit = self._shutdown_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + limit
        queue = self._client.queue
        # queue.Queue.join() with a deadline. The stdlib join() takes no timeout, and under
        # gevent the client's queue is gevent's, without the stdlib's condition; both keep
        # `unfinished_tasks`, and a poll is cheap at shutdown.
        while queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self) -> None:
        """Send what is queued (for at most the shutdown timeout), then stop the consumer
        thread. Returns within about `shutdown_timeout_s + timeout_s + 1` seconds; events
        still queued then are dropped with a warning. Later `feed_served` calls do nothing."""
        if self._closed:
            return
        self._closed = True
        drained = self.flush()
        consumers = self._client.consumers or []
        for consumer in consumers:
            consumer.pause()
        for consumer in consumers:
            # A retry wait notices pause() within 1 s; a request in flight ends by timeout_s.
            with contextlib.suppress(RuntimeError):  # never started
                consumer.join(timeout=self._timeout_s + 1.5)
        # The client registered its unbounded join() to run at exit; it is done already.
        atexit.unregister(self._client.join)
        if not drained:
            _log.warning(
                "analytics closed with about %d events not sent", self._client.queue.qsize()
            )

    def _count_dropped(self) -> None:
        now = time.monotonic()
        with self._drop_lock:
            self._dropped += 1
            if now - self._last_full_warning < QUEUE_FULL_WARNING_INTERVAL_S:
                return
            dropped, self._dropped = self._dropped, 0
            self._last_full_warning = now
        _log.warning(
            "analytics queue full (Segment slow or unreachable): dropped %d events", dropped
        )

    def _on_error(self, error: Exception, batch: list[dict[str, Any]]) -> None:
        """Called on the consumer thread when a batch is given up on; it must not raise."""
        with contextlib.suppress(Exception):
            _log.error("analytics batch of %d events not delivered: %s", len(batch), error)
