"""Recording a new feed session with its first page through any unit of work."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from domain.feed import FeedPage, FeedSession

if TYPE_CHECKING:
    from ports.repositories import UnitOfWork


def check_first_page(session: FeedSession, first_page: FeedPage) -> None:
    """Raises ValueError unless `first_page` is page 1 of `session` (a caller's bug)."""
    if first_page.page_number != 1 or first_page.feed_session_id != session.feed_session_id:
        raise ValueError(
            f"page {first_page.page_number} of {first_page.feed_session_id!r} is not the first"
            f" page of session {session.feed_session_id!r}"
        )


class UnitOfWorkSessionRecorder:
    """Implements `ports.repositories.FeedSessionRecorder` with one unit of work: the session
    and its first page staged in one transaction. For stores with no one-statement form."""

    def __init__(self, unit_of_work: Callable[[], UnitOfWork]) -> None:
        self._unit_of_work = unit_of_work

    def record_new(self, session: FeedSession, first_page: FeedPage) -> None:
        check_first_page(session, first_page)
        with self._unit_of_work() as uow:
            uow.feed_sessions.add(session)
            uow.feed_cache.add_page(first_page)
            uow.commit()
