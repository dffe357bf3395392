"""`POST /feed/interactions`: parse, call the ingestion service, render."""

from __future__ import annotations

import uuid

from flask import Blueprint, Response, jsonify

from adapters.web.auth import authenticated_principal
from adapters.web.dependencies import dependencies
from adapters.web.json_body import raw_json_body, validated
from adapters.web.openapi import Operation
from adapters.web.schemas import InteractionBatchIn, InteractionIn, InteractionsAccepted
from domain.interactions import InteractionEvent

blueprint = Blueprint("interactions", __name__)

OPERATIONS = (
    Operation(
        "POST",
        "/feed/interactions",
        "Record one interaction, or a batch of up to 500",
        {202: InteractionsAccepted},
        errors=(400, 403, 409, 413, 415, 503),
        request_models=(InteractionIn, InteractionBatchIn),
        tags=("interactions",),
    ),
)


@blueprint.post("/feed/interactions")
def post_interactions() -> tuple[Response, int]:
    principal = authenticated_principal()
    raw, parsed = raw_json_body()
    as_batch = isinstance(parsed, dict) and "events" in parsed
    incoming = (
        validated(InteractionBatchIn, raw).events if as_batch else [validated(InteractionIn, raw)]
    )
    events = [_to_event(item) for item in incoming]
    receipt = dependencies().ingestion.ingest(principal, events, as_batch=as_batch)
    body = InteractionsAccepted(accepted=len(receipt.event_ids), eventIds=list(receipt.event_ids))
    return jsonify(body.model_dump()), 202


def _to_event(item: InteractionIn) -> InteractionEvent:
    return InteractionEvent(
        event_id=item.eventId or str(uuid.uuid4()),
        user_id=item.userId,
        video_id=item.videoId,
        interaction_type=item.interactionType,
        watch_time_ms=item.watchTime,
        occurred_at=item.timestamp,
        feed_session_id=item.feedSessionId,
        algorithm=item.algorithm,
        experiment_variant_id=item.experimentVariantId,
    )
