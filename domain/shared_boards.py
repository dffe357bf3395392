"""Boards computed once per deployment, not once per process.

Every web worker holds the trending, popularity and exploration boards in memory and refreshes
them in the background. Computed in every worker, each refresh is the same aggregate over the
recent interactions, run by every worker of every machine at about the same moment (they start
together and share the interval). Measured (docs/decisions.md 43): with the four workers of
the feed benchmark's two instances, a round of four trending queries of 118-224 ms and four
engagement queries every minute, and those rounds held the run's worst seconds.

So one process computes each board and stores it (`ports.repositories.BoardStore`), and the
others read what it stored: the one holding the board's lease (`ports.repositories.Leases`).
It renews the lease every refresh, so it keeps the job while it lives; when it dies, the lease
expires after `lease_ttl` and the next process to refresh takes it over (at once when its
computation fails: it gives the lease up). A process that finds nothing stored yet (a new
database) computes its own board, so no worker serves without one.

A board a worker reads is at most one interval older than the worker's own refresh: the
lease holder stores it on its own schedule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from domain.errors import DependencyUnavailable
from domain.exploration import ExplorationSnapshot
from domain.feed import ItemSource, ScoredVideo
from domain.trending import TrendingSnapshot

if TYPE_CHECKING:
    from ports.repositories import BoardStore, Leases

S = TypeVar("S")

#: A stored board's payload: JSON-ready (lists of strings and numbers, strings, null).
Payload = Mapping[str, Any]


@dataclass(frozen=True)
class StoredBoard:
    """A board as one process computed it at `computed_at`."""

    name: str
    computed_at: datetime
    payload: Payload


class SharedRefresh(Generic[S]):
    """Refreshes one board of this process: computes and stores it while this process holds the
    board's lease, otherwise takes what the holder stored.

    `compute(now)` recomputes the board in place and returns its snapshot (`TrendingBoard.
    refresh`); `install(snapshot)` puts a snapshot read from the store in place; `encode` and
    `decode` turn a snapshot into a payload and back. Raises what the store, the leases or
    `compute` raise (`DependencyUnavailable`): the board keeps its previous snapshot."""

    def __init__(
        self,
        name: str,
        *,
        compute: Callable[[datetime], S],
        install: Callable[[S], None],
        encode: Callable[[S], Payload],
        decode: Callable[[StoredBoard], S],
        store: BoardStore,
        leases: Leases,
        holder: str,
        lease_ttl: timedelta,
    ) -> None:
        if lease_ttl <= timedelta(0):
            raise ValueError(f"a board's lease needs a positive ttl, not {lease_ttl}")
        self.name = name
        self._compute = compute
        self._install = install
        self._encode = encode
        self._decode = decode
        self._store = store
        self._leases = leases
        self._holder = holder
        self._lease_ttl = lease_ttl
        #: whether the last refresh computed the board here (tests, logs)
        self.computed_here = False

    @property
    def lease_name(self) -> str:
        return f"board:{self.name}"

    def refresh(self, now: datetime) -> None:
        if self._leases.acquire(self.lease_name, self._holder, now, self._lease_ttl):
            self._compute_and_store(now)
            return
        stored = self._store.read(self.name)
        if stored is None:
            # Nothing stored yet: the holder is computing the first one. Serve our own.
            self._compute(now)
            self.computed_here = True
            return
        self._install(self._decode(stored))
        self.computed_here = False

    def _compute_and_store(self, now: datetime) -> None:
        try:
            snapshot = self._compute(now)
            self.computed_here = True
            self._store.write(StoredBoard(self.name, now, self._encode(snapshot)))
        except Exception:
            # A holder that cannot compute gives the job up at once: the next process to
            # refresh takes it over instead of waiting for the lease to expire.
            with suppress(DependencyUnavailable):
                self._leases.release(self.lease_name, self._holder)
            raise


# --------------------------------------------------------------------- the boards' payloads


def trending_payload(snapshot: TrendingSnapshot) -> Payload:
    """Column by column: `{"videoId": [...], "score": [...]}`, best first."""
    return {
        "videoId": [item.video_id for item in snapshot.items],
        "score": [item.score for item in snapshot.items],
    }


def trending_from_stored(stored: StoredBoard) -> TrendingSnapshot:
    payload = stored.payload
    items = tuple(
        ScoredVideo(str(video), float(score))
        for video, score in zip(payload["videoId"], payload["score"], strict=True)
    )
    return TrendingSnapshot(items, stored.computed_at)


def exploration_payload(snapshot: ExplorationSnapshot) -> Payload:
    return {
        "videoId": [item.video_id for item in snapshot.items],
        "score": [item.score for item in snapshot.items],
        "modelVersion": snapshot.model_version,
    }


def exploration_from_stored(stored: StoredBoard) -> ExplorationSnapshot:
    payload = stored.payload
    items = tuple(
        ScoredVideo(str(video), float(score), ItemSource.EXPLORATION)
        for video, score in zip(payload["videoId"], payload["score"], strict=True)
    )
    version = payload.get("modelVersion")
    return ExplorationSnapshot(items, None if version is None else str(version), stored.computed_at)
