"""The model's domain rules: training weights, versions, descriptions and ranking metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.interactions import InteractionType
from domain.model import (
    PAIR_WEIGHT_CAP,
    ModelInfo,
    ModelMetrics,
    interaction_weight,
    model_info_from_json,
    model_info_to_json,
    model_version_problem,
    new_model_version,
    pair_weight,
    precision_at_k,
    recall_at_k,
)

pytestmark = pytest.mark.unit

TRAINED_AT = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def make_info(**changes: object) -> ModelInfo:
    fields: dict[str, object] = {
        "version": "20261124T020000Z-3fa2c1",
        "trained_at": TRAINED_AT,
        "window_start": TRAINED_AT - timedelta(days=30),
        "window_end": TRAINED_AT,
        "n_users": 3,
        "n_items": 5,
        "n_interactions": 12,
        "metrics": ModelMetrics(precision_at_10=0.25, recall_at_10=0.5, auc=0.875),
        "params": {"loss": "warp"},
    }
    fields.update(changes)
    return ModelInfo(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (InteractionType.LIKE, 3.0),
        (InteractionType.COMMENT, 3.0),
        (InteractionType.SHARE, 4.0),
        (InteractionType.COMPLETE, 2.0),
        (InteractionType.SKIP, 0.0),
        (InteractionType.HIDE, 0.0),
    ],
)
def test_explicit_signals_weigh_the_same_whatever_the_watch_time(
    kind: InteractionType, expected: float
) -> None:
    assert interaction_weight(kind, 0) == expected
    assert interaction_weight(kind, 600_000) == expected


@pytest.mark.parametrize(
    ("watch_time_ms", "expected"),
    [(0, 0.0), (999, 0.0), (1_000, 1 / 30), (15_000, 0.5), (30_000, 1.0), (3_600_000, 1.0)],
)
def test_a_view_earns_credit_with_watch_time_up_to_thirty_seconds(
    watch_time_ms: int, expected: float
) -> None:
    assert interaction_weight(InteractionType.VIEW, watch_time_ms) == pytest.approx(expected)


def test_a_full_view_counts_less_than_any_explicit_positive_signal() -> None:
    full_view = interaction_weight(InteractionType.VIEW, 30_000)
    explicit = (InteractionType.COMPLETE, InteractionType.LIKE, InteractionType.SHARE)
    assert all(interaction_weight(kind, 30_000) > full_view for kind in explicit)


def test_a_pair_adds_its_events_up_to_the_cap() -> None:
    assert pair_weight([1.0, 2.0], hidden=False) == 3.0
    assert pair_weight([4.0, 3.0, 3.0], hidden=False) == PAIR_WEIGHT_CAP


def test_hiding_a_video_cancels_everything_else_the_viewer_did_with_it() -> None:
    assert pair_weight([4.0, 3.0], hidden=True) == 0.0


def test_a_version_starts_with_the_utc_training_time_and_ends_with_the_fingerprint() -> None:
    paris = timezone(timedelta(hours=1))
    version = new_model_version(datetime(2026, 11, 24, 3, 0, tzinfo=paris), "3FA2C1D9E8")
    assert version == "20261124T020000Z-3fa2c1"
    assert model_version_problem(version) is None


def test_versions_sort_by_training_time() -> None:
    earlier = new_model_version(TRAINED_AT, "ffffff")
    later = new_model_version(TRAINED_AT + timedelta(seconds=1), "000000")
    assert sorted([later, earlier]) == [earlier, later]


@pytest.mark.parametrize("fingerprint", ["", "abc", "xyz123"])
def test_a_version_needs_six_hex_digits_of_fingerprint(fingerprint: str) -> None:
    with pytest.raises(ValueError, match="fingerprint"):
        new_model_version(TRAINED_AT, fingerprint)


def test_a_version_needs_an_aware_training_time() -> None:
    with pytest.raises(ValueError, match="timezone"):
        new_model_version(datetime(2026, 11, 24, 2, 0), "3fa2c1")


@pytest.mark.parametrize("version", ["", "../etc", "a/b", ".hidden", "v 1", "x" * 129])
def test_versions_that_could_escape_a_folder_or_key_are_refused(version: str) -> None:
    assert model_version_problem(version) is not None
    with pytest.raises(ValueError, match="model version"):
        make_info(version=version)


def test_model_info_needs_aware_timestamps() -> None:
    with pytest.raises(ValueError, match="window_end"):
        make_info(window_end=datetime(2026, 11, 24))


def test_model_info_params_cannot_be_changed_through_the_callers_dict() -> None:
    params = {"loss": "warp"}
    info = make_info(params=params)
    params["loss"] = "bpr"
    assert info.params["loss"] == "warp"
    with pytest.raises(TypeError):
        info.params["loss"] = "bpr"  # type: ignore[index]


@pytest.mark.parametrize("metrics", [None, ModelMetrics(0.1, 0.2, 0.7)])
def test_model_info_survives_its_json_form(metrics: ModelMetrics | None) -> None:
    tokyo = timezone(timedelta(hours=9))
    info = make_info(metrics=metrics, trained_at=TRAINED_AT.astimezone(tokyo))
    restored = model_info_from_json(model_info_to_json(info))
    assert restored == info
    assert restored.trained_at.tzinfo == UTC


def test_model_info_json_uses_utc_timestamps() -> None:
    assert model_info_to_json(make_info())["trained_at"] == "2026-11-24T02:00:00Z"


@pytest.mark.parametrize(
    "broken",
    [{}, {"version": "v1"}, {**model_info_to_json(make_info()), "n_users": "3"}],
)
def test_a_malformed_model_info_document_is_a_value_error(broken: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="model info"):
        model_info_from_json(broken)


def test_precision_counts_relevant_items_among_the_first_k() -> None:
    ranked = ["a", "b", "c", "d"]
    assert precision_at_k(ranked, {"b", "d", "z"}, 2) == 0.5
    assert precision_at_k(ranked, {"b", "d", "z"}, 4) == 0.5


def test_precision_counts_a_short_list_as_misses() -> None:
    assert precision_at_k(["a"], {"a"}, 10) == 0.1


def test_recall_is_the_share_of_relevant_items_found() -> None:
    assert recall_at_k(["a", "b", "c"], {"a", "c", "x", "y"}, 2) == 0.25


def test_recall_without_relevant_items_is_refused() -> None:
    with pytest.raises(ValueError, match="undefined"):
        recall_at_k(["a"], set(), 10)
