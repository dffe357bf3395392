"""Request and response models of the REST API. The same models validate requests and
generate `/openapi.json`, so the document cannot drift from what the service accepts."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, StrictStr

from domain.interactions import MAX_BATCH_SIZE, MAX_ID_LENGTH, MAX_WATCH_TIME_MS, InteractionType

Identifier = Annotated[StrictStr, Field(min_length=1, max_length=MAX_ID_LENGTH)]


class ApiModel(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class InteractionIn(ApiModel):
    eventId: Identifier | None = Field(  # noqa: N815 - the API is camelCase
        default=None,
        description="Client-chosen id that makes retries idempotent; generated when absent.",
    )
    userId: Identifier  # noqa: N815
    videoId: Identifier  # noqa: N815
    interactionType: InteractionType  # noqa: N815
    watchTime: Annotated[StrictInt, Field(ge=0, le=MAX_WATCH_TIME_MS)] = Field(  # noqa: N815
        description="How long the video was watched, in integer milliseconds."
    )
    timestamp: AwareDatetime = Field(description="When it happened: RFC 3339 with a UTC offset.")
    feedSessionId: Identifier | None = None  # noqa: N815
    algorithm: Literal["lightfm", "trending"] | None = None
    experimentVariantId: Identifier | None = None  # noqa: N815


class InteractionBatchIn(ApiModel):
    events: Annotated[list[InteractionIn], Field(min_length=1, max_length=MAX_BATCH_SIZE)]


class InteractionsAccepted(ApiModel):
    accepted: int = Field(description="How many events of the request were accepted.")
    eventIds: list[str] = Field(description="The events' ids, in request order.")  # noqa: N815


class ErrorDetail(ApiModel):
    code: str
    message: str
    fields: dict[str, str] | None = None


class ErrorBody(ApiModel):
    error: ErrorDetail


class Liveness(ApiModel):
    status: Literal["ok"]


class ComponentStatus(ApiModel):
    ok: bool
    critical: bool
    detail: str


class Readiness(ApiModel):
    status: Literal["ready", "degraded", "unready"]
    components: dict[str, ComponentStatus]
