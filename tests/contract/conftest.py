"""The backends every storage contract runs against: the in-memory fakes, SQLite (migrated in
a temporary folder) and a real PostgreSQL (a fresh database per test)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.sql.activity import SqlActivityReader
from adapters.sql.boards import SqlBoardStore
from adapters.sql.engine import make_engine
from adapters.sql.leases import SqlLeases
from adapters.sql.migrations import upgrade_database
from adapters.sql.session_recorder import SqlFeedSessionRecorder
from adapters.sql.unit_of_work import SqlUnitOfWorkFactory
from adapters.sql.viewer_history import SqlViewerHistory
from domain.feed_recording import UnitOfWorkSessionRecorder
from ports.repositories import (
    ActivityReader,
    BoardStore,
    FeedSessionRecorder,
    Leases,
    UnitOfWork,
)
from tests.fakes import (
    InMemoryActivityReader,
    InMemoryBoardStore,
    InMemoryLeases,
    InMemoryUnitOfWorkFactory,
)
from tests.fakes_viewer import InMemoryViewerHistory

NewUnitOfWork = Callable[[], UnitOfWork]


@dataclass(frozen=True)
class Storage:
    """One backend's implementation of each storage port, all over the same data."""

    new_uow: NewUnitOfWork
    activity: ActivityReader
    leases: Leases
    sessions: FeedSessionRecorder
    #: `ports.repositories.ViewerHistory` and `EngagementReader`
    history: SqlViewerHistory | InMemoryViewerHistory
    boards: BoardStore


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    if request.param == "memory":
        factory = InMemoryUnitOfWorkFactory()
        sessions = UnitOfWorkSessionRecorder(factory)
        history = InMemoryViewerHistory(factory)
        yield Storage(
            factory,
            InMemoryActivityReader(factory),
            InMemoryLeases(),
            sessions,
            history,
            InMemoryBoardStore(),
        )
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'feedrec.db'}"
    else:
        url = request.getfixturevalue("fresh_postgres_url")
    upgrade_database(url)
    engine = make_engine(url)
    recorder = SqlFeedSessionRecorder(engine)
    sql_history = SqlViewerHistory(engine)
    yield Storage(
        SqlUnitOfWorkFactory(engine),
        SqlActivityReader(engine),
        SqlLeases(engine),
        recorder,
        sql_history,
        SqlBoardStore(engine),
    )
    sql_history.close()
    recorder.close()
    engine.dispose()


@pytest.fixture
def new_uow(storage: Storage) -> NewUnitOfWork:
    return storage.new_uow
