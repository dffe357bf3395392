"""The run record's one serialised shape (`domain.retrain.run_to_json`), which the JSON spool,
the SQL run log and the Snowflake run log all write."""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.model import ModelMetrics
from domain.retrain import (
    RUN_METRICS,
    RUN_TIMESTAMPS,
    RetrainRun,
    RunStatus,
    Stage,
    run_from_json,
    run_to_json,
)

pytestmark = pytest.mark.unit

INDIA = timezone(timedelta(hours=5, minutes=30))
RUN = RetrainRun(
    run_id="20261126T020000Z-0123abcd",
    started_at=datetime(2026, 11, 26, 7, 30, 0, 123_456, tzinfo=INDIA),
    status=RunStatus.FAILED,
    finished_at=datetime(2026, 11, 26, 2, 7, tzinfo=UTC),
    failed_stage=Stage.CONFIRM,
    rows_exported=12,
    rows_trained=3_400,
    model_version="20261126T020500Z-abcdef",
    serving_version=None,
    candidate_metrics=ModelMetrics(0.125, 0.25, 0.875),
    serving_metrics=None,
    error="NotServing: published x, but the model service serves y",
    note="restored y as the serving model",
)


def test_the_shape_is_one_json_ready_key_per_field_and_reads_back_equal() -> None:
    record = run_to_json(RUN)

    assert list(record) == [field.name for field in fields(RetrainRun)]
    assert json.loads(json.dumps(record)) == record
    assert record["status"] == "failed" and record["failed_stage"] == "confirm"
    assert record["started_at"] == "2026-11-26T07:30:00.123456+05:30"
    assert record["candidate_metrics"] == {
        "precision_at_10": 0.125,
        "recall_at_10": 0.25,
        "auc": 0.875,
    }
    assert run_from_json(record) == RUN


def test_the_named_timestamp_and_metrics_fields_are_the_runs() -> None:
    record = run_to_json(RUN)
    assert set(RUN_TIMESTAMPS) == {f.name for f in fields(RetrainRun) if "datetime" in str(f.type)}
    assert all(isinstance(record[name], dict | None) for name in RUN_METRICS)


def test_a_database_row_with_datetimes_and_bookkeeping_columns_reads_back() -> None:
    row = run_to_json(RUN) | {
        "started_at": RUN.started_at.astimezone(UTC),
        "finished_at": RUN.finished_at,
        "recorded_at": datetime(2026, 11, 26, 2, 8, tzinfo=UTC),
    }
    assert run_from_json(row) == RUN


@pytest.mark.parametrize(
    "broken",
    [
        {"started_at": None},
        {"started_at": 12},
        {"status": "sleeping"},
        {"rows_trained": True},
        {"candidate_metrics": [0.1]},
    ],
)
def test_a_malformed_record_is_a_value_error(broken: dict[str, object]) -> None:
    record = run_to_json(RUN) | broken
    with pytest.raises(ValueError, match=r"malformed|not a valid|metrics"):
        run_from_json(record)
