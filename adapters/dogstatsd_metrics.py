"""`Metrics` on DogStatsD (the `datadog` package, 0.56) over UDP.

Choices, checked against `datadog/dogstatsd/base.py`:

- Unbuffered (`disable_buffering=True`, the default in datadog 0.56): each call is one
  `send()` of one datagram on a connected, non-blocking UDP socket (`socket_timeout=0`),
  some microseconds and no thread. The buffered mode would save syscalls but needs a flush
  thread, which has to be stopped around forks and flushed at exit; a feed request sends a
  handful of metrics, so the syscalls are not worth that.
- Nothing raises out of a send: `_xmit_packet_attempt` catches every socket error (a full
  buffer, an agent that is down, a name that does not resolve), drops the datagram and
  closes the socket to reconnect on the next call. The calls here are wrapped anyway, as
  the port promises never to raise.
- The socket is opened, and `host` resolved, on the first metric (and again after a send
  error). Use an IP address or a name the resolver answers at once (the Kubernetes node IP
  is the usual `DD_AGENT_HOST`), or that first metric waits for DNS.
- Client telemetry is off. The library still adds `DD_ENV`, `DD_SERVICE`, `DD_VERSION` and
  `DATADOG_TAGS` from the environment to the constant tags, appends the container id (origin
  detection) when it runs in one, and sends nothing if `DD_DOGSTATSD_DISABLE` is true.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

from datadog.dogstatsd.base import DogStatsd

from domain.feed import FallbackReason

FALLBACK = "feed.recommendation.fallback"

#: Reasons where trending is served by design (a new user, the control arm), not because the
#: model failed. They are counted like the others but raise no event: one event per new
#: viewer or control-arm request would bury the events that mean the model is in trouble.
_EXPECTED_FALLBACKS = frozenset({FallbackReason.COLD_START, FallbackReason.EXPERIMENT_CONTROL})

_log = logging.getLogger(__name__)


def _tag_list(tags: Mapping[str, str] | None) -> list[str] | None:
    return [f"{key}:{value}" for key, value in tags.items()] if tags else None


class DogStatsdMetrics:
    """Implements `ports.observability.Metrics`; `constant_tags` ("key:value") go on every
    metric and event."""

    def __init__(self, host: str, port: int, *, constant_tags: Sequence[str] = ()) -> None:
        self._statsd = DogStatsd(
            host=host,
            port=port,
            constant_tags=list(constant_tags),
            disable_telemetry=True,
            disable_buffering=True,
            socket_timeout=0,
        )

    def fallback(self, reason: FallbackReason, experiment_variant_id: str | None) -> None:
        tags = [f"reason:{reason.value}", f"variant:{experiment_variant_id or 'none'}"]
        if reason not in _EXPECTED_FALLBACKS:
            self._send(
                self._statsd.event,
                FALLBACK,
                f"feed page served by trending instead of the model: {reason.value}",
                alert_type="warning",
                # groups the stream of identical events in Datadog's event explorer
                aggregation_key=f"{FALLBACK}:{reason.value}",
                tags=tags,
            )
        self._send(self._statsd.increment, FALLBACK, 1, tags=tags)

    def timing(self, name: str, milliseconds: float, tags: Mapping[str, str] | None = None) -> None:
        self._send(self._statsd.histogram, name, milliseconds, tags=_tag_list(tags))

    def timing_samples(
        self, name: str, milliseconds: Sequence[float], tags: Mapping[str, str] | None = None
    ) -> None:
        """One datagram per ~1,400 bytes of samples, not one per sample: the client's manual
        buffer (open_buffer/close_buffer) packs them newline-separated, which DogStatsD reads
        as separate samples. The relay sends one per message it publishes."""
        if not milliseconds:
            return
        tag_list = _tag_list(tags)
        self._send(self._statsd.open_buffer)
        try:
            for sample in milliseconds:
                self._send(self._statsd.histogram, name, sample, tags=tag_list)
        finally:
            self._send(self._statsd.close_buffer)

    def gauge(self, name: str, value: float, tags: Mapping[str, str] | None = None) -> None:
        self._send(self._statsd.gauge, name, value, tags=_tag_list(tags))

    def increment(self, name: str, value: int = 1, tags: Mapping[str, str] | None = None) -> None:
        self._send(self._statsd.increment, name, value, tags=_tag_list(tags))

    def close(self) -> None:
        """Close the socket. Nothing is buffered, so nothing is lost."""
        self._send(self._statsd.close_socket)

    @staticmethod
    def _send(method: Callable[..., object], *args: object, **kwargs: object) -> None:
        try:
            method(*args, **kwargs)
        except Exception as err:
            # e.g. ValueError for an event over 8 KB; a metric is never worth a failed request
            _log.warning("dogstatsd %s dropped: %s", getattr(method, "__name__", method), err)
