"""The contract of `ActivityReader.top_videos`: each backend (the in-memory fake, SQLite and
PostgreSQL) ranks exactly as the domain's reference formula over its own
`viewer_activity_between`, with the same scores up to float rounding."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from domain.interactions import InteractionType
from domain.trending import FORMULA, top_videos_from_activity
from tests.contract.conftest import Storage
from tests.contract.test_activity_contract import interaction, store

pytestmark = pytest.mark.contract

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_a_small_case_scores_as_the_formula_says(storage: Storage) -> None:
    store(
        storage.new_uow,
        # v1: a like and a full view in the newest bucket (decay 0.5 ** (0.5 / 24))
        interaction("v1", NOW - 0.5 * HOUR, InteractionType.LIKE, 0),
        interaction("v1", NOW - 0.5 * HOUR, InteractionType.VIEW, 60_000),
        # v2: a 3-second glance counts a tenth of a view (2 s: still the floor of 0.1)
        interaction("v2", NOW - 0.5 * HOUR, InteractionType.VIEW, 2_000),
        # v3: a share 2 to 3 hours ago, then hidden: 5 - 2, in bucket 1-3 h (decay at 2 h)
        interaction("v3", NOW - 2 * HOUR, InteractionType.SHARE, 0),
        interaction("v3", NOW - 2 * HOUR, InteractionType.HIDE, 0),
        # v4: skipped only: negative, never listed
        interaction("v4", NOW - 0.5 * HOUR, InteractionType.SKIP, 0),
        # outside the window: older than 96 h, or not before now
        interaction("v5", NOW - 97 * HOUR, InteractionType.SHARE, 0),
        interaction("v5", NOW, InteractionType.SHARE, 0),
    )

    got = storage.activity.top_videos(FORMULA, NOW, 10)

    newest, second = 0.5 ** (0.5 / 24), 0.5 ** (2 / 24)
    expected = [("v1", 4 * newest), ("v3", 3 * second), ("v2", 0.1 * newest)]
    assert [video for video, _ in got] == [video for video, _ in expected]
    for (_, score), (_, want) in zip(got, expected, strict=True):
        assert score == pytest.approx(want, rel=1e-12)


def test_ties_are_broken_by_video_id_and_size_cuts_the_list(storage: Storage) -> None:
    store(
        storage.new_uow,
        *(interaction(video, NOW - HOUR / 2, InteractionType.LIKE, 0) for video in "dbca"),
    )

    assert [video for video, _ in storage.activity.top_videos(FORMULA, NOW, 3)] == ["a", "b", "c"]
    assert storage.activity.top_videos(FORMULA, NOW, 0) == []


def test_a_random_month_ranks_as_the_reference_does(storage: Storage) -> None:
    rng = random.Random(7)
    kinds = list(InteractionType)
    store(
        storage.new_uow,
        *(
            interaction(
                f"video-{rng.randrange(60):02d}",
                NOW - timedelta(seconds=rng.randrange(110 * 3600)),
                rng.choice(kinds),
                rng.choice([0, 500, 3_000, 12_345, 30_000, 90_000]),
                f"viewer-{rng.randrange(30):02d}",
            )
            for _ in range(1_500)
        ),
    )

    got = storage.activity.top_videos(FORMULA, NOW, 40)
    reference = top_videos_from_activity(storage.activity.viewer_activity_between, FORMULA, NOW, 40)

    assert [video for video, _ in got] == [video for video, _ in reference]
    for (_, score), (_, want) in zip(got, reference, strict=True):
        assert score == pytest.approx(want, rel=1e-9)


def test_one_viewer_says_as_much_as_one_share_however_many_events_they_send(
    storage: Storage,
) -> None:
    # the abuse of issue #15: one account's 500 shares for a made-up video, spread over every
    # bucket (client-chosen timestamps), against a video three people liked
    store(
        storage.new_uow,
        *(
            interaction("made-up", NOW - (n % 96 + 0.5) * HOUR, InteractionType.SHARE, 0, "bot")
            for n in range(500)
        ),
        *(
            interaction("liked", NOW - 0.5 * HOUR, InteractionType.LIKE, 0, f"viewer-{n}")
            for n in range(3)
        ),
        # the same account hiding a video over and over takes at most one share's worth off it
        *(interaction("hidden", NOW - HOUR / 2, InteractionType.HIDE, 0, "bot") for _ in range(50)),
        *(
            interaction("hidden", NOW - HOUR / 2, InteractionType.SHARE, 0, f"viewer-{n}")
            for n in range(2)
        ),
    )

    got = dict(storage.activity.top_videos(FORMULA, NOW, 10))

    newest = 0.5 ** (0.5 / 24)
    assert list(got) == ["liked", "made-up", "hidden"]
    assert got["liked"] == pytest.approx(3 * 3 * newest, rel=1e-12)
    assert got["made-up"] == pytest.approx(FORMULA.viewer_cap, rel=1e-12)
    assert got["hidden"] == pytest.approx(2 * 5 * newest - FORMULA.viewer_cap, rel=1e-12)
