"""`GET /experiments/report`: the experiment readout as JSON, for operators only."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response, request
from pydantic import ValidationError

from adapters.web.auth import authenticated_principal
from adapters.web.dependencies import dependencies
from adapters.web.experiment_schemas import ExperimentReportOut, ReportQuery
from adapters.web.json_body import field_errors
from adapters.web.openapi import Operation, query_parameters
from domain.auth import ensure_operator
from domain.errors import InvalidInput, NotFound
from domain.experiment_report import report_window
from domain.experiment_report_json import report_to_json

blueprint = Blueprint("experiments", __name__)

OPERATIONS = (
    Operation(
        "GET",
        "/experiments/report",
        "The readout of the configured experiment (FEED_EXPERIMENT) over the service's"
        " database: per variant, what was served and consumed, each metric's lift over the"
        " control with an always-valid interval, and the sample-ratio test. Operators only"
        " (a `feed:service` token); 404 when no experiment is configured",
        {200: ExperimentReportOut},
        errors=(400, 403, 404, 503),
        parameters=query_parameters(ReportQuery),
        tags=("experiments",),
    ),
)


@blueprint.get("/experiments/report")
def get_report() -> Response:
    ensure_operator(authenticated_principal())
    if any(len(values) > 1 for values in request.args.listvalues()):
        raise InvalidInput("each query parameter may appear once")
    try:
        query = ReportQuery.model_validate(request.args.to_dict())
    except ValidationError as err:
        raise InvalidInput("the request has invalid parameters", field_errors(err)) from err
    reporter = dependencies().experiment_reporter
    if reporter is None:
        raise NotFound("no experiment is configured (FEED_EXPERIMENT is empty)")
    start, end = report_window(query.end or datetime.now(UTC).date(), query.days)
    body = ExperimentReportOut.model_validate(report_to_json(reporter.report(start, end)))
    return Response(body.model_dump_json(), mimetype="application/json")
