"""The LightFM lab (`adapters.retrain_lab.LightFMLab`) turns what its parts raise into the
errors `ports.retrain.ModelLab` declares."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.lightfm.interactions import TrainingInteractions
from adapters.lightfm.trainer import LightFMTrainer
from adapters.retrain_lab import LabWindow, LightFMLab
from domain.model import ModelInfo, UnreadableModel
from domain.retrain import TrainingDataError
from tests.fakes_retrain import InMemoryModelStore

pytestmark = pytest.mark.integration

END = datetime(2026, 11, 24, tzinfo=UTC)
START = END - timedelta(days=2)


def window(kinds: list[str]) -> LabWindow:
    rows = TrainingInteractions.from_columns(
        [f"u{i % 3}" for i in range(len(kinds))],
        [f"v{i % 5}" for i in range(len(kinds))],
        kinds,
        [30_000] * len(kinds),
        [START + timedelta(hours=i) for i in range(len(kinds))],
    )
    training, held_out = rows.split_at(END - timedelta(days=1))
    return LabWindow(training, held_out, START, END - timedelta(days=1), END)


def test_a_stored_model_that_is_not_an_artifact_is_unreadable(tmp_path: Path) -> None:
    store = InMemoryModelStore()
    info = ModelInfo("garbage", END, START, END, 1, 1, 1, None, {})
    store.put("garbage", b"not a zip file", info)
    lab = LightFMLab(str(tmp_path / "export"), store, LightFMTrainer(epochs=1))

    with pytest.raises(UnreadableModel, match="stored model garbage") as caught:
        lab.evaluate_stored(window(["like"] * 40), "garbage")

    assert isinstance(caught.value.__cause__, ValueError)


def test_training_data_without_a_positive_pair_is_a_training_data_error(tmp_path: Path) -> None:
    lab = LightFMLab(str(tmp_path / "export"), InMemoryModelStore(), LightFMTrainer(epochs=1))

    with pytest.raises(TrainingDataError, match="no positive interactions"):
        lab.train(window(["skip"] * 40), END)
