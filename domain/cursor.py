"""Opaque, signed pagination cursors: HMAC-SHA256 over the position, with an expiry.

A cursor names the feed session, the viewer and the next page. It cannot be forged without
the secret, is refused once expired, and is refused when presented for another viewer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from domain.errors import InvalidInput
from domain.interactions import MAX_ID_LENGTH

_SIGNATURE_BYTES = 16  # 128 bits: forgery is out of reach, cursors stay short
#: Unpadded base64url: the only spelling `encode` produces, so the only one `decode` accepts.
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


def _b64_length(size: int) -> int:
    return -(-size * 4 // 3)  # unpadded base64 of `size` bytes


#: The longest cursor `encode` can produce: two ids of MAX_ID_LENGTH characters, each at worst a
#: 12-byte JSON escape (a character outside the BMP is two `\uXXXX`), and the rest of the JSON.
MAX_CURSOR_LENGTH = _b64_length(2 * MAX_ID_LENGTH * 12 + 64) + 1 + _b64_length(_SIGNATURE_BYTES)
#: What a cursor looks like on the wire (all of it unreserved in a URL: never percent-encoded).
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"


@dataclass(frozen=True)
class CursorPosition:
    feed_session_id: str
    user_id: str
    page_number: int
    expires_at: datetime


class CursorCodec:
    def __init__(self, secret: bytes, ttl: timedelta) -> None:
        if len(secret) < 16:
            raise ValueError("the cursor secret must be at least 16 bytes")
        self._secret = secret
        self.ttl = ttl

    def encode(self, feed_session_id: str, user_id: str, page_number: int, now: datetime) -> str:
        expires = int((now + self.ttl).timestamp())
        body = json.dumps(
            {"s": feed_session_id, "u": user_id, "p": page_number, "e": expires},
            separators=(",", ":"),
        ).encode()
        return f"{_b64(body)}.{_b64(self._sign(body))}"

    def decode(self, cursor: str, user_id: str, now: datetime) -> CursorPosition:
        """The position; InvalidInput naming `cursor` when it is malformed, forged, expired or
        issued to another viewer."""
        body_text, _, signature_text = cursor.partition(".")
        try:
            body, signature = _unb64(body_text), _unb64(signature_text)
        except (binascii.Error, ValueError) as err:
            raise _bad("is malformed") from err
        if not hmac.compare_digest(signature, self._sign(body)):
            raise _bad("is not a cursor this service issued")
        try:
            fields = json.loads(body)
            position = CursorPosition(
                feed_session_id=str(fields["s"]),
                user_id=str(fields["u"]),
                page_number=int(fields["p"]),
                expires_at=datetime.fromtimestamp(int(fields["e"]), UTC),
            )
        except (ValueError, KeyError, TypeError) as err:
            raise _bad("is malformed") from err
        if position.expires_at <= now:
            raise _bad("has expired; start a new feed session")
        if position.user_id != user_id:
            raise _bad("belongs to another viewer")
        return position

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self._secret, body, hashlib.sha256).digest()[:_SIGNATURE_BYTES]


def _bad(problem: str) -> InvalidInput:
    return InvalidInput(f"the cursor {problem}", {"cursor": problem})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    """Strict: padding, characters outside the alphabet and non-canonical spellings (spare low
    bits in the last character) are refused, so one cursor has exactly one spelling."""
    if len(text) > MAX_CURSOR_LENGTH or not _BASE64URL.fullmatch(text):
        raise ValueError("empty, oversized or not unpadded base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise ValueError("not the canonical base64url of its bytes")
    return data
