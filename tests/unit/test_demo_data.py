"""The synthetic history: reproducible, shaped like real viewing, with tastes planted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from app.demo_data import (
    DEMO_INTERACTIONS,
    DEMO_USERS,
    DEMO_VIDEOS,
    SyntheticInteractions,
    demo_interactions,
    generate_interactions,
)
from domain.interactions import InteractionType

pytestmark = pytest.mark.unit

END = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def data() -> SyntheticInteractions:
    return generate_interactions(500, 2_000, 50_000, days=7, seed=11, end=END)


def code_of(kind: InteractionType) -> int:
    return list(InteractionType).index(kind)


def test_the_same_seed_gives_the_same_history_and_another_seed_another(
    data: SyntheticInteractions,
) -> None:
    again = generate_interactions(500, 2_000, 50_000, days=7, seed=11, end=END)
    other = generate_interactions(500, 2_000, 50_000, days=7, seed=12, end=END)
    for column in ("user_codes", "video_codes", "type_codes", "watch_time_ms", "occurred_at_ms"):
        np.testing.assert_array_equal(getattr(again, column), getattr(data, column))
    assert not np.array_equal(other.video_codes, data.video_codes)


def test_ids_and_sizes_are_as_asked(data: SyntheticInteractions) -> None:
    assert len(data) == 50_000
    assert (len(data.user_ids), len(data.video_ids)) == (500, 2_000)
    assert (data.user_ids[123], data.video_ids[1999]) == ("u000123", "v001999")


def test_events_fall_in_the_window_in_time_order(data: SyntheticInteractions) -> None:
    start_ms = int((END - timedelta(days=7)).timestamp() * 1000)
    end_ms = int(END.timestamp() * 1000)
    assert start_ms <= data.occurred_at_ms.min() and data.occurred_at_ms.max() < end_ms
    assert np.all(np.diff(data.occurred_at_ms) >= 0)
    days = (data.occurred_at_ms - start_ms) // 86_400_000
    assert np.bincount(days).min() > 50_000 / 7 * 0.9  # spread over every day


def test_users_mostly_watch_their_own_taste_cluster(data: SyntheticInteractions) -> None:
    own = data.video_clusters[data.video_codes] == data.user_clusters[data.user_codes]
    assert own.mean() > 0.8


def test_own_cluster_events_are_positive_and_others_mostly_skips_or_hides(
    data: SyntheticInteractions,
) -> None:
    weights = data.to_training().weights()
    own = data.video_clusters[data.video_codes] == data.user_clusters[data.user_codes]
    assert weights[own].mean() > 3 * weights[~own].mean()
    rejected = np.isin(
        data.type_codes, [code_of(InteractionType.SKIP), code_of(InteractionType.HIDE)]
    )
    assert rejected[~own].mean() > 0.5 > rejected[own].mean()


def test_a_few_videos_draw_most_of_the_views(data: SyntheticInteractions) -> None:
    counts = np.sort(np.bincount(data.video_codes, minlength=2_000))[::-1]
    assert counts[:200].sum() > 0.4 * len(data)  # top 10% of the catalogue


def test_watch_time_follows_the_interaction_type(data: SyntheticInteractions) -> None:
    def mean_watch(kind: InteractionType) -> float:
        return float(data.watch_time_ms[data.type_codes == code_of(kind)].mean())

    assert mean_watch(InteractionType.SKIP) < 3_000 < mean_watch(InteractionType.VIEW)
    assert mean_watch(InteractionType.VIEW) < mean_watch(InteractionType.COMPLETE)


def test_events_spell_out_the_columns(data: SyntheticInteractions) -> None:
    events = list(data.events(batch_size=7_000))
    assert len(events) == len(data)
    last = events[-1]
    assert last.user_id == data.user_ids[data.user_codes[-1]]
    assert last.video_id == data.video_ids[data.video_codes[-1]]
    assert last.interaction_type is list(InteractionType)[data.type_codes[-1]]
    assert last.watch_time_ms == data.watch_time_ms[-1]
    assert last.occurred_at == datetime.fromtimestamp(data.occurred_at_ms[-1] / 1000, tz=UTC)


def test_the_demo_history_has_the_documented_size() -> None:
    demo = demo_interactions(END)
    assert (len(demo.user_ids), len(demo.video_ids), len(demo)) == (
        DEMO_USERS,
        DEMO_VIDEOS,
        DEMO_INTERACTIONS,
    )
    assert (DEMO_USERS, DEMO_VIDEOS, DEMO_INTERACTIONS) == (1_000, 5_000, 200_000)
