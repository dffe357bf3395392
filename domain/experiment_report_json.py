"""The experiment report as JSON-ready data (the CLI's `--json`, the operator endpoint)."""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

from domain.experiment_report import METRICS, ExperimentReport


def report_to_json(report: ExperimentReport) -> dict[str, Any]:
    """Plain dicts and lists; NaN (an interval without data) becomes null."""
    shaped: dict[str, Any] = _finite(
        {
            "experiment": report.experiment,
            "control": report.control,
            "start": report.start.isoformat(),
            "end": report.end.isoformat(),
            "sampleRatio": {
                "observed": dict(report.sample_ratio.observed),
                "expectedShare": dict(report.sample_ratio.expected_share),
                "pValue": report.sample_ratio.p_value,
                "mismatch": report.sample_ratio.mismatch,
            },
            "variants": [
                {
                    "variant": v.variant,
                    "viewers": v.viewers,
                    "sessions": v.sessions,
                    "pages": v.pages,
                    "items": v.items,
                    "metrics": [
                        {
                            "metric": m.metric,
                            "meaning": METRICS[m.metric][0],
                            "estimate": asdict(m.estimate),
                            "lift": asdict(m.lift) if m.lift else None,
                            "verdict": m.verdict,
                        }
                        for m in v.metrics
                    ],
                }
                for v in report.variants
            ],
            "history": [
                {"day": day.isoformat(), "variant": variant, "metric": metric, **asdict(lift)}
                for day, variant, metric, lift in report.history
            ],
        }
    )
    return shaped


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value
