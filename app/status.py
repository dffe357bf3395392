"""`feedrec status`: the service's state in one place, for an operator or a cron job.

Built only from what the running service already exposes: the web's `/readyz` (component
detail for a loopback caller or a `feed:service` token), the model service's `DescribeModel`,
and the database (`feed_cache` first pages for fallbacks, `outbox` for the backlog and
publish latency, `retrain_runs` for the last runs). What it cannot see it says so: the
circuit breaker lives in each web worker's memory (its effect shows as `circuit_open`
fallbacks; Datadog has the `feed.model.circuit_open` gauge), and a run log kept in Snowflake
is not read here.

Exit status 1 when something critical is down: the web service does not answer or reports
itself unready, the database cannot be read, or no model is serving.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from app.settings import Settings

#: Seconds each probe may take; a status command must answer even when everything hangs.
PROBE_TIMEOUT_S = 3.0
RECENT_RUNS = 5


@dataclass
class Check:
    """One line of the report: `ok`, whether its failure is `critical`, and what was seen."""

    name: str
    ok: bool
    critical: bool
    detail: str


@dataclass
class StatusReport:
    checks: list[Check] = field(default_factory=list)
    model: dict[str, Any] | None = None
    first_pages: dict[str, Any] | None = None
    outbox: dict[str, Any] | None = None
    retrain_runs: list[dict[str, Any]] = field(default_factory=list)
    not_visible: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if any(not c.ok and c.critical for c in self.checks) else 0


def gather(settings: Settings, window_minutes: int = 15) -> StatusReport:
    report = StatusReport()
    now = datetime.now(UTC)
    _web(settings, report)
    _model(settings, report)
    _database(settings, report, now - timedelta(minutes=window_minutes), window_minutes)
    report.not_visible.append(
        "circuit breaker: held in each web worker's memory; see `circuit_open` fallbacks "
        "above, or the feed.model.circuit_open gauge in Datadog"
    )
    if settings.snowflake_account:
        report.not_visible.append("retrain runs: the run log is in Snowflake (RETRAIN_RUNS)")
    return report


def _web(settings: Settings, report: StatusReport) -> None:
    url = f"http://{settings.web_bind}/readyz"
    request = urllib.request.Request(url)
    token = _service_token(settings)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=PROBE_TIMEOUT_S) as response:  # noqa: S310
            body = json.loads(response.read())
    except urllib.error.HTTPError as err:  # 503: unready, with the same body
        body = json.loads(err.read() or b"{}")
    except (OSError, ValueError) as err:
        report.checks.append(Check("web", False, True, f"{url} does not answer: {err}"))
        return
    status = str(body.get("status", "unknown"))
    report.checks.append(Check("web", status != "unready", True, f"/readyz says {status}"))
    for name, component in sorted((body.get("components") or {}).items()):
        report.checks.append(
            Check(
                f"web sees {name}",
                bool(component.get("ok")),
                bool(component.get("critical")),
                str(component.get("detail") or "ok"),
            )
        )


def _service_token(settings: Settings) -> str | None:
    """A one-minute operator token, when the secret is at hand; without it /readyz still shows
    its components to a caller on loopback."""
    from adapters.jwt_tokens import JwtTokens
    from app.secrets import jwt_secret
    from app.settings import SettingsError
    from domain.auth import SERVICE_SCOPE

    try:
        codec = JwtTokens(jwt_secret(settings), settings.jwt_audience, issuer=settings.jwt_issuer)
    except (SettingsError, ValueError, OSError):
        return None
    return codec.issue("feedrec-status", [SERVICE_SCOPE], ttl_s=60)


def _model(settings: Settings, report: StatusReport) -> None:
    import grpc

    from proto.lightfm.v2025_9 import recommender_pb2 as pb
    from proto.lightfm.v2025_9 import recommender_pb2_grpc as pb_grpc

    target = settings.lightfm_target
    with grpc.insecure_channel(target) as channel:
        try:
            described = pb_grpc.RecommenderStub(channel).DescribeModel(
                pb.DescribeModelRequest(), timeout=PROBE_TIMEOUT_S
            )
        except grpc.RpcError as err:
            detail = f"DescribeModel at {target}: {err.code().name} {err.details() or ''}"
            report.checks.append(Check("model service", False, True, detail.strip()))
            return
    report.model = {
        "version": described.version,
        "trained_at": _moment(described.trained_at),
        "window": [_moment(described.window_start), _moment(described.window_end)],
        "interactions": described.n_interactions,
        "users": described.n_users,
        "videos": described.n_items,
        "loaded_at": _moment(described.loaded_at),
    }
    if described.HasField("metrics"):
        report.model["metrics"] = {
            "precision_at_10": round(described.metrics.precision_at_10, 4),
            "recall_at_10": round(described.metrics.recall_at_10, 4),
            "auc": round(described.metrics.auc, 4),
        }
    report.checks.append(Check("model service", True, True, f"serving {described.version}"))


def _moment(stamp: Any) -> str:
    return str(stamp.ToDatetime(tzinfo=UTC).isoformat(timespec="seconds"))


def _database(settings: Settings, report: StatusReport, since: datetime, minutes: int) -> None:
    from adapters.sql.engine import make_engine
    from adapters.sql.operator_view import OperatorView
    from adapters.sql.run_log import SqlRunLog
    from domain.errors import DependencyUnavailable
    from domain.retrain import run_to_json

    if not settings.database_url and not (settings.data_dir / "feedrec.db").exists():
        # Opening it would create an empty SQLite file; say what is missing instead.
        detail = f"{settings.data_dir / 'feedrec.db'} does not exist: run `feedrec up` first"
        report.checks.append(Check("database", False, True, detail))
        return
    engine = make_engine(settings.resolved_database_url)
    try:
        view = OperatorView(engine)
        pages = view.first_pages_since(since)
        outbox = view.outbox_since(since)
        runs = [] if settings.snowflake_account else SqlRunLog(engine).recent(RECENT_RUNS)
    except DependencyUnavailable as err:
        report.checks.append(Check("database", False, True, err.message))
        return
    finally:
        engine.dispose()
    report.checks.append(Check("database", True, True, "readable"))
    share = pages.fallback_share
    report.first_pages = {
        "minutes": minutes,
        "served": pages.total,
        "fallback_share": None if share is None else round(share, 4),
        "fallbacks_by_reason": pages.by_reason,
    }
    latencies = outbox.latencies_s
    report.outbox = {
        "pending": outbox.pending,
        "oldest_pending_age_s": None
        if outbox.oldest_pending_at is None
        else round((datetime.now(UTC) - outbox.oldest_pending_at).total_seconds(), 1),
        "published_in_window": len(latencies),
        "publish_latency_ms_p50": _percentile_ms(latencies, 0.50),
        "publish_latency_ms_p95": _percentile_ms(latencies, 0.95),
    }
    report.retrain_runs = [run_to_json(run) for run in runs]


def _percentile_ms(ascending: list[float], share: float) -> float | None:
    if not ascending:
        return None
    return round(ascending[min(len(ascending) - 1, int(share * len(ascending)))] * 1000, 1)


def render(report: StatusReport, *, as_json: bool = False) -> str:
    if as_json:
        return json.dumps({**asdict(report), "exit_code": report.exit_code}, indent=2)
    lines = ["Checks:"]
    for check in report.checks:
        mark = "ok  " if check.ok else ("DOWN" if check.critical else "warn")
        lines.append(f"  [{mark}] {check.name}: {check.detail}")
    if report.model:
        model = report.model
        lines += [
            "Serving model:",
            f"  {model['version']} trained {model['trained_at']} on {model['interactions']:,} "
            f"interactions from {model['window'][0]} to {model['window'][1]}",
            f"  metrics on its held-out day: {model.get('metrics', 'not evaluated')}",
        ]
    if report.first_pages:
        pages = report.first_pages
        share = pages["fallback_share"]
        shown = "n/a" if share is None else f"{share:.1%}"
        lines += [
            f"Feed, last {pages['minutes']} min: {pages['served']} first pages, "
            f"fallback {shown} {pages['fallbacks_by_reason'] or ''}".rstrip(),
        ]
    if report.outbox:
        box = report.outbox
        lines.append(
            f"Outbox: {box['pending']} pending (oldest {box['oldest_pending_age_s']} s); "
            f"{box['published_in_window']} published in the window, latency "
            f"p50 {box['publish_latency_ms_p50']} ms, p95 {box['publish_latency_ms_p95']} ms"
        )
    if report.retrain_runs:
        lines.append("Last retrain runs:")
        for run in report.retrain_runs:
            why = run.get("error") or run.get("note") or ""
            lines.append(f"  {run['started_at']} {run['status']:<9} {run['model_version']} {why}")
    lines += ["Not visible from here:"] + [f"  {item}" for item in report.not_visible]
    lines.append(f"Overall: {'DOWN' if report.exit_code else 'ok'}")
    return "\n".join(lines)
