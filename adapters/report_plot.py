"""Implements `ports.retrain.RunReport`: a PNG chart of the candidate models' precision@10,
recall@10 and AUC over recent runs, written to `<model store>/reports/metrics.png` (a folder,
`file://` or an `s3://bucket/prefix`, like the model store itself).

Drawn with matplotlib's object API on the Agg canvas: no pyplot, no global backend switch, no
display needed, safe in a worker thread. The PNG carries no timestamp, so the same runs give
the same bytes.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse

import pyarrow.fs as pafs
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from pyarrow.lib import ArrowException

from domain.errors import DependencyUnavailable
from domain.retrain import RetrainRun, RunStatus

REPORT_PATH = "reports/metrics.png"
_MARKERS = {RunStatus.SUCCEEDED: "o", RunStatus.REJECTED: "x"}


def render_metrics_png(runs: Sequence[RetrainRun]) -> bytes:
    """The chart of `runs` (any order) that have candidate metrics, oldest left. Published
    runs are dots, rejected ones crosses; other runs have no metrics to show. With none to
    show, the chart says so."""
    measured = sorted(
        (run for run in runs if run.candidate_metrics is not None), key=lambda run: run.started_at
    )
    figure = Figure(figsize=(8, 5), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    ranking, auc = figure.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    figure.suptitle(f"Nightly retrain: candidate model quality, last {len(measured)} runs")
    labels = [f"{run.started_at:%m-%d %H:%M}" for run in measured]
    positions = list(range(len(measured)))
    series = (
        (ranking, "precision@10", "precision_at_10", "tab:blue"),
        (ranking, "recall@10", "recall_at_10", "tab:green"),
        (auc, "AUC", "auc", "tab:purple"),
    )
    for axes, label, field, colour in series:
        values = [float(getattr(run.candidate_metrics, field)) for run in measured]
        axes.plot(positions, values, color=colour, linewidth=1, label=label)
        for status, marker in _MARKERS.items():
            chosen = [i for i, run in enumerate(measured) if run.status is status]
            axes.scatter(chosen, [values[i] for i in chosen], color=colour, marker=marker, zorder=3)
    ranking.set_ylabel("on the held-out day")
    ranking.legend(loc="upper left", fontsize="small")
    auc.set_ylabel("AUC")
    auc.legend(loc="lower left", fontsize="small")
    if measured:
        auc.set_xticks(positions, labels, rotation=45, ha="right", fontsize="small")
    else:
        ranking.text(0.5, 0.5, "no run with metrics yet", ha="center", transform=ranking.transAxes)
    auc.set_xlabel("run started (UTC); o published, x rejected by the quality gate")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


class MetricsReport:
    """Writes the chart under `store_uri` (the model store's URI), through `s3_endpoint` for
    s3:// (`http://host:port`, or `host:port` for https). Raises
    `DependencyUnavailable("model_store")` when the folder or bucket cannot be written."""

    def __init__(self, store_uri: str, s3_endpoint: str | None = None) -> None:
        self._uri = store_uri
        self._s3_endpoint = s3_endpoint

    def __repr__(self) -> str:
        return f"MetricsReport({self._uri!r})"

    def write(self, runs: Sequence[RetrainRun]) -> str:
        png = render_metrics_png(runs)
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
