"""The chart of `feedrec evaluate`: precision@10 and NDCG@10 per method, one panel per data set
and split, bars at the mean of the runs with their spread as error bars. matplotlib's object
API on the Agg canvas, as `adapters.report_plot` draws (no pyplot, no display)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

#: (label, figure name, colour) of each bar in a group.
_BARS = (("precision@10", "precision_at_10", "tab:blue"), ("NDCG@10", "ndcg_at_10", "tab:orange"))


def comparison_png(
    panels: Sequence[tuple[str, Mapping[str, Mapping[str, tuple[float, float]]]]], path: str
) -> None:
    """Writes the chart to `path`. `panels`: (title, {method: {figure: (mean, spread)}})."""
    figure = Figure(figsize=(5 * max(len(panels), 1), 4.5), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, max(len(panels), 1), squeeze=False)[0]
    figure.suptitle("feedrec evaluate: mean of the runs, error bars one standard deviation")
    for ax, (title, methods) in zip(axes, panels, strict=False):
        names = list(methods)
        width = 0.8 / len(_BARS)
        for offset, (label, name, colour) in enumerate(_BARS):
            xs = [i + (offset - (len(_BARS) - 1) / 2) * width for i in range(len(names))]
            means = [methods[m][name][0] for m in names]
            spreads = [methods[m][name][1] for m in names]
            ax.bar(xs, means, width, yerr=spreads, label=label, color=colour, capsize=3)
        ax.set_title(title)
        ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
        ax.set_ylim(bottom=0)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(loc="upper left", fontsize="small")
    figure.savefig(path, format="png", metadata={"Software": None})
