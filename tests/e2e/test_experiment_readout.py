"""The experiment readout on planted experiments, through the real feed, ingestion and
parquet exports (`tests.experiment_support`)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

from tests.experiment_support import PlantedExperiment, impressions_dir, run_planted

pytestmark = pytest.mark.e2e


def lift_of(report, variant: str, metric: str):  # type: ignore[no-untyped-def]
    found = next(v for v in report.variants if v.variant == variant)
    return next(m for m in found.metrics if m.metric == metric)


def test_a_planted_lift_in_likes_is_detected_with_the_right_sign(tmp_path: Path) -> None:
    report, _ = run_planted(tmp_path, PlantedExperiment(800, like_rate={"lightfm": 0.2}))

    likes = lift_of(report, "lightfm", "like_rate")
    assert likes.lift is not None and likes.lift.sequential_low > 0
    assert likes.verdict == "better"
    assert not report.sample_ratio.mismatch


def test_an_a_a_experiment_shows_no_lift(tmp_path: Path) -> None:
    report, _ = run_planted(tmp_path, PlantedExperiment(800, seed=3))

    treated = next(v for v in report.variants if v.variant == "lightfm")
    assert treated.viewers > 300
    assert all(result.verdict == "inconclusive" for result in treated.metrics), [
        (r.metric, r.lift) for r in treated.metrics if r.verdict != "inconclusive"
    ]


def test_a_variant_losing_a_tenth_of_its_traffic_is_flagged_by_the_ratio_test(
    tmp_path: Path,
) -> None:
    report, _ = run_planted(tmp_path, PlantedExperiment(5000, dropped_every={"control": 10}))

    assert report.sample_ratio.mismatch, report.sample_ratio
    assert report.sample_ratio.observed["control"] < report.sample_ratio.observed["lightfm"]


def test_impressions_and_interactions_join_on_session_and_video(tmp_path: Path) -> None:
    _, settings = run_planted(tmp_path, PlantedExperiment(60))

    impressions = ds.dataset(impressions_dir(settings), format="parquet", partitioning="hive")
    interactions = ds.dataset(settings.resolved_export_uri, format="parquet", partitioning="hive")
    shown = impressions.to_table()
    done = interactions.to_table()
    joined = done.join(
        shown, keys=["feed_session_id", "video_id"], join_type="inner", right_suffix="_shown"
    )
    assert joined.num_rows == done.num_rows > 0  # every interaction was on an item served
    assert pc.all(pc.equal(joined["user_id"], joined["user_id_shown"])).as_py()
    ranks = shown.filter(pc.equal(shown["page_number"], 1))["rank"].to_pylist()
    assert min(ranks) == 1 and shown.num_rows == len(set(shown["impression_id"].to_pylist()))
