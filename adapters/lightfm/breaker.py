"""The model call's circuit breaker: the `circuitbreaker` package's counting, opening and
cool-down, with a lock and a single half-open probe."""

from __future__ import annotations

import enum
import logging
import threading
from contextlib import suppress

from circuitbreaker import STATE_CLOSED, STATE_HALF_OPEN, CircuitBreaker

log = logging.getLogger(__name__)


class Admission(enum.Enum):
    REJECT = "reject"
    CALL = "call"
    PROBE = "probe"


class _CountedFailure(Exception):
    """What the `circuitbreaker` package is told a counted failure is."""


class Breaker:
    """The `circuitbreaker` package's counting, opening and cool-down, plus what it lacks.

    The package (2.1) counts failures since the last success (a success, or an exception its
    predicate rejects, resets the count), opens at the threshold, and once `recovery_timeout`
    has passed reports "half_open"; a failure then re-opens it at once (the count is still at
    the threshold) and a success closes it. But it takes no lock: its counter and state are bare
    attributes. Under gevent that is safe (no greenlet switch inside those updates) but with
    threads `+=` can lose a count. Its half-open state lets every caller through until one
    reports back, and only its decorator rejects (`with breaker:` never does), while decorating
    keeps the breaker in a process-wide registry. So this class asks the package for the state
    under a lock, lets a single probe through when half-open, and reports outcomes under the
    same lock; the lock is never held across the network call.
    """

    def __init__(self, failures: int, cooldown_s: float) -> None:
        # The package replaces a falsy threshold or timeout with its own defaults (5, 30 s).
        if failures < 1 or cooldown_s <= 0:
            raise ValueError("breaker_failures must be >= 1 and breaker_cooldown_s > 0")
        self._package = CircuitBreaker(
            failure_threshold=failures,
            recovery_timeout=cooldown_s,
            expected_exception=_CountedFailure,
            name="lightfm",
        )
        self._lock = threading.Lock()
        self._probing = False
        self._reachable = False  # the transport reconnected since the breaker opened

    @property
    def closed(self) -> bool:
        with self._lock:
            return bool(self._package.state == STATE_CLOSED)

    def admit(self) -> Admission:
        with self._lock:
            state = self._package.state
            if state == STATE_CLOSED:
                return Admission.CALL
            if self._probing:
                return Admission.REJECT
            if state == STATE_HALF_OPEN or self._reachable:
                self._probing = True
                self._reachable = False
                return Admission.PROBE
            return Admission.REJECT

    def reachable(self) -> None:
        """The transport (re)connected: while open, let one probe through without waiting out
        the cool-down, so a restarted service answers again as soon as it accepts calls."""
        with self._lock:
            if self._package.state != STATE_CLOSED:
                self._reachable = True

    def settle(self, admission: Admission, failed: bool) -> None:
        """Report how an admitted call went: `failed` for a counted failure."""
        with self._lock:
            was_closed = self._package.state == STATE_CLOSED
            if admission is Admission.PROBE:
                self._probing = False
            with suppress(_CountedFailure), self._package:
                if failed:
                    raise _CountedFailure
            now_closed = self._package.state == STATE_CLOSED
            if failed:
                self._reachable = False  # a hint older than this failure says nothing
        if was_closed and not now_closed:
            log.warning("model circuit breaker opened")
        elif now_closed and not was_closed:
            log.info("model circuit breaker closed")

    def release(self, admission: Admission) -> None:
        """An admitted call ended without a verdict: only free the probe slot."""
        if admission is Admission.PROBE:
            with self._lock:
                self._probing = False
