"""The retrain's metrics chart, written next to the model artifacts: in a folder, and under an
S3 prefix on a real moto server (`moto_server` subprocess on 127.0.0.1 and a free port,
stopped after the module)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from adapters.report_plot import REPORT_PATH, MetricsReport, metrics_figure, render_metrics_png
from domain.errors import DependencyUnavailable
from domain.model import ModelMetrics
from domain.retrain import RetrainRun, RunStatus
from tests.servers import MOTO_CREDENTIALS, MotoS3Server, running_moto

pytestmark = pytest.mark.integration

PNG = b"\x89PNG\r\n\x1a\n"
BUCKET = "models"
T0 = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)


def nightly_runs(count: int) -> list[RetrainRun]:
    """Newest first, as `RunLog.recent` gives them: published, rejected and failed nights."""
    runs = []
    for day in range(count):
        status = [RunStatus.SUCCEEDED, RunStatus.REJECTED, RunStatus.FAILED][day % 3]
        metrics = None if status is RunStatus.FAILED else ModelMetrics(0.1 + day / 100, 0.3, 0.9)
        runs.append(
            RetrainRun(f"r{day}", T0 + timedelta(days=day), status, candidate_metrics=metrics)
        )
    return runs[::-1]


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3Server]:
    with running_moto(tmp_path_factory.mktemp("moto"), "report S3", BUCKET) as server:
        yield server


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's dummy credentials, so the AWS SDK never looks further (no metadata service)."""
    for key, value in MOTO_CREDENTIALS.items():
        monkeypatch.setenv(key, value)


def test_the_chart_is_a_png_and_the_same_runs_draw_the_same_bytes() -> None:
    runs = nightly_runs(30)

    png = render_metrics_png(runs)

    assert png.startswith(PNG)
    assert render_metrics_png(list(reversed(runs))) == png
    assert render_metrics_png([]).startswith(PNG)  # "no run with metrics yet"


def test_the_report_replaces_the_previous_one_next_to_the_models(tmp_path: Path) -> None:
    report = MetricsReport(str(tmp_path / "models"))

    first = report.write(nightly_runs(3))
    second = report.write(nightly_runs(30))

    assert first == second == str(tmp_path / "models" / REPORT_PATH)
    assert Path(second).read_bytes() == render_metrics_png(nightly_runs(30))
    assert [p.name for p in (tmp_path / "models" / "reports").iterdir()] == ["metrics.png"]


def test_a_file_uri_names_the_same_folder(tmp_path: Path) -> None:
    where = MetricsReport(f"file://{tmp_path}/models").write(nightly_runs(2))

    assert where == str(tmp_path / "models" / REPORT_PATH)


def test_the_report_goes_under_the_model_stores_s3_prefix(
    moto: MotoS3Server, aws_env: None
) -> None:
    prefix = f"{BUCKET}/run-{uuid.uuid4().hex[:8]}"

    where = MetricsReport(f"s3://{prefix}", moto.endpoint).write(nightly_runs(5))

    assert where == f"s3://{prefix}/{REPORT_PATH}"
    raw = pafs.S3FileSystem(endpoint_override=moto.endpoint.removeprefix("http://"), scheme="http")
    with raw.open_input_stream(f"{prefix}/{REPORT_PATH}") as stream:
        assert stream.read() == render_metrics_png(nightly_runs(5))


def test_a_folder_that_cannot_be_written_is_dependency_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "models"
    blocker.write_text("a file where the folder should be")

    with pytest.raises(DependencyUnavailable) as raised:
        MetricsReport(str(blocker)).write(nightly_runs(1))

    assert raised.value.component == "model_store"


def test_the_chart_reads_at_a_glance_noise_stays_flat_and_the_gate_is_drawn() -> None:
    serving = ModelMetrics(0.06, 0.12, 0.9050)
    runs = [
        RetrainRun("r0", T0, RunStatus.SUCCEEDED, candidate_metrics=serving),
        RetrainRun(
            "r1",
            T0 + timedelta(days=1),
            RunStatus.REJECTED,
            candidate_metrics=ModelMetrics(0.05, 0.11, 0.9058),
            serving_metrics=serving,
        ),
    ]

    figure = metrics_figure(runs, tolerance=0.05)

    ranking, auc, searched = figure.axes
    assert searched.get_ylabel().startswith("search")  # each run's search trials
    assert figure.get_suptitle().endswith("last 2 runs")
    assert metrics_figure(runs[:1]).get_suptitle().endswith("last 1 run")
    # AUC from chance to perfect: a 0.0008 wobble is not a climb.
    assert auc.get_ylim() == (0.5, 1.0)
    assert ranking.get_ylim()[0] == 0.0
    legends = [axes.get_legend() for axes in (ranking, auc)]
    labels = [text.get_text() for legend in legends if legend for text in legend.get_texts()]
    assert "precision@10 gate: serving x 0.95" in labels
    assert "AUC gate: serving x 0.95" in labels
    assert {"published", "rejected by the gate"} <= set(labels)
    # Legends sit beside the plot, never over its first points.
    for axes, legend in zip((ranking, auc), legends, strict=True):
        assert legend is not None
        assert legend.get_bbox_to_anchor().x0 > axes.get_window_extent().x1
