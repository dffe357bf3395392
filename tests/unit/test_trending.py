"""The trending formula: decay, type weights, watch time, negatives."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.feed import VideoActivity
from domain.interactions import InteractionType
from domain.model import SIGNAL_WEIGHTS
from domain.trending import TYPE_WEIGHT, ViewerActivity, compute_trending
from tests.fakes_feed import ScriptedActivity

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def order(rows: list[tuple[timedelta, VideoActivity | ViewerActivity]]) -> list[str]:
    reader = ScriptedActivity([(NOW - age, activity) for age, activity in rows])
    return [item.video_id for item in compute_trending(reader, NOW, size=10).items]


def test_recent_activity_outweighs_the_same_activity_days_ago() -> None:
    assert order(
        [
            (timedelta(days=3), VideoActivity("old", "like", 10, 0)),
            (timedelta(minutes=10), VideoActivity("new", "like", 10, 0)),
        ]
    ) == ["new", "old"]


def test_a_share_counts_more_than_a_view() -> None:
    assert order(
        [
            (timedelta(hours=2), VideoActivity("viewed", "view", 3, 3 * 30_000)),
            (timedelta(hours=2), VideoActivity("shared", "share", 1, 0)),
        ]
    ) == ["shared", "viewed"]


def test_glances_count_less_than_full_views() -> None:
    assert order(
        [
            (timedelta(hours=2), VideoActivity("glanced", "view", 10, 10 * 2_000)),
            (timedelta(hours=2), VideoActivity("watched", "view", 10, 10 * 40_000)),
        ]
    ) == ["watched", "glanced"]


def test_videos_people_hide_drop_out() -> None:
    assert order(
        [
            (timedelta(hours=2), VideoActivity("disliked", "view", 2, 60_000)),
            (timedelta(hours=2), VideoActivity("disliked", "hide", 5, 0)),
            (timedelta(hours=2), VideoActivity("fine", "view", 1, 30_000)),
        ]
    ) == ["fine"]


def test_activity_outside_the_window_is_ignored() -> None:
    assert order([(timedelta(hours=97), VideoActivity("ancient", "share", 100, 0))]) == []


def test_the_type_weights_are_keyed_by_the_interaction_type_and_cover_every_type() -> None:
    assert set(TYPE_WEIGHT) == set(InteractionType)
    assert all(isinstance(kind, InteractionType) for kind in TYPE_WEIGHT)
    assert set(TYPE_WEIGHT) == set(SIGNAL_WEIGHTS)  # both tables keyed the same way
    # A StrEnum member hashes equal to its value: lookups by the stored string still work.
    by_name: Mapping[Any, float] = TYPE_WEIGHT
    assert by_name["share"] == TYPE_WEIGHT[InteractionType.SHARE] == 5.0
    assert dict(TYPE_WEIGHT) == {
        "view": 1.0,
        "like": 3.0,
        "comment": 3.0,
        "share": 5.0,
        "complete": 2.0,
        "skip": -0.5,
        "hide": -2.0,
    }


def test_an_interaction_type_this_build_does_not_know_weighs_nothing() -> None:
    assert order(
        [
            (timedelta(hours=2), VideoActivity("liked", "like", 1, 0)),
            (timedelta(hours=2), VideoActivity("odd", "superlike", 100, 0)),
        ]
    ) == ["liked"]


def test_one_viewer_cannot_outweigh_a_handful_of_distinct_viewers() -> None:
    # 500 shares from one account for a made-up video, against two people's likes
    assert order(
        [
            (timedelta(minutes=10), ViewerActivity("bot", "made-up", "share", 500, 0)),
            (timedelta(minutes=10), VideoActivity("liked", "like", 2, 0)),
        ]
    ) == ["liked", "made-up"]
