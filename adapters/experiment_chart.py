"""The readout's chart: per metric, each variant's relative lift over the control by day, with
its always-valid interval (shaded) and the fixed-horizon one (dashed), as a PNG."""

from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from domain.experiment_report import METRICS, ExperimentReport


def render_lift_chart(report: ExperimentReport) -> bytes:
    metrics = [m for m in METRICS if any(h[2] == m for h in report.history)]
    columns = 3
    rows = max(1, -(-len(metrics) // columns))
    figure = Figure(figsize=(5 * columns, 3.2 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    for index, metric in enumerate(metrics):
        axes = figure.add_subplot(rows, columns, index + 1)
        for variant in sorted({h[1] for h in report.history}):
            series = [(d, lift) for d, v, m, lift in report.history if v == variant and m == metric]
            days = [d.isoformat() for d, _ in series]
            line = axes.plot(days, [lift.value for _, lift in series], marker="o", label=variant)[0]
            axes.fill_between(
                days,
                [lift.sequential_low for _, lift in series],
                [lift.sequential_high for _, lift in series],
                color=line.get_color(),
                alpha=0.2,
            )
            axes.plot(days, [lift.low for _, lift in series], "--", color=line.get_color(), lw=0.8)
            axes.plot(days, [lift.high for _, lift in series], "--", color=line.get_color(), lw=0.8)
        axes.axhline(0, color="black", lw=0.8)
        axes.set_title(f"{metric}: lift vs {report.control}", fontsize=9)
        axes.tick_params(labelsize=7)
        axes.legend(fontsize=7)
    figure.suptitle(f"{report.experiment} ({report.start} to {report.end})")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
