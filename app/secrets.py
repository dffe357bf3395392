"""Secrets: the JWT secret (from JWT_SECRET, else the one kept under the data folder), secrets
read from `*_FILE` settings, and the Snowflake private key."""

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


def secret_or_file(value: str, file: str, name: str) -> str:
    """A secret setting `name`: its value, else the first line of the file `<name>_FILE` names
    (a mounted secret), else empty."""
    if value or not file:
        return value
    try:
        return Path(file).read_text().strip()
    except OSError as err:
        raise SettingsError(f"{name}_FILE={file!r} cannot be read: {err}") from err


def snowflake_private_key(settings: Settings) -> bytes | None:
    """The DER (PKCS#8) bytes of SNOWFLAKE_PRIVATE_KEY_PATH for the connector's key-pair
    sign-in, None when it is not set. A missing, unreadable or wrongly locked key raises
    SettingsError at start-up, not at the first run-log write at night."""
    if not settings.snowflake_private_key_path:
        return None
    from cryptography.hazmat.primitives import serialization

    path = settings.snowflake_private_key_path
    passphrase = secret_or_file(
        settings.snowflake_private_key_passphrase,
        settings.snowflake_private_key_passphrase_file,
        "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE",
    )
    try:
        key = serialization.load_pem_private_key(
            Path(path).read_bytes(), password=passphrase.encode() if passphrase else None
        )
    except OSError as err:
        raise SettingsError(f"SNOWFLAKE_PRIVATE_KEY_PATH={path!r} cannot be read: {err}") from err
    except (ValueError, TypeError) as err:  # not PEM, wrong or missing passphrase
        raise SettingsError(
            f"SNOWFLAKE_PRIVATE_KEY_PATH={path!r} is not a PEM private key this passphrase "
            f"opens: {err}"
        ) from err
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
