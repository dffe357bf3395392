"""The contract of the `ports.repositories` unit of work: one suite, run unchanged against the
in-memory fake, SQLite and a real PostgreSQL (the `storage` backends of conftest.py)."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.errors import Conflict
from domain.feed import (
    Algorithm,
    FallbackReason,
    FeedPage,
    ItemSource,
    ScoredVideo,
    ServedItem,
)
from domain.interactions import InteractionEvent, InteractionType, StoredInteraction
from domain.outbox import OutboxMessage
from tests.contract.conftest import NewUnitOfWork

pytestmark = pytest.mark.contract

T0 = datetime(2026, 11, 24, 6, 55, 0, 123_456, tzinfo=UTC)
INDIA = timezone(timedelta(hours=5, minutes=30))
HOSTILE = "'; DROP TABLE user_interactions; -- 🎬🔥"
LONGEST_ID = "é🎬" * 64  # 128 characters, most of them outside the BMP


def interaction(event_id: str, **changes: object) -> StoredInteraction:
    event = InteractionEvent(
        event_id=event_id,
        user_id="viewer-1",
        video_id="video-1",
        interaction_type=InteractionType.VIEW,
        watch_time_ms=1_500,
        occurred_at=T0 - timedelta(minutes=1),
    )
    return StoredInteraction(replace(event, **changes), T0, None)  # type: ignore[arg-type]


def page(session: str, number: int, *items: tuple[str, float], **changes: object) -> FeedPage:
    built = FeedPage(
        feed_session_id=session,
        page_number=number,
        user_id="viewer-1",
        algorithm=Algorithm.LIGHTFM,
        fallback_reason=None,
        model_version="2026-11-24T02:00:00Z",
        experiment_variant_id=None,
        items=tuple(ScoredVideo(video_id, score) for video_id, score in items),
        created_at=T0,
    )
    return replace(built, **changes)  # type: ignore[arg-type]


def message(n: int) -> OutboxMessage:
    payload = {"eventId": f"e{n}", "nested": {"list": [1, 2.5, None, True]}, "text": HOSTILE}
    return OutboxMessage("feed.interactions.v1", f"viewer-{n}", payload, T0 + timedelta(seconds=n))


def store(new_uow: NewUnitOfWork, *interactions: StoredInteraction) -> None:
    with new_uow() as uow:
        uow.interactions.add(list(interactions))
        uow.commit()


# --- interactions ------------------------------------------------------------------------------


def test_an_interaction_round_trips_every_field_verbatim(new_uow: NewUnitOfWork) -> None:
    original = StoredInteraction(
        InteractionEvent(
            event_id=LONGEST_ID,
            user_id=HOSTILE,
            video_id="ビデオ-42",
            interaction_type=InteractionType.COMPLETE,
            watch_time_ms=86_400_000,
            occurred_at=datetime(2026, 11, 24, 12, 25, 0, 123_457, tzinfo=INDIA),
            feed_session_id=HOSTILE + "-session",
            algorithm="lightfm",
            experiment_variant_id="variant-β",
        ),
        received_at=T0,
        recommendation_score=0.1234567890123456,
    )

    store(new_uow, original)

    with new_uow() as uow:
        got = uow.interactions.get_by_event_ids([LONGEST_ID])
    assert got == {LONGEST_ID: original}
    stored = got[LONGEST_ID]
    for moment in (stored.event.occurred_at, stored.received_at):
        assert moment.utcoffset() == timedelta(0)
    assert stored.event.occurred_at == datetime(2026, 11, 24, 6, 55, 0, 123_457, tzinfo=UTC)
    assert stored.event.occurred_at.microsecond == 123_457
    assert stored.received_at.microsecond == 123_456


def test_an_interaction_without_optional_fields_round_trips(new_uow: NewUnitOfWork) -> None:
    bare = interaction("e-bare")

    store(new_uow, bare)

    with new_uow() as uow:
        assert uow.interactions.get_by_event_ids(["e-bare"]) == {"e-bare": bare}


def test_unknown_event_ids_are_absent(new_uow: NewUnitOfWork) -> None:
    store(new_uow, interaction("known"))

    with new_uow() as uow:
        assert set(uow.interactions.get_by_event_ids(["known", "unknown", "known"])) == {"known"}
        assert uow.interactions.get_by_event_ids(["nobody"]) == {}
        assert uow.interactions.get_by_event_ids([]) == {}


def test_count_counts_stored_interactions(new_uow: NewUnitOfWork) -> None:
    with new_uow() as uow:
        assert uow.interactions.count() == 0

    store(new_uow, interaction("e1"), interaction("e2"))

    with new_uow() as uow:
        assert uow.interactions.count() == 2


def test_a_stored_event_id_is_a_conflict_and_nothing_is_written(new_uow: NewUnitOfWork) -> None:
    first = interaction("e1")
    store(new_uow, first)

    with pytest.raises(Conflict), new_uow() as uow:
        uow.interactions.add([interaction("e2"), interaction("e1", watch_time_ms=9)])
        uow.commit()

    with new_uow() as uow:
        assert uow.interactions.count() == 1
        assert uow.interactions.get_by_event_ids(["e1", "e2"]) == {"e1": first}


def test_an_event_id_repeated_in_one_add_is_a_conflict(new_uow: NewUnitOfWork) -> None:
    with pytest.raises(Conflict), new_uow() as uow:
        uow.interactions.add([interaction("e1"), interaction("e1")])
        uow.commit()

    with new_uow() as uow:
        assert uow.interactions.count() == 0


def test_of_two_units_of_work_storing_one_new_event_id_the_later_commit_conflicts(
    new_uow: NewUnitOfWork,
) -> None:
    first_committed = threading.Event()
    outcome: list[str] = []

    def store_the_same_event_id() -> None:
        try:
            # SQL waits here (for the lock or the row) until the first commits; the fake
            # stages at once and finds the clash at its own commit.
            with new_uow() as uow:
                uow.interactions.add([interaction("e1", watch_time_ms=2)])
                first_committed.wait(5)
                uow.commit()
            outcome.append("stored")
        except Conflict:
            outcome.append("conflict")

    with new_uow() as uow:
        uow.interactions.add([interaction("e1")])
        second = threading.Thread(target=store_the_same_event_id)
        second.start()
        time.sleep(0.1)  # let the second reach the point where it waits
        uow.commit()
    first_committed.set()
    second.join(10)

    assert outcome == ["conflict"]
    with new_uow() as uow:
        assert uow.interactions.get_by_event_ids(["e1"]) == {"e1": interaction("e1")}


def test_a_refused_add_stages_nothing_and_the_unit_of_work_carries_on(
    new_uow: NewUnitOfWork,
) -> None:
    store(new_uow, interaction("e1"))

    with new_uow() as uow:
        with pytest.raises(Conflict):
            uow.interactions.add([interaction("e2"), interaction("e1")])
        uow.interactions.add([interaction("e3")])
        uow.commit()

    with new_uow() as uow:
        assert set(uow.interactions.get_by_event_ids(["e1", "e2", "e3"])) == {"e1", "e3"}


def test_staged_changes_are_visible_inside_their_unit_of_work(new_uow: NewUnitOfWork) -> None:
    with new_uow() as uow:
        uow.interactions.add([interaction("e1")])
        uow.feed_cache.add_page(page("s1", 1, ("v1", 0.5)))
        uow.outbox.add([message(1)])

        assert set(uow.interactions.get_by_event_ids(["e1"])) == {"e1"}
        assert uow.interactions.count() == 1
        assert [p.page_number for p in uow.feed_cache.pages("s1")] == [1]
        assert uow.outbox.backlog() == 1


def test_leaving_without_commit_discards_everything_staged(new_uow: NewUnitOfWork) -> None:
    with new_uow() as uow:
        uow.interactions.add([interaction("e1")])
        uow.feed_cache.add_page(page("s1", 1, ("v1", 0.5)))
        uow.outbox.add([message(1)])

    with new_uow() as uow:
        assert uow.interactions.count() == 0
        assert uow.feed_cache.pages("s1") == []
        assert uow.outbox.backlog() == 0


def test_an_error_inside_the_block_discards_everything_staged(new_uow: NewUnitOfWork) -> None:
    class BlockFailedError(Exception):
        pass

    with pytest.raises(BlockFailedError), new_uow() as uow:
        uow.interactions.add([interaction("e1")])
        uow.outbox.add([message(1)])
        raise BlockFailedError

    with new_uow() as uow:
        assert uow.interactions.count() == 0
        assert uow.outbox.backlog() == 0


# --- feed cache --------------------------------------------------------------------------------


def test_a_page_round_trips_every_field_verbatim(new_uow: NewUnitOfWork) -> None:
    original = page(
        HOSTILE,
        1,
        ("ビデオ-1", 0.987654321012345),
        (HOSTILE, -1.5),
        ("v3", 0.0),
        user_id=LONGEST_ID,
        algorithm=Algorithm.TRENDING,
        fallback_reason=FallbackReason.CIRCUIT_OPEN,
        model_version=None,
        experiment_variant_id="variant-β",
        created_at=datetime(2026, 11, 24, 12, 25, 0, 1, tzinfo=INDIA),
    )

    with new_uow() as uow:
        uow.feed_cache.add_page(original)
        uow.commit()

    with new_uow() as uow:
        (got,) = uow.feed_cache.pages(HOSTILE)
    assert got == original
    assert got.created_at.utcoffset() == timedelta(0)
    assert got.created_at.microsecond == 1


def test_pages_come_in_page_order_and_only_for_their_session(new_uow: NewUnitOfWork) -> None:
    with new_uow() as uow:
        for number in (3, 1, 2):
            uow.feed_cache.add_page(page("s1", number, (f"v{number}", 1.0)))
        uow.feed_cache.add_page(page("s2", 1))
        uow.commit()

    with new_uow() as uow:
        assert [p.page_number for p in uow.feed_cache.pages("s1")] == [1, 2, 3]
        assert [p.items for p in uow.feed_cache.pages("s2")] == [()]
        assert uow.feed_cache.pages("unknown") == []


def test_a_video_served_on_several_pages_keeps_its_first_score(new_uow: NewUnitOfWork) -> None:
    with new_uow() as uow:
        # stored out of order: "first" means the lowest page number, not the first insert
        uow.feed_cache.add_page(page("s1", 2, ("v1", 0.5), ("v9", 0.4)))
        uow.feed_cache.add_page(page("s1", 1, ("v2", 0.95), ("v1", 0.9)))
        uow.feed_cache.add_page(page("s2", 1, ("v1", 0.1), ("v3", 0.3)))
        uow.commit()

    with new_uow() as uow:
        scores = uow.feed_cache.served_scores("s1", ["v1", "v2", "v3", "never-served"])
        assert scores == {"v1": 0.9, "v2": 0.95}
        assert uow.feed_cache.served_scores("s1", []) == {}
        assert uow.feed_cache.served_scores("unknown", ["v1"]) == {}


def test_a_served_video_has_its_first_place_ranked_across_the_session(
    new_uow: NewUnitOfWork,
) -> None:
    with new_uow() as uow:
        uow.feed_cache.add_page(
            page("s1", 2, ("v1", 0.5), ("v9", 0.4), algorithm=Algorithm.TRENDING)
        )
        explored = ScoredVideo("v3", 0.2, ItemSource.EXPLORATION)
        uow.feed_cache.add_page(
            replace(
                page("s1", 1, ("v2", 0.95), ("v1", 0.9)),
                items=(ScoredVideo("v2", 0.95), ScoredVideo("v1", 0.9), explored),
            )
        )
        uow.feed_cache.add_page(page("s2", 1, ("v9", 0.1)))
        uow.commit()

    with new_uow() as uow:
        places = uow.feed_cache.served_items("s1", ["v1", "v3", "v9", "never-served"])
        assert places == {
            "v1": ServedItem("v1", 2, 0.9, ItemSource.MODEL),
            "v3": ServedItem("v3", 3, 0.2, ItemSource.EXPLORATION),
            # page 2 goes on from page 1's three items; a trending page's own items say so
            "v9": ServedItem("v9", 5, 0.4, ItemSource.TRENDING),
        }
        assert uow.feed_cache.served_items("s1", []) == {}
        assert uow.feed_cache.served_items("unknown", ["v1"]) == {}


def test_a_second_page_with_the_same_number_is_a_conflict(new_uow: NewUnitOfWork) -> None:
    first = page("s1", 1, ("v1", 0.5))
    with new_uow() as uow:
        uow.feed_cache.add_page(first)
        uow.commit()

    with pytest.raises(Conflict), new_uow() as uow:
        uow.feed_cache.add_page(page("s1", 1, ("v2", 0.7)))
        uow.commit()

    with new_uow() as uow:
        assert uow.feed_cache.pages("s1") == [first]


# --- outbox ------------------------------------------------------------------------------------


def test_pending_messages_come_oldest_first_and_round_trip(new_uow: NewUnitOfWork) -> None:
    with new_uow() as uow:
        assert uow.outbox.pending(10) == []
        uow.outbox.add([message(1), message(2), message(3)])
        uow.commit()
    with new_uow() as uow:
        uow.outbox.add([message(4)])
        uow.commit()

    with new_uow() as uow:
        pending = uow.outbox.pending(10)
    assert [p.message for p in pending] == [message(1), message(2), message(3), message(4)]
    assert [p.id for p in pending] == sorted(p.id for p in pending)
    assert len({p.id for p in pending}) == 4
    assert all(p.attempts == 0 for p in pending)
    assert all(p.message.created_at.utcoffset() == timedelta(0) for p in pending)


def test_pending_returns_at_most_limit_messages(new_uow: NewUnitOfWork) -> None:
    with new_uow() as uow:
        uow.outbox.add([message(n) for n in range(1, 6)])
        uow.commit()

    with new_uow() as uow:
        assert [p.message for p in uow.outbox.pending(2)] == [message(1), message(2)]
        assert uow.outbox.pending(0) == []


def test_sent_messages_are_never_pending_again(new_uow: NewUnitOfWork) -> None:
    with new_uow() as uow:
        uow.outbox.add([message(n) for n in range(1, 5)])
        uow.commit()
        ids = [p.id for p in uow.outbox.pending(10)]

    with new_uow() as uow:
        uow.outbox.mark_sent([ids[0], ids[2]], T0 + timedelta(seconds=30))
        uow.commit()

    with new_uow() as uow:
        assert [p.id for p in uow.outbox.pending(10)] == [ids[1], ids[3]]
        assert uow.outbox.backlog() == 2


def test_a_failed_publish_is_counted_and_the_message_stays_pending(
    new_uow: NewUnitOfWork,
) -> None:
    with new_uow() as uow:
        uow.outbox.add([message(1), message(2)])
        uow.commit()
        first, second = (p.id for p in uow.outbox.pending(10))

    for _ in range(2):
        with new_uow() as uow:
            uow.outbox.record_failure([first])
            uow.commit()

    with new_uow() as uow:
        assert [(p.id, p.attempts) for p in uow.outbox.pending(10)] == [(first, 2), (second, 0)]
        assert uow.outbox.backlog() == 2


def test_the_backlog_counts_unsent_messages(new_uow: NewUnitOfWork) -> None:
    with new_uow() as uow:
        assert uow.outbox.backlog() == 0
        uow.outbox.add([message(n) for n in range(1, 4)])
        uow.commit()

    with new_uow() as uow:
        uow.outbox.mark_sent([uow.outbox.pending(1)[0].id], T0)
        uow.commit()

    with new_uow() as uow:
        assert uow.outbox.backlog() == 2


def test_purging_deletes_messages_sent_before_the_cutoff_and_never_unsent_ones(
    new_uow: NewUnitOfWork,
) -> None:
    with new_uow() as uow:
        uow.outbox.add([message(n) for n in range(1, 5)])
        uow.commit()
        first, second, third, fourth = (p.id for p in uow.outbox.pending(10))
    with new_uow() as uow:
        uow.outbox.mark_sent([first], T0)
        uow.outbox.mark_sent([second], T0 + timedelta(minutes=1))
        uow.commit()

    with new_uow() as uow:
        # sent exactly at the cutoff is not "before" it; unsent messages are older still
        assert uow.outbox.purge_sent(T0 + timedelta(minutes=1)) == 1
        uow.commit()

    with new_uow() as uow:
        assert uow.outbox.purge_sent(T0 + timedelta(minutes=1)) == 0
        assert uow.outbox.purge_sent(datetime(2100, 1, 1, tzinfo=INDIA)) == 1
        uow.commit()
    with new_uow() as uow:
        assert uow.outbox.purge_sent(datetime(2100, 1, 1, tzinfo=UTC)) == 0
        assert [p.id for p in uow.outbox.pending(10)] == [third, fourth]
        assert uow.outbox.backlog() == 2


def test_a_purge_without_commit_deletes_nothing(new_uow: NewUnitOfWork) -> None:
    with new_uow() as uow:
        uow.outbox.add([message(1), message(2)])
        uow.commit()
        uow.outbox.mark_sent([p.id for p in uow.outbox.pending(10)], T0)
        uow.commit()

    with new_uow() as uow:
        assert uow.outbox.purge_sent(T0 + timedelta(seconds=1)) == 2

    with new_uow() as uow:
        assert uow.outbox.purge_sent(T0 + timedelta(seconds=1)) == 2


def test_messages_added_after_a_purge_get_higher_ids_than_the_purged_ones(
    new_uow: NewUnitOfWork,
) -> None:
    with new_uow() as uow:
        uow.outbox.add([message(1), message(2)])
        uow.commit()
        purged_ids = [p.id for p in uow.outbox.pending(10)]
        uow.outbox.mark_sent(purged_ids, T0)
        uow.commit()
    with new_uow() as uow:
        assert uow.outbox.purge_sent(T0 + timedelta(seconds=1)) == 2
        uow.commit()

    with new_uow() as uow:
        uow.outbox.add([message(3)])
        uow.commit()
        (fresh,) = uow.outbox.pending(10)
    # the relay resumes by id: a reused id would hide the new message behind an old one
    assert fresh.id > max(purged_ids)
    assert fresh.message == message(3)
