"""Shared helpers for tests that drive the Flask app."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from app.settings import Settings

SECRET = "test-secret-" + "x" * 40


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"data_dir": tmp_path, "jwt_secret": SECRET}
    values.update(overrides)
    return Settings(**values)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def an_event(user_id: str = "u1", **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "userId": user_id,
        "videoId": "v1",
        "interactionType": "view",
        "watchTime": 12_000,
        "timestamp": (datetime.now(UTC) - timedelta(seconds=30)).isoformat(),
    }
    event.update(fields)
    return event


def error_of(body: Mapping[str, Any] | None) -> dict[str, Any]:
    assert body is not None and "error" in body, body
    error: dict[str, Any] = body["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str)
    return error
