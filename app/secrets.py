"""The JWT secret: from JWT_SECRET, else the one kept under the data folder."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from app.settings import Settings, SettingsError

SECRET_FILE = "jwt-secret"  # noqa: S105 - a file name, not a secret


def jwt_secret(settings: Settings, *, create: bool = False) -> str:
    """The HS256 secret. With `create`, a missing secret file is generated (mode 0600): the
    embedded run does that once; a deployment sets JWT_SECRET instead."""
    if settings.jwt_secret:
        return settings.jwt_secret
    path = settings.data_dir / SECRET_FILE
    if not path.exists():
        if not create:
            raise SettingsError(
                f"JWT_SECRET is not set and {path} does not exist; set JWT_SECRET "
                "or run `feedrec up` once to generate a local secret"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_private(path, secrets.token_urlsafe(48))
    return path.read_text().strip()


def public_key(settings: Settings) -> str | None:
    if not settings.jwt_public_key_file:
        return None
    return Path(settings.jwt_public_key_file).read_text()


def _write_private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text + "\n")
