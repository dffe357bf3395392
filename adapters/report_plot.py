"""Implements `ports.retrain.RunReport`: a PNG chart of the candidate models' precision@10,
recall@10 and AUC over recent runs, written to `<model store>/reports/metrics.png` (a folder,
`file://` or an `s3://bucket/prefix`, like the model store itself).

Drawn with matplotlib's object API on the Agg canvas: no pyplot, no global backend switch, no
display needed, safe in a worker thread. The PNG carries no timestamp, so the same runs give
the same bytes.
"""

from __future__ import annotations

import io
import math
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse

import pyarrow.fs as pafs
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from pyarrow.lib import ArrowException

from domain.errors import DependencyUnavailable
from domain.retrain import SEARCH_NOTE, RetrainRun, RunStatus

REPORT_PATH = "reports/metrics.png"
#: Which metrics the quality gate compares (domain.retrain.GATED_METRICS) get its threshold.
_SERIES = (
    ("precision@10", "precision_at_10", "tab:blue"),
    ("recall@10", "recall_at_10", "tab:green"),
)
_GATED = {"precision_at_10", "auc"}
_TRIAL_NDCG = re.compile(r"ndcg@10=([0-9.]+)")


def render_metrics_png(runs: Sequence[RetrainRun], tolerance: float = 0.05) -> bytes:
    buffer = io.BytesIO()
    metrics_figure(runs, tolerance).savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def metrics_figure(runs: Sequence[RetrainRun], tolerance: float = 0.05) -> Figure:
    """The chart of `runs` (any order) that have candidate metrics, oldest left. Published
    runs are filled dots, rejected ones red crosses; other runs have no metrics to show. The
    quality gate's threshold for each run (the serving model's metric x (1 - `tolerance`)) is
    a dashed step. Axes start at 0 (precision, recall) and at 0.5, chance (AUC), so noise in
    the fourth decimal stays flat. With no run to show, the chart says so."""
    measured = sorted(
        (run for run in runs if run.candidate_metrics is not None), key=lambda run: run.started_at
    )
    figure = Figure(figsize=(10, 6), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    ranking, auc, searched = figure.subplots(3, 1, sharex=True, height_ratios=(3, 2, 2))
    count = f"{len(measured)} run" + ("" if len(measured) == 1 else "s")
    figure.suptitle(f"Nightly retrain: candidate model quality on the held-out day, last {count}")
    positions = list(range(len(measured)))
    published = [i for i, run in enumerate(measured) if run.status is RunStatus.SUCCEEDED]
    rejected = [i for i, run in enumerate(measured) if run.status is RunStatus.REJECTED]
    tops = [0.05]
    for axes, label, field, colour in (
        *((ranking, *s) for s in _SERIES),
        (auc, "AUC", "auc", "tab:purple"),
    ):
        values = [float(getattr(run.candidate_metrics, field)) for run in measured]
        axes.plot(positions, values, color=colour, linewidth=1.2, label=label)
        axes.scatter(
            published, [values[i] for i in published], color=colour, marker="o", s=30, zorder=3
        )
        axes.scatter(
            rejected,
            [values[i] for i in rejected],
            color="tab:red",
            marker="x",
            s=60,
            linewidths=2,
            zorder=4,
        )
        gate = [
            float(getattr(run.serving_metrics, field)) * (1 - tolerance)
            if run.serving_metrics is not None
            else float("nan")
            for run in measured
        ]
        if field in _GATED and any(not math.isnan(value) for value in gate):
            axes.step(
                positions,
                gate,
                where="mid",
                color=colour,
                linestyle="--",
                linewidth=1,
                label=f"{label} gate: serving x {1 - tolerance:g}",
            )
        if axes is ranking:
            tops.extend(v for v in values + gate if not math.isnan(v))
    ranking.set_ylim(0.0, max(tops) * 1.25)
    auc_values = [float(run.candidate_metrics.auc) for run in measured if run.candidate_metrics]
    auc.set_ylim(min([0.5, *(v - 0.02 for v in auc_values)]), 1.0)
    ranking.set_ylabel("precision@10, recall@10")
    auc.set_ylabel("AUC (0.5 = chance)")
    # Markers for the legend only: what a dot and a cross mean.
    ranking.scatter([], [], color="black", marker="o", s=30, label="published")
    ranking.scatter(
        [], [], color="tab:red", marker="x", s=60, linewidths=2, label="rejected by the gate"
    )
    for axes in (ranking, auc):
        axes.grid(axis="y", alpha=0.3)
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    if measured:
        labels = [f"{run.started_at:%m-%d %H:%M}" for run in measured]
        step = max(1, len(measured) // 15)  # at most ~15 labels, never overlapping
        shown = positions[::step]
        searched.set_xticks(
            shown, [labels[i] for i in shown], rotation=45, ha="right", fontsize="small"
        )
        searched.set_xlim(-0.5, len(measured) - 0.5)
    else:
        ranking.text(0.5, 0.5, "no run with metrics yet", ha="center", transform=ranking.transAxes)
    _draw_trials(searched, measured)
    searched.set_xlabel("run started (UTC)")
    return figure


def search_trials(note: str | None) -> list[float]:
    """The validation NDCG@10 of each search trial a run's note records (none: no search)."""
    if not note or SEARCH_NOTE not in note:
        return []
    return [float(value) for value in _TRIAL_NDCG.findall(note.split(SEARCH_NOTE, 1)[1])]


def _draw_trials(axes: Axes, measured: Sequence[RetrainRun]) -> None:
    """Every trial of each run's search as a grey dot, the best one black."""
    for i, run in enumerate(measured):
        values = search_trials(run.note)
        if values:
            axes.scatter([i] * len(values), values, color="tab:gray", s=12, alpha=0.6)
            axes.scatter([i], [max(values)], color="black", s=24, zorder=3)
    axes.scatter([], [], color="tab:gray", s=12, label="a search trial")
    axes.scatter([], [], color="black", s=24, label="the chosen trial")
    axes.set_ylabel("search: validation\nNDCG@10")
    axes.set_ylim(bottom=0)
    axes.grid(axis="y", alpha=0.3)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)


class MetricsReport:
    """Writes the chart under `store_uri` (the model store's URI), through `s3_endpoint` for
    s3:// (`http://host:port`, or `host:port` for https). Raises
    `DependencyUnavailable("model_store")` when the folder or bucket cannot be written."""

    def __init__(
        self, store_uri: str, s3_endpoint: str | None = None, tolerance: float = 0.05
    ) -> None:
        self._uri = store_uri
        self._s3_endpoint = s3_endpoint
        self._tolerance = tolerance

    def __repr__(self) -> str:
        return f"MetricsReport({self._uri!r})"

    def write(self, runs: Sequence[RetrainRun]) -> str:
        png = render_metrics_png(runs, self._tolerance)
        parsed = urlparse(self._uri)
        try:
            if parsed.scheme == "s3":
                key = "/".join(p for p in (parsed.netloc, parsed.path.strip("/"), REPORT_PATH) if p)
                with _s3(self._s3_endpoint).open_output_stream(key) as stream:
                    stream.write(png)
                return f"s3://{key}"
            root = Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(self._uri)
            target = root / REPORT_PATH
            _write_atomically(target, png)
            return str(target)
        except (OSError, ArrowException) as err:
            raise DependencyUnavailable("model_store", f"writing the report failed: {err}") from err


def _s3(endpoint: str | None) -> pafs.S3FileSystem:
    options: dict[str, object] = {"connect_timeout": 3.0, "request_timeout": 30.0}
    if endpoint:
        scheme, _, address = endpoint.rpartition("://")
        options.update(endpoint_override=address, scheme=scheme or "https")
    return pafs.S3FileSystem(**options)


def _write_atomically(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
