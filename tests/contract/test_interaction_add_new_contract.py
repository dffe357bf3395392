"""The contract of `InteractionRepository.add_new` (`uow.interactions.add_new`): store what is
new, leave what is stored, say which were new. Run unchanged against the in-memory fake,
SQLite and PostgreSQL (conftest.py's backends)."""

from __future__ import annotations

import threading
import time

import pytest

from domain.errors import Conflict
from tests.contract.conftest import NewUnitOfWork
from tests.contract.test_repository_contract import interaction, store

pytestmark = pytest.mark.contract


def test_new_event_ids_are_stored_and_returned(new_uow: NewUnitOfWork) -> None:
    with new_uow() as uow:
        assert uow.interactions.add_new([interaction("e1"), interaction("e2")]) == {"e1", "e2"}
        uow.commit()

    with new_uow() as uow:
        assert uow.interactions.get_by_event_ids(["e1", "e2"]) == {
            "e1": interaction("e1"),
            "e2": interaction("e2"),
        }


def test_a_stored_event_id_is_left_as_it_is_and_not_returned(new_uow: NewUnitOfWork) -> None:
    store(new_uow, interaction("e1"))

    with new_uow() as uow:
        inserted = uow.interactions.add_new([interaction("e1", watch_time_ms=9), interaction("e2")])
        uow.commit()

    assert inserted == {"e2"}
    with new_uow() as uow:
        assert uow.interactions.count() == 2
        assert uow.interactions.get_by_event_ids(["e1"]) == {"e1": interaction("e1")}


def test_an_event_id_repeated_in_one_call_is_stored_once_the_first_time(
    new_uow: NewUnitOfWork,
) -> None:
    with new_uow() as uow:
        inserted = uow.interactions.add_new(
            [interaction("e1", watch_time_ms=1), interaction("e1", watch_time_ms=2)]
        )
        uow.commit()

    assert inserted == {"e1"}
    with new_uow() as uow:
        assert uow.interactions.get_by_event_ids(["e1"]) == {
            "e1": interaction("e1", watch_time_ms=1)
        }


def test_nothing_to_add_adds_nothing(new_uow: NewUnitOfWork) -> None:
    with new_uow() as uow:
        assert uow.interactions.add_new([]) == set()
        assert uow.interactions.count() == 0


def test_what_add_new_staged_is_visible_inside_and_gone_without_commit(
    new_uow: NewUnitOfWork,
) -> None:
    with new_uow() as uow:
        uow.interactions.add_new([interaction("e1")])
        assert set(uow.interactions.get_by_event_ids(["e1"])) == {"e1"}
        assert uow.interactions.add_new([interaction("e1")]) == set()

    with new_uow() as uow:
        assert uow.interactions.count() == 0


def test_of_two_units_of_work_adding_one_new_event_id_only_the_first_stores_it(
    new_uow: NewUnitOfWork,
) -> None:
    """SQL makes the later `add_new` wait for the first commit and then skip the id; the fake
    stages at once and refuses the later commit. Either way it is stored once, as the first."""
    first_committed = threading.Event()
    outcome: list[str] = []

    def add_the_same_event_id() -> None:
        try:
            with new_uow() as uow:
                inserted = uow.interactions.add_new([interaction("e1", watch_time_ms=2)])
                first_committed.wait(5)
                uow.commit()
            outcome.append("stored" if inserted else "skipped")
        except Conflict:
            outcome.append("conflict")

    with new_uow() as uow:
        uow.interactions.add_new([interaction("e1")])
        second = threading.Thread(target=add_the_same_event_id)
        second.start()
        time.sleep(0.1)  # let the second reach the point where it waits
        uow.commit()
    first_committed.set()
    second.join(10)

    assert outcome in (["skipped"], ["conflict"])
    with new_uow() as uow:
        assert uow.interactions.get_by_event_ids(["e1"]) == {"e1": interaction("e1")}
