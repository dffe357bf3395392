"""The experiment readout's parts: the reporter over the service's database or the parquet
exports, the impressions exporter, and the `feedrec experiment report` command."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from adapters.experiment_chart import render_lift_chart
from adapters.experiment_data import ParquetExperimentData, SqlExperimentData
from adapters.experiment_stats import ScipyExperimentStatistics
from adapters.parquet_export import IMPRESSION_SCHEMA, ParquetExporter
from adapters.sql.engine import make_engine
from adapters.sql.impressions import WATERMARK, SqlImpressionSource
from app.settings import Settings
from domain.experiment_report import ExperimentReport, ExperimentReporter
from domain.experiment_report_json import report_to_json
from domain.experiments import parse_experiment
from ports.experiments import ExperimentData

log = logging.getLogger("feedrec.worker")


def reporter(settings: Settings, data: ExperimentData) -> ExperimentReporter | None:
    """The reporter of FEED_EXPERIMENT over `data`; None when no experiment is configured."""
    experiment = parse_experiment(settings.feed_experiment)
    if experiment is None:
        return None
    return ExperimentReporter(experiment, data, ScipyExperimentStatistics())


def export_data(settings: Settings) -> ParquetExperimentData:
    return ParquetExperimentData(
        settings.resolved_impressions_export_uri,
        settings.resolved_export_uri,
        s3_endpoint=settings.s3_endpoint_url or None,
    )


def impressions_exporter(settings: Settings, engine: Engine) -> ParquetExporter:
    return ParquetExporter(
        SqlImpressionSource(engine),
        settings.resolved_impressions_export_uri,
        s3_endpoint=settings.s3_endpoint_url or None,
        chunk_rows=max(1, settings.export_chunk_rows // 10),  # pages of about 10 items
        lag=timedelta(seconds=settings.export_lag_s),
        name=WATERMARK,
        schema=IMPRESSION_SCHEMA,
        id_column="page_id",
        time_column="served_at",
    )


def run_report_command(settings: Settings, args: argparse.Namespace) -> int:
    end = args.end or datetime.now(UTC).date()
    start = end - timedelta(days=max(1, args.days) - 1)
    engine = make_engine(settings.resolved_database_url) if args.source == "database" else None
    try:
        data = SqlExperimentData(engine) if engine else export_data(settings)
        built = reporter(settings, data)
        if built is None:
            print("no experiment configured (FEED_EXPERIMENT is empty)")  # noqa: T201 - the CLI
            return 2
        report = built.report(start, end)
    finally:
        if engine is not None:
            engine.dispose()
    if args.chart:
        args.chart.write_bytes(render_lift_chart(report))
    output = json.dumps(report_to_json(report), indent=2) if args.json else render_text(report)
    print(output)  # noqa: T201 - the CLI's output
    return 1 if report.sample_ratio.mismatch else 0


def render_text(report: ExperimentReport) -> str:
    ratio = report.sample_ratio
    lines = [
        f"experiment {report.experiment}, {report.start} to {report.end}, control {report.control}",
        f"sample ratio: observed {dict(ratio.observed)}, p={ratio.p_value:.3g}"
        + (
            "  MISMATCH: the assignment is broken, do not trust the lifts" if ratio.mismatch else ""
        ),
    ]
    for variant in report.variants:
        lines.append(
            f"\n{variant.variant}: {variant.viewers} viewers, {variant.sessions} sessions, "
            f"{variant.pages} pages, {variant.items} items served"
        )
        for m in variant.metrics:
            e = m.estimate
            text = f"  {m.metric:<27} {e.value:12.4g} [{e.low:.4g}, {e.high:.4g}]"
            if m.lift:
                text += (
                    f"  lift {m.lift.value:+.2%} always-valid "
                    f"[{m.lift.sequential_low:+.2%}, {m.lift.sequential_high:+.2%}] {m.verdict}"
                )
            lines.append(text)
    return "\n".join(lines)


class InteractionsAndImpressions:
    """`ports.retrain.InteractionExport` for the nightly run: interactions (the count it
    returns, what the run trains on), then impressions, each exactly once by its own
    watermark."""

    def __init__(self, interactions: ParquetExporter, impressions: ParquetExporter) -> None:
        self._interactions = interactions
        self._impressions = impressions

    def export_new(self, now: datetime, progress: Callable[[int], None] | None = None) -> int:
        exported = self._interactions.export_new(now, progress)
        shown = self._impressions.export_new(now)
        log.info("impressions exported", extra={"rows": shown})
        return exported
