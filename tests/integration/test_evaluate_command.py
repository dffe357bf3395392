"""`feedrec evaluate` end to end on small planted data written in the export's layout."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.parquet_export.columns_file import write_interactions
from app.cli import main
from app.demo_data import generate_interactions

pytestmark = pytest.mark.integration


def test_evaluate_compares_the_product_with_baselines_on_planted_tastes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = generate_interactions(
        150, 300, 9000, days=10, seed=5, end=datetime(2026, 1, 31, tzinfo=UTC)
    ).to_training()
    write_interactions(rows, tmp_path / "export")
    for name, value in {"TRAIN_EPOCHS": "10", "TRAIN_COMPONENTS": "16", "TRAIN_SEEDS": "1"}.items():
        monkeypatch.setenv(name, value)
    chart = tmp_path / "chart.png"

    code = main(
        [
            "evaluate",
            "--export",
            str(tmp_path / "export"),
            "--runs",
            "1",
            "--search-budget",
            "2",
            "--chart",
            str(chart),
            "--json",
        ]
    )

    out = capsys.readouterr().out
    assert code == 0
    for heading in ("per-user", "global-time", "popularity", "trending", "lightfm-defaults"):
        assert heading in out
    summary = json.loads(out.strip().splitlines()[-1])
    assert "min_gain_vs_best_baseline" in summary
    for split in ("per-user", "global-time"):
        figures = next(iter(v for k, v in summary.items() if k != "min_gain_vs_best_baseline"))[
            split
        ]
        # Planted tastes: a collaborative model finds them, popularity cannot.
        assert figures["product"]["ndcg_at_10"] > figures["popularity"]["ndcg_at_10"]
    assert chart.read_bytes().startswith(b"\x89PNG")


def test_evaluate_on_an_empty_export_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["evaluate", "--export", str(tmp_path / "none")])
    assert code == 2
    assert "pass --dataset" in capsys.readouterr().err
