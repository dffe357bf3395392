"""Request and response models of the REST API. The same models validate requests and
generate `/openapi.json`, so the document cannot drift from what the service accepts."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, StrictStr

from adapters.web.wire_formats import DECIMAL_SPELLING, RFC3339_SPELLING, CursorText
from domain.feed import Algorithm, FallbackReason, ItemSource, Personalization
from domain.feed_service import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from domain.interactions import MAX_BATCH_SIZE, MAX_ID_LENGTH, MAX_WATCH_TIME_MS, InteractionType

#: The pattern only documents the domain's rule (no C0/C1 control characters) for clients;
#: domain.interactions enforces it with its own message.
Identifier = Annotated[
    StrictStr,
    Field(
        min_length=1,
        max_length=MAX_ID_LENGTH,
        json_schema_extra={"pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"},
    ),
]


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
    timestamp: Annotated[AwareDatetime, RFC3339_SPELLING] = Field(
        description="When it happened: RFC 3339 with a UTC offset."
    )
    feedSessionId: Identifier | None = None  # noqa: N815
    algorithm: Algorithm | None = Field(
        default=None, description="The source that ranked the session the video was served in."
    )
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
    components: dict[str, ComponentStatus] | None = None  # operators only (see health.py)


class FeedQuery(BaseModel):
    """Query parameters of GET /feed/recommendations (query strings: integers are parsed)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    userId: Identifier = Field(description="The viewer whose feed this is.")  # noqa: N815
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE), DECIMAL_SPELLING] = Field(
        default=DEFAULT_PAGE_SIZE, description="Items on this page."
    )
    cursor: CursorText | None = Field(
        default=None, description="`nextCursor` of the previous page; absent for a first page."
    )
    feedSessionId: Identifier | None = Field(  # noqa: N815
        default=None,
        description="Optional client-chosen id for a new session; must match the cursor's.",
    )


class FeedItem(ApiModel):
    videoId: str  # noqa: N815
    score: float
    rank: int = Field(description="1-based position in the whole session.")
    source: ItemSource = Field(
        description="Where the item came from: the model, trending, popularity, or exploration"
        " (a video the model does not know yet)."
    )


class FeedOut(ApiModel):
    userId: str  # noqa: N815
    feedSessionId: str  # noqa: N815
    algorithm: Algorithm = Field(description="The source that ranked this session.")
    fallbackReason: FallbackReason | None = Field(  # noqa: N815
        description="Why the session is served by trending instead of its source; null if not."
    )
    personalization: Personalization = Field(
        description="How the session was personalised: the model's nightly vector (`model`),"
        " interactions newer than the model folded in (`realtime`), or not at all (`none`)."
    )
    experimentVariantId: str | None  # noqa: N815
    modelVersion: str | None  # noqa: N815
    items: list[FeedItem]
    nextCursor: str | None  # noqa: N815
