"""Boards computed once per deployment (domain/shared_boards.py): the lease holder computes and
stores, every other process serves what it stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.errors import DependencyUnavailable
from domain.exploration import ExplorationSnapshot
from domain.feed import ItemSource, ScoredVideo, VideoActivity
from domain.shared_boards import (
    SharedRefresh,
    StoredBoard,
    exploration_from_stored,
    exploration_payload,
    trending_from_stored,
    trending_payload,
)
from domain.trending import TrendingBoard, TrendingFormula, TrendingSnapshot
from tests.fakes import InMemoryBoardStore, InMemoryLeases
from tests.fakes_feed import ScriptedActivity
from tests.feed_harness import Harness

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
TTL = timedelta(minutes=3)


class CountingActivity(ScriptedActivity):
    """Scripted activity that counts the aggregate queries (what a refresh costs the database)
    and can be switched off."""

    def __init__(self, likes: dict[str, int]) -> None:
        super().__init__(
            [(NOW - timedelta(minutes=5), VideoActivity(v, "like", n, 0)) for v, n in likes.items()]
        )
        self.queries = 0
        self.down = False

    def top_videos(
        self, formula: TrendingFormula, now: datetime, size: int
    ) -> list[tuple[str, float]]:
        if self.down:
            raise DependencyUnavailable("database", "switched off")
        self.queries += 1
        return super().top_videos(formula, now, size)


class Process:
    """One web process's trending board, refreshed through the shared store."""

    def __init__(
        self, holder: str, activity: CountingActivity, store: InMemoryBoardStore,
        leases: InMemoryLeases,
    ) -> None:  # fmt: skip
        self.board = TrendingBoard(activity, size=10)
        self.shared = SharedRefresh(
            "trending",
            compute=self.board.refresh,
            install=self.board.install,
            encode=trending_payload,
            decode=trending_from_stored,
            store=store,
            leases=leases,
            holder=holder,
            lease_ttl=TTL,
        )

    def videos(self) -> list[str]:
        return [item.video_id for item in self.board.current().items]


def refreshed_pair(
    activity: CountingActivity,
    store: InMemoryBoardStore,
    leases: InMemoryLeases,
    both: bool = True,
) -> tuple[Process, Process]:
    """Two processes over one store, web-1 refreshed first at NOW (so it holds the lease), then
    web-2 (unless `both` is False)."""
    first, second = (Process(f"web-{i}", activity, store, leases) for i in (1, 2))
    first.shared.refresh(NOW)
    if both:
        second.shared.refresh(NOW)
    return first, second


@pytest.fixture
def store() -> InMemoryBoardStore:
    return InMemoryBoardStore()


@pytest.fixture
def leases() -> InMemoryLeases:
    return InMemoryLeases()


def test_four_processes_compute_the_board_once_and_all_serve_it(
    store: InMemoryBoardStore, leases: InMemoryLeases
) -> None:
    activity = CountingActivity({"hot": 30, "warm": 20, "cool": 10})
    processes = [Process(f"web-{i}", activity, store, leases) for i in range(4)]
    processes[0].shared.refresh(NOW)  # the first to refresh takes the job

    for process in processes[1:]:
        process.shared.refresh(NOW + timedelta(seconds=1))

    assert activity.queries == 1
    assert store.writes == 1
    for process in processes:
        assert process.videos() == ["hot", "warm", "cool"]
        assert process.board.current().computed_at == NOW
    assert [p.shared.computed_here for p in processes] == [True, False, False, False]


def test_the_holder_recomputes_every_refresh_and_the_others_follow_it(
    store: InMemoryBoardStore, leases: InMemoryLeases
) -> None:
    activity = CountingActivity({"a": 10})
    holder, other = refreshed_pair(activity, store, leases)

    activity.rows.append((NOW + timedelta(seconds=30), VideoActivity("b", "like", 50, 0)))
    later = NOW + timedelta(minutes=1)
    holder.shared.refresh(later)
    other.shared.refresh(later + timedelta(seconds=5))

    assert other.videos() == ["b", "a"]
    assert other.board.current().computed_at == later
    assert activity.queries == 2


def test_a_process_finding_nothing_stored_computes_its_own_board(
    store: InMemoryBoardStore, leases: InMemoryLeases
) -> None:
    """A new database: the holder has not stored the first board yet. The others do not serve
    an empty board meanwhile; they compute their own and store nothing."""
    activity = CountingActivity({"a": 10})
    assert leases.acquire("board:trending", "web-1", NOW, TTL)  # web-1 is still computing

    other = Process("web-2", activity, store, leases)
    other.shared.refresh(NOW)

    assert other.videos() == ["a"]
    assert other.shared.computed_here
    assert store.writes == 0


def test_when_the_holder_dies_another_process_takes_the_job_once_its_lease_expired(
    store: InMemoryBoardStore, leases: InMemoryLeases
) -> None:
    activity = CountingActivity({"a": 10})
    _, survivor = refreshed_pair(activity, store, leases, both=False)  # web-1 then dies

    survivor.shared.refresh(NOW + TTL - timedelta(seconds=1))
    assert not survivor.shared.computed_here  # the stored board, stale but served

    survivor.shared.refresh(NOW + TTL)
    assert survivor.shared.computed_here
    assert store.boards["trending"].computed_at == NOW + TTL


def test_a_holder_that_cannot_compute_gives_the_lease_up_and_keeps_its_board(
    store: InMemoryBoardStore, leases: InMemoryLeases
) -> None:
    activity = CountingActivity({"a": 10})
    holder = Process("web-1", activity, store, leases)
    holder.shared.refresh(NOW)
    activity.down = True

    with pytest.raises(DependencyUnavailable):
        holder.shared.refresh(NOW + timedelta(minutes=1))

    assert "board:trending" not in leases.held
    assert holder.videos() == ["a"]  # the previous snapshot stays


def test_a_process_that_cannot_read_the_store_keeps_its_board(
    store: InMemoryBoardStore, leases: InMemoryLeases
) -> None:
    activity = CountingActivity({"a": 10})
    _, other = refreshed_pair(activity, store, leases)
    store.unavailable = True

    with pytest.raises(DependencyUnavailable):
        other.shared.refresh(NOW + timedelta(minutes=1))

    assert other.videos() == ["a"]


def test_a_lease_needs_a_positive_ttl(store: InMemoryBoardStore, leases: InMemoryLeases) -> None:
    board = TrendingBoard(CountingActivity({}))
    with pytest.raises(ValueError, match="positive ttl"):
        SharedRefresh(
            "trending",
            compute=board.refresh,
            install=board.install,
            encode=trending_payload,
            decode=trending_from_stored,
            store=store,
            leases=leases,
            holder="web-1",
            lease_ttl=timedelta(0),
        )


def test_the_boards_read_back_as_they_were_computed() -> None:
    trending = TrendingSnapshot((ScoredVideo("v1", 3.5), ScoredVideo("v2", 1.25)), NOW)
    stored = StoredBoard("trending", NOW, trending_payload(trending))
    assert trending_from_stored(stored) == trending

    exploration = ExplorationSnapshot(
        (ScoredVideo("new-1", 7.0, ItemSource.EXPLORATION),), "model-42", NOW
    )
    stored = StoredBoard("exploration", NOW, exploration_payload(exploration))
    assert exploration_from_stored(stored) == exploration
    empty = ExplorationSnapshot((), None, NOW)
    assert exploration_from_stored(StoredBoard("exploration", NOW, exploration_payload(empty))) == (
        empty
    )


def test_two_web_processes_built_by_the_composition_root_share_their_boards(
    store: InMemoryBoardStore, leases: InMemoryLeases
) -> None:
    first = Harness(sharing=(store, leases, "web-1"), exploration=0.1)
    second = Harness(sharing=(store, leases, "web-2"), exploration=0.1)

    assert sorted(store.boards) == ["exploration", "popularity", "trending"]
    assert store.writes == 3  # the first process's three boards; the second read them
    assert second.trending.current() == first.trending.current()
    assert len(second.trending.current().items) == 80
    assert {name: holder for name, (holder, _) in leases.held.items()} == {
        "board:trending": "web-1",
        "board:popularity": "web-1",
        "board:exploration": "web-1",
    }


def test_without_a_shared_store_each_process_computes_its_own_boards() -> None:
    harness = Harness()

    assert len(harness.trending.current().items) == 80
