"""Serving feed pages: experiments, the session's pool, pagination and cursors.

The first page of a feed session builds a candidate pool once (`domain.feed_pool`: the
variant's source, the fallback, the viewer's recent state, exploration) and records the
session; later pages are cut from that pool, keep the session's algorithm and never repeat a
video. No network call runs inside a database transaction.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import TYPE_CHECKING

from domain.auth import Principal, ensure_may_act_for
from domain.cursor import CursorCodec
from domain.errors import Conflict, DependencyUnavailable, InvalidInput
from domain.experiments import Experiment
from domain.feed import FeedPage, FeedServed, FeedSession
from domain.feed_pool import PoolBuilder
from domain.feed_recording import UnitOfWorkSessionRecorder
from domain.interactions import id_problem

if TYPE_CHECKING:
    from ports.clock import Clock
    from ports.observability import Analytics
    from ports.repositories import FeedSessionRecorder, UnitOfWork

log = logging.getLogger(__name__)

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


@dataclass(frozen=True)
class FeedRequest:
    """`spent_s`: seconds the request had already spent when it reached the service (reading,
    authenticating, parsing): the model's budget counts from the request's arrival."""

    user_id: str
    limit: int = DEFAULT_PAGE_SIZE
    cursor: str | None = None
    feed_session_id: str | None = None
    spent_s: float = 0.0


@dataclass(frozen=True)
class ServedPage:
    """A page as the viewer gets it. `next_cursor` is None on the last page, and on a first
    page that could not be recorded (the database was down: the feed degrades to one page)."""

    page: FeedPage
    next_cursor: str | None
    #: The 1-based session-wide rank of the page's first item.
    first_rank: int = 1


class FeedService:
    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        *,
        pools: PoolBuilder,
        analytics: Analytics,
        clock: Clock,
        cursors: CursorCodec,
        experiment: Experiment | None = None,
        new_session_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        sessions: FeedSessionRecorder | None = None,
    ) -> None:
        """`sessions` records a first page with its session; by default one `unit_of_work`.
        Raises ValueError when a variant of `experiment` names a source `pools` lacks."""
        if experiment is not None:
            for variant in experiment.variants:
                if variant.algorithm and variant.algorithm not in pools.sources.by_name:
                    raise ValueError(
                        f"variant {variant.id!r} names {variant.algorithm.value!r},"
                        " which no configured source serves"
                    )
        self._unit_of_work = unit_of_work
        self._sessions = sessions or UnitOfWorkSessionRecorder(unit_of_work)
        self._pools = pools
        self._analytics = analytics
        self._clock = clock
        self._cursors = cursors
        self._experiment = experiment
        self._new_session_id = new_session_id

    def page(self, principal: Principal, request: FeedRequest) -> ServedPage:
        """Raises Forbidden, InvalidInput (limit, ids, cursor), Conflict (a feedSessionId of
        another viewer) or DependencyUnavailable (nothing at all can be served)."""
        ensure_may_act_for(principal, request.user_id)
        _validate(request)
        if request.cursor is not None:
            served = self._next_page(request)
        else:
            served = self._first_page(request)
        self._announce(served.page)
        return served

    # --- first page -------------------------------------------------------------------------

    def _first_page(self, request: FeedRequest) -> ServedPage:
        session_id = request.feed_session_id or self._new_session_id()
        if request.feed_session_id is not None:
            replay = self._replay_first_page(request.feed_session_id, request.user_id)
            if replay is not None:
                return replay
        variant = self._experiment.assign(request.user_id) if self._experiment else None
        pool = self._pools.build(request.user_id, variant, spent_s=request.spent_s)
        now = self._clock.now()
        session = FeedSession(
            feed_session_id=session_id,
            user_id=request.user_id,
            algorithm=pool.algorithm,
            fallback_reason=pool.fallback_reason,
            model_version=pool.model_version,
            experiment_variant_id=variant.id if variant else None,
            candidates=pool.candidates,
            created_at=now,
            personalization=pool.personalization,
        )
        page = _cut_page(session, 1, request.limit, already_served=set(), now=now)
        try:
            self._sessions.record_new(session, page)
        except DependencyUnavailable:
            # The viewer still gets a feed; without a record there is no next page.
            log.warning("feed session not recorded", extra={"feed_session_id": session_id})
            return ServedPage(page, None)
        except Conflict:
            # The same new feedSessionId twice at once: the first one to commit wins.
            replay = self._replay_first_page(session_id, request.user_id)
            if replay is None:
                raise
            return replay
        return ServedPage(page, self._cursor_after(session, page))

    def _replay_first_page(self, session_id: str, user_id: str) -> ServedPage | None:
        """The recorded first page of a session the viewer restarts with the same id."""
        with self._unit_of_work() as uow:
            session = uow.feed_sessions.get(session_id)
            pages = uow.feed_cache.pages(session_id) if session else []
        if session is None or not pages:
            return None
        if session.user_id != user_id:
            raise Conflict("this feedSessionId is already used by another viewer")
        first = pages[0]
        return ServedPage(first, self._cursor_after(session, first, pages))

    # --- later pages ------------------------------------------------------------------------

    def _next_page(self, request: FeedRequest) -> ServedPage:
        assert request.cursor is not None
        now = self._clock.now()
        position = self._cursors.decode(request.cursor, request.user_id, now)
        if request.feed_session_id not in (None, position.feed_session_id):
            raise InvalidInput(
                "feedSessionId does not match the cursor",
                {"feedSessionId": "differs from the session the cursor belongs to"},
            )
        with self._unit_of_work() as uow:
            session = uow.feed_sessions.get(position.feed_session_id)
            if session is None or session.user_id != request.user_id:
                raise InvalidInput("the cursor's feed session is gone", {"cursor": "is stale"})
            pages = uow.feed_cache.pages(session.feed_session_id)
            existing = next((p for p in pages if p.page_number == position.page_number), None)
            if existing is not None:  # the same cursor again: the same page again
                return ServedPage(
                    existing,
                    self._cursor_after(session, existing, pages),
                    _first_rank(pages, existing.page_number),
                )
            if position.page_number != len(pages) + 1:
                raise InvalidInput("the cursor skips pages", {"cursor": "is out of sequence"})
            served = {item.video_id for p in pages for item in p.items}
            page = _cut_page(session, position.page_number, request.limit, served, now)
            uow.feed_cache.add_page(page)
            uow.commit()
        return ServedPage(
            page,
            self._cursor_after(session, page, [*pages, page]),
            _first_rank(pages, page.page_number),
        )

    # --- shared -----------------------------------------------------------------------------

    def _cursor_after(
        self, session: FeedSession, page: FeedPage, pages: list[FeedPage] | None = None
    ) -> str | None:
        recorded = pages if pages is not None else [page]
        served = {
            item.video_id for p in recorded if p.page_number <= page.page_number for item in p.items
        }
        if all(item.video_id in served for item in session.candidates):
            return None
        return self._cursors.encode(
            session.feed_session_id, session.user_id, page.page_number + 1, self._clock.now()
        )

    def _announce(self, page: FeedPage) -> None:
        self._analytics.feed_served(
            FeedServed(
                user_id=page.user_id,
                feed_session_id=page.feed_session_id,
                algorithm=page.algorithm,
                fallback_reason=page.fallback_reason,
                experiment_variant_id=page.experiment_variant_id,
                model_version=page.model_version,
                page=page.page_number,
                item_count=len(page.items),
                served_at=page.created_at,
                personalization=page.personalization,
            )
        )


def _validate(request: FeedRequest) -> None:
    problems: dict[str, str] = {}
    if problem := id_problem(request.user_id):
        problems["userId"] = problem
    if not 1 <= request.limit <= MAX_PAGE_SIZE:
        problems["limit"] = f"must be between 1 and {MAX_PAGE_SIZE}"
    if request.feed_session_id is not None and (problem := id_problem(request.feed_session_id)):
        problems["feedSessionId"] = problem
    if problems:
        raise InvalidInput("the request has invalid parameters", problems)


def _first_rank(pages: list[FeedPage], page_number: int) -> int:
    return 1 + sum(len(p.items) for p in pages if p.page_number < page_number)


def _cut_page(
    session: FeedSession, number: int, limit: int, already_served: set[str], now: datetime
) -> FeedPage:
    if already_served:
        unserved = (c for c in session.candidates if c.video_id not in already_served)
        items = tuple(islice(unserved, limit))
    else:  # a first page: the pool's head
        items = tuple(session.candidates[:limit])
    return FeedPage(
        feed_session_id=session.feed_session_id,
        page_number=number,
        user_id=session.user_id,
        algorithm=session.algorithm,
        fallback_reason=session.fallback_reason,
        model_version=session.model_version,
        experiment_variant_id=session.experiment_variant_id,
        items=items,
        created_at=now,
        personalization=session.personalization,
    )
