"""Implements `ports.retrain.RunLog` in front of another one, so that an outage of the real run
log (Snowflake, or the database) never loses a run's row.

A row the inner log does not take (`DependencyUnavailable`) is appended to a JSON-lines spool
file (`domain.retrain.run_to_json`, one run a line, fsynced). Spooled rows are delivered, in the
order they were spooled, before anything new: at the next `record`, and whenever `flush` is
called (the worker calls it at start and every few minutes). Delivery is the inner log's upsert
by `run_id`, so a row delivered twice (a crash between delivery and rewriting the spool) is
still one row, and a run's later state always lands after its earlier one.

After a failed delivery, `record` spools straight away for `retry_interval_s` seconds instead
of waiting out the inner log's timeout at every stage of a run; `flush` always tries.

The spool is one file per worker host (under the data dir); an `fcntl` lock on
`<spool>.lock` serialises processes on the host (the worker and a `feedrec retrain --now`).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from domain.errors import DependencyUnavailable
from domain.retrain import RetrainRun, RunStatus, run_from_json, run_to_json
from ports.retrain import RunLog

log = logging.getLogger(__name__)

#: The component named when the spool file itself cannot be written.
SPOOL = "run_log_spool"


class SpooledRunLog:
    def __init__(self, inner: RunLog, spool: Path, *, retry_interval_s: float = 60.0) -> None:
        self._inner = inner
        self._spool = Path(spool)
        self._retry_interval_s = retry_interval_s
        self._next_attempt = 0.0  # time.monotonic() before which record() does not try
        self._thread_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SpooledRunLog({self._inner!r}, {str(self._spool)!r})"

    def record(self, run: RetrainRun) -> None:
        """Deliver `run` (after whatever is spooled), or spool it. Raises
        `DependencyUnavailable("run_log_spool")` only when the spool file itself cannot be
        written either."""
        with self._locked():
            if time.monotonic() >= self._next_attempt and self._deliver_spooled():
                try:
                    self._inner.record(run)
                    return
                except DependencyUnavailable as err:
                    self._failed(err)
            self._append(run)

    def flush(self) -> int:
        """Deliver every spooled row now; returns how many are still waiting (0: none)."""
        with self._locked():
            self._deliver_spooled()
            return len(self._read())

    def pending(self) -> list[RetrainRun]:
        """The spooled rows not delivered yet, latest state per run, in spool order."""
        with self._locked():
            return self._read()

    def unfinished(self) -> list[RetrainRun]:
        spooled = {run.run_id: run for run in self.pending()}
        runs = {run.run_id: run for run in self._inner.unfinished()} | spooled
        return sorted(
            (run for run in runs.values() if run.status is RunStatus.RUNNING),
            key=lambda run: (run.started_at, run.run_id),
        )

    def recent(self, limit: int) -> list[RetrainRun]:
        spooled = {run.run_id: run for run in self.pending()}
        runs = {run.run_id: run for run in self._inner.recent(limit)} | spooled
        newest_first = sorted(runs.values(), key=lambda run: (run.started_at, run.run_id))[::-1]
        return newest_first[: max(limit, 0)]

    # --- the spool file --------------------------------------------------------------------

    def _deliver_spooled(self) -> bool:
        """True when nothing is left in the spool."""
        waiting = self._read()
        delivered = 0
        for run in waiting:
            try:
                self._inner.record(run)
            except DependencyUnavailable as err:
                self._failed(err)
                break
            delivered += 1
        if delivered:
            self._rewrite(waiting[delivered:])
            log.info("delivered spooled run log rows", extra={"rows": delivered})
        return delivered == len(waiting)

    def _failed(self, err: DependencyUnavailable) -> None:
        self._next_attempt = time.monotonic() + self._retry_interval_s
        log.warning("run log unavailable, keeping rows in %s: %s", self._spool, err.message)

    def _read(self) -> list[RetrainRun]:
        try:
            lines = self._spool.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        latest: dict[str, RetrainRun] = {}
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                run = run_from_json(json.loads(line))
            except ValueError as err:  # a line cut short by a crash mid-append
                log.warning("skipping line %d of %s: %s", number, self._spool, err)
                continue
            latest.pop(run.run_id, None)  # re-insert: order by each run's latest line
            latest[run.run_id] = run
        return list(latest.values())

    def _append(self, run: RetrainRun) -> None:
        self._spool.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(run_to_json(run), sort_keys=True) + "\n"
        with self._spool.open("a", encoding="utf-8") as spool:
            spool.write(line)
            spool.flush()
            os.fsync(spool.fileno())

    def _rewrite(self, runs: list[RetrainRun]) -> None:
        if not runs:
            self._spool.unlink(missing_ok=True)
            return
        temp = self._spool.with_name(f".{self._spool.name}.{os.getpid()}.tmp")
        with temp.open("w", encoding="utf-8") as spool:
            for run in runs:
                spool.write(json.dumps(run_to_json(run), sort_keys=True) + "\n")
            spool.flush()
            os.fsync(spool.fileno())
        os.replace(temp, self._spool)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Holds the spool for this thread and process; a spool file (or its folder, or its
        lock) that cannot be used raises DependencyUnavailable("run_log_spool")."""
        lock_path = self._spool.with_name(self._spool.name + ".lock")
        try:
            self._spool.parent.mkdir(parents=True, exist_ok=True)
            with self._thread_lock, lock_path.open("a") as lock_file:
                fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)
        except OSError as err:
            raise DependencyUnavailable(SPOOL, f"the spool {self._spool}: {err}") from err
