"""A cursor has exactly one spelling: the unpadded base64url `encode` wrote. Padding, foreign
characters and a changed spare bit are refused, and the longest cursor `encode` can write is
accepted and fits the documented limit."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from domain.cursor import CURSOR_PATTERN, MAX_CURSOR_LENGTH, CursorCodec
from domain.errors import InvalidInput
from domain.interactions import MAX_ID_LENGTH

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
CODEC = CursorCodec(b"k" * 32, timedelta(hours=1))


def a_cursor() -> str:
    return CODEC.encode("s-1", "u1", 1, NOW)


def with_low_bit_flipped(part: str) -> str:
    return part[:-1] + ALPHABET[ALPHABET.index(part[-1]) ^ 1]


def refused(cursor: str) -> bool:
    try:
        CODEC.decode(cursor, "u1", NOW)
    except InvalidInput as err:
        assert "cursor" in err.fields
        return True
    return False


def test_the_cursor_as_issued_is_accepted() -> None:
    assert CODEC.decode(a_cursor(), "u1", NOW).page_number == 1


@pytest.mark.parametrize("padding", ["=", "==", "==="])
def test_padding_after_either_part_is_refused(padding: str) -> None:
    body, _, signature = a_cursor().partition(".")
    assert refused(f"{body}.{signature}{padding}")
    assert refused(f"{body}{padding}.{signature}")


def test_a_changed_spare_bit_in_the_last_character_is_refused() -> None:
    body, _, signature = a_cursor().partition(".")
    # 16 signature bytes leave 4 unused bits in the 22nd character: the same bytes decode
    assert len(signature) == 22
    assert refused(f"{body}.{with_low_bit_flipped(signature)}")
    if len(body) % 4:  # the body's last character has spare bits too
        assert refused(f"{with_low_bit_flipped(body)}.{signature}")


@pytest.mark.parametrize("foreign", ["+", "/", " ", "\n", "!", "\u0660"])
def test_characters_outside_base64url_are_refused_not_skipped(foreign: str) -> None:
    body, _, signature = a_cursor().partition(".")
    assert refused(f"{body[:4]}{foreign}{body[4:]}.{signature}")


def test_the_longest_cursor_the_service_issues_is_accepted_and_within_the_limit() -> None:
    astral = "\U0001f600" * MAX_ID_LENGTH  # the longest JSON escape per character
    cursor = CODEC.encode(astral, astral, 10**9, NOW)
    assert len(cursor) <= MAX_CURSOR_LENGTH
    assert re.fullmatch(CURSOR_PATTERN, cursor)
    assert CODEC.decode(cursor, astral, NOW).feed_session_id == astral


def test_an_overlong_cursor_is_refused() -> None:
    assert refused("A" * MAX_CURSOR_LENGTH + "." + "A" * 22)
