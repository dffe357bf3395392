"""A window reduced to pairs while it is read (`adapters.pair_window`) trains on the very pairs,
weights and prior its events would give, whatever order and vocabularies its parts come in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

import adapters.pair_window as pair_window
from adapters.interaction_columns import TrainingInteractions
from adapters.lightfm import evaluation
from adapters.lightfm.interactions import aggregate_pairs
from adapters.lightfm.prior import decayed_positives
from adapters.lightfm.trainer import LightFMTrainer
from adapters.pair_window import PairWindow, PairWindowBuilder
from app.demo_data import generate_interactions

pytestmark = pytest.mark.integration

END = datetime(2026, 11, 24, tzinfo=UTC)
SPLIT = END - timedelta(days=2)


def events() -> TrainingInteractions:
    data = generate_interactions(2000, 500, 100_000, days=10, seed=3, end=END)
    rows = TrainingInteractions(
        data.user_ids,
        data.user_codes,
        data.video_ids,
        data.video_codes,
        data.type_codes,
        data.watch_time_ms,
        data.occurred_at_ms,
    )
    return rows.take(np.random.default_rng(1).permutation(len(rows)))


def streamed(rows: TrainingInteractions, parts: int) -> PairWindow:
    """`rows` given in `parts` shuffled parts, each with its own vocabularies in its own order."""
    builder = PairWindowBuilder(SPLIT, 7.0)
    for part in np.array_split(np.arange(len(rows)), parts):
        sub = rows.take(part)
        users, user_codes = np.unique(sub.user_vocab[sub.user_codes], return_inverse=True)
        videos, video_codes = np.unique(sub.video_vocab[sub.video_codes], return_inverse=True)
        builder.add(
            TrainingInteractions(
                users[::-1],
                (len(users) - 1 - user_codes).astype(np.int32),
                videos,
                video_codes.astype(np.int32),
                sub.type_codes,
                sub.watch_time_ms,
                sub.occurred_at_ms,
            )
        )
    return builder.build()


def weighted(pairs: object) -> dict[tuple[str, str], float]:
    p = aggregate_pairs(pairs)  # type: ignore[arg-type]
    return dict(
        zip(
            zip(p.user_ids[p.rows].tolist(), p.item_ids[p.cols].tolist(), strict=True),
            p.weights.tolist(),
            strict=True,
        )
    )


def test_streamed_pairs_weigh_exactly_as_the_events(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pair_window, "_MIN_MERGE", 1000)  # many merges, not one at the end
    rows = events()

    window = streamed(rows, parts=13)

    assert len(window) == len(rows)
    assert len(window.rows) == int((rows.occurred_at_ms >= SPLIT.timestamp() * 1000).sum())
    assert weighted(window) == weighted(rows)
    pairs = aggregate_pairs(window)
    keys = pairs.rows.astype(np.int64) * len(pairs.item_ids) + pairs.cols
    assert (np.diff(keys) > 0).all(), "pairs sorted by user then video, as aggregate_pairs's"


@pytest.mark.parametrize("days_after_split", [0, 1, 2])
def test_the_decayed_prior_counts_match_the_events_at_any_later_end(days_after_split: int) -> None:
    rows = events()
    window = streamed(rows, parts=5)
    end = SPLIT + timedelta(days=days_after_split)

    videos, counts = decayed_positives(window, end, 7.0)
    expected_videos, expected = decayed_positives(rows, end, 7.0)

    got = dict(zip(videos.tolist(), counts.tolist(), strict=True))
    assert got.keys() == set(expected_videos.tolist())
    for video, count in zip(expected_videos.tolist(), expected.tolist(), strict=True):
        assert got[video] == pytest.approx(count, rel=1e-12)
    with pytest.raises(ValueError, match="half-life"):
        decayed_positives(window, end, 3.0)


def test_a_user_sample_keeps_whole_users() -> None:
    window = streamed(events(), parts=3)

    sample = window.sample_users(0.3)

    kept = set(sample.rows.user_codes.tolist()) | set((sample.keys >> 32).tolist())
    everyone = set(window.rows.user_codes.tolist()) | set((window.keys >> 32).tolist())
    assert 0.2 < len(kept) / len(everyone) < 0.4
    pairs_of_kept = np.isin(window.keys >> 32, list(kept))
    assert len(sample.keys) == int(pairs_of_kept.sum())


def test_a_training_budget_bounds_seeds_then_epochs() -> None:
    trainer = LightFMTrainer(epochs=4, seeds=3, no_components=8)
    window = streamed(events(), parts=2)

    unbounded = trainer.train(window, END - timedelta(days=10), END, END, budget_s=1e9)
    starved = trainer.train(window, END - timedelta(days=10), END, END, budget_s=1e-9)

    assert (unbounded.info.params["epochs"], unbounded.info.params["seeds"]) == ("4", "3")
    assert (starved.info.params["epochs"], starved.info.params["seeds"]) == ("1", "1")
    assert starved.item_embeddings.shape[1] == 8


def test_the_search_check_scores_the_same_a_batch_of_users_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = events()
    fit, held_out = rows.split_at(SPLIT)
    artifact = LightFMTrainer(epochs=2, no_components=8, prior_weight=1.0).train(
        fit, END - timedelta(days=10), SPLIT, END
    )
    weights = (0.0, 1.0, 4.0)
    whole = evaluation.blend_quality(artifact, held_out, weights)

    monkeypatch.setattr(evaluation, "_BATCH_CELLS", len(artifact.item_ids) * 7)
    batched = evaluation.blend_quality(artifact, held_out, weights)

    assert np.allclose(batched, whole, rtol=1e-12, atol=0)
    assert whole[0][0] > 0
