"""Strict spellings of values on the wire, where pydantic's own parsing is more lenient than the
contract: it reads `"1764633600"` as a timestamp and `"5_0"` as 50. Each marker goes after the
field's type and constraints, so the JSON schema keeps `format`, `minimum` and `maximum`."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import BeforeValidator, Field, StrictStr

from domain.cursor import CURSOR_PATTERN, MAX_CURSOR_LENGTH

#: RFC 3339 section 5.6 `date-time`, offset required; `T` and `Z` may be lower case. ASCII digits
#: only (`\d` would also match other scripts' digits).
RFC3339_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
#: A count in a query string: decimal digits, no sign, spaces, underscores or leading zeros.
DECIMAL_COUNT = re.compile(r"0|[1-9][0-9]*")


def _rfc3339(value: object) -> object:
    if not isinstance(value, str) or not RFC3339_DATE_TIME.fullmatch(value):
        raise ValueError("must be an RFC 3339 date-time with an offset, e.g. 2026-12-01T10:00:00Z")
    # Parsed here: the field's own (strict) validation then only checks the offset is there.
    return datetime.fromisoformat(value.upper())


def _decimal(value: object) -> object:
    if isinstance(value, str) and not DECIMAL_COUNT.fullmatch(value):
        raise ValueError("must be a decimal integer (digits only, no leading zeros)")
    return value


#: After `AwareDatetime`: only RFC 3339 text, never a number or epoch digits in a string.
RFC3339_SPELLING = BeforeValidator(_rfc3339)
#: After an integer query parameter's constraints: plain decimal digits only.
DECIMAL_SPELLING = BeforeValidator(_decimal)
#: A `nextCursor` as the service issues it: unpadded base64url, never percent-encoded in a URL.
CursorText = Annotated[StrictStr, Field(max_length=MAX_CURSOR_LENGTH, pattern=CURSOR_PATTERN)]

#: What the HTTP server accepts (gunicorn's settings, `app/gunicorn_conf.py`; 8,190 is the most
#: gunicorn allows). The documented query parameters fit the request line at their longest.
REQUEST_LINE_MAX_BYTES = 8190
HEADER_FIELD_MAX_BYTES = 8190
HEADER_FIELDS_MAX = 100
