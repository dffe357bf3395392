"""The one settings object, read from the environment here and nowhere else (12-factor).

Every field has one environment variable, one default and one line in the README table.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any


class SettingsError(ValueError):
    """An environment variable holds a value that cannot be used."""


@dataclass(frozen=True)
class Settings:
    # --- general -------------------------------------------------------------------------
    #: FEEDREC_DATA_DIR: folder for the embedded defaults (SQLite file, secrets, models, exports).
    data_dir: Path = Path("var")
    #: LOG_LEVEL: level of the JSON log lines.
    log_level: str = "INFO"

    # --- web -----------------------------------------------------------------------------
    #: WEB_BIND: host:port gunicorn listens on.
    web_bind: str = "127.0.0.1:8000"
    #: WEB_WORKERS: gunicorn gevent worker processes.
    web_workers: int = 2
    #: MAX_REQUEST_BYTES: larger request bodies are refused with 413.
    max_request_bytes: int = 1_048_576

    # --- storage -------------------------------------------------------------------------
    #: DATABASE_URL: SQLAlchemy URL; empty means SQLite at <data_dir>/feedrec.db.
    database_url: str = ""

    # --- auth ----------------------------------------------------------------------------
    #: JWT_SECRET: HS256 secret; empty means the one kept in <data_dir>/jwt-secret (created once).
    jwt_secret: str = ""
    #: JWT_PUBLIC_KEY_FILE: PEM public key; when set, RS256 tokens it verifies are accepted too.
    jwt_public_key_file: str = ""
    #: JWT_AUDIENCE: the `aud` every token must carry.
    jwt_audience: str = "feedrec"
    #: JWT_LEEWAY_S: clock skew tolerated on `exp`/`nbf`, in seconds.
    jwt_leeway_s: int = 30

    # --- kafka ---------------------------------------------------------------------------
    #: KAFKA_BOOTSTRAP_SERVERS: comma-separated host:port list; empty disables publishing (the
    #: outbox keeps every event until a broker is configured).
    kafka_bootstrap_servers: str = ""
    #: KAFKA_TOPIC: the interactions topic.
    kafka_topic: str = "feed.interactions.v1"

    # --- model service -------------------------------------------------------------------
    #: LIGHTFM_BIND: host:port the lightfm gRPC model service listens on.
    lightfm_bind: str = "127.0.0.1:50051"
    #: LIGHTFM_TARGET: where the web service reaches the model service (gRPC target).
    lightfm_target: str = "127.0.0.1:50051"
    #: MODEL_STORE_URI: folder or s3:// prefix of model artifacts; empty means <data_dir>/models.
    model_store_uri: str = ""
    #: LIGHTFM_ADMIN_TOKEN: bearer token LoadModel must carry; empty leaves LoadModel open.
    lightfm_admin_token: str = ""
    #: LIGHTFM_MAX_WORKERS: threads serving gRPC calls in the model service.
    lightfm_max_workers: int = 8
    #: LIGHTFM_POLL_INTERVAL_S: seconds between checks of the published model; 0 disables.
    lightfm_poll_interval_s: float = 60.0
    #: LIGHTFM_SHUTDOWN_GRACE_S: seconds in-flight calls get to finish after SIGTERM.
    lightfm_shutdown_grace_s: float = 5.0

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'feedrec.db').resolve()}"

    @property
    def resolved_model_store_uri(self) -> str:
        return self.model_store_uri or str((self.data_dir / "models").resolve())

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in fields(cls):
            name = ENV_NAMES[field.name]
            if name not in env:
                continue
            raw = env[name]
            default = field.default
            try:
                if isinstance(default, bool):
                    values[field.name] = raw.strip().lower() in ("1", "true", "yes", "on")
                elif isinstance(default, int):
                    values[field.name] = int(raw)
                elif isinstance(default, float):
                    values[field.name] = float(raw)
                elif isinstance(default, Path):
                    values[field.name] = Path(raw)
                else:
                    values[field.name] = raw
            except ValueError as err:
                raise SettingsError(f"{name}={raw!r} is not a valid value") from err
        return cls(**values)


#: field name -> environment variable. Kept explicit so a rename is a visible decision.
ENV_NAMES: dict[str, str] = {
    "data_dir": "FEEDREC_DATA_DIR",
    "log_level": "LOG_LEVEL",
    "web_bind": "WEB_BIND",
    "web_workers": "WEB_WORKERS",
    "max_request_bytes": "MAX_REQUEST_BYTES",
    "database_url": "DATABASE_URL",
    "jwt_secret": "JWT_SECRET",
    "jwt_public_key_file": "JWT_PUBLIC_KEY_FILE",
    "jwt_audience": "JWT_AUDIENCE",
    "jwt_leeway_s": "JWT_LEEWAY_S",
    "kafka_bootstrap_servers": "KAFKA_BOOTSTRAP_SERVERS",
    "kafka_topic": "KAFKA_TOPIC",
    "lightfm_bind": "LIGHTFM_BIND",
    "lightfm_target": "LIGHTFM_TARGET",
    "model_store_uri": "MODEL_STORE_URI",
    "lightfm_admin_token": "LIGHTFM_ADMIN_TOKEN",
    "lightfm_max_workers": "LIGHTFM_MAX_WORKERS",
    "lightfm_poll_interval_s": "LIGHTFM_POLL_INTERVAL_S",
    "lightfm_shutdown_grace_s": "LIGHTFM_SHUTDOWN_GRACE_S",
}
