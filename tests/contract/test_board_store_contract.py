"""The contract of `ports.repositories.BoardStore`, run unchanged against the in-memory fake,
SQLite and PostgreSQL (conftest.py's backends)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.shared_boards import StoredBoard
from ports.repositories import BoardStore
from tests.contract.conftest import Storage

pytestmark = pytest.mark.contract

T0 = datetime(2026, 12, 2, 12, 0, 0, 123_456, tzinfo=UTC)
INDIA = timezone(timedelta(hours=5, minutes=30))
PAYLOAD = {
    "videoId": ["v1", "v2", "v3"],
    "score": [3.25, 1.5, 0.000123],
    "modelVersion": None,
}


@pytest.fixture
def boards(storage: Storage) -> BoardStore:
    return storage.boards


def test_nothing_is_stored_until_a_board_is_written(boards: BoardStore) -> None:
    assert boards.read("trending") is None


def test_a_board_reads_back_as_written(boards: BoardStore) -> None:
    boards.write(StoredBoard("trending", T0, PAYLOAD))

    stored = boards.read("trending")

    assert stored == StoredBoard("trending", T0, PAYLOAD)
    assert stored is not None and stored.computed_at.utcoffset() == timedelta(0)


def test_the_newest_write_replaces_the_board_and_other_names_are_apart(
    boards: BoardStore,
) -> None:
    boards.write(StoredBoard("trending", T0, PAYLOAD))
    boards.write(StoredBoard("popularity", T0, {"videoId": ["p"], "score": [9.0]}))
    later = {"videoId": ["v9"], "score": [2.0]}

    boards.write(StoredBoard("trending", (T0 + timedelta(minutes=1)).astimezone(INDIA), later))

    assert boards.read("trending") == StoredBoard("trending", T0 + timedelta(minutes=1), later)
    assert boards.read("popularity") == StoredBoard(
        "popularity", T0, {"videoId": ["p"], "score": [9.0]}
    )


def test_an_empty_board_is_a_board(boards: BoardStore) -> None:
    empty: dict[str, list[object]] = {"videoId": [], "score": []}
    boards.write(StoredBoard("exploration", T0, empty))

    assert boards.read("exploration") == StoredBoard("exploration", T0, empty)
