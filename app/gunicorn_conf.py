"""gunicorn settings for the `web` process, from the same Settings as everything else."""

from __future__ import annotations

from typing import Any

from adapters.web.wire_formats import (
    HEADER_FIELD_MAX_BYTES,
    HEADER_FIELDS_MAX,
    REQUEST_LINE_MAX_BYTES,
)
from app import gunicorn_refusals
from app.logs import gunicorn_logconfig
from app.settings import Settings
from app.stall_detector import configure_gevent_monitor

_settings = Settings.from_env()
CONTROL_SOCKET_PATH_MAX = 100

bind = _settings.web_bind
workers = _settings.web_workers
worker_class = "gevent"
worker_connections = 1000
# gevent workers answer many requests at once; a request is never this slow unless stuck.
timeout = 30
graceful_timeout = 10
keepalive = 5
accesslog = None  # the app logs each request as a JSON line
loglevel = _settings.log_level.lower()
logconfig_dict = gunicorn_logconfig(_settings.log_level)
# The API documents these limits (414, 431); the longest request it allows fits them.
limit_request_line = REQUEST_LINE_MAX_BYTES
limit_request_field_size = HEADER_FIELD_MAX_BYTES
limit_request_fields = HEADER_FIELDS_MAX
# gunicorn 27's control socket would go to ~/.gunicorn/; everything a run writes stays under
# the data folder. A unix socket path has ~107 bytes: past that, no control socket at all.
control_socket = str((_settings.data_dir / "gunicorn.ctl").resolve())
control_socket_disable = len(control_socket.encode()) > CONTROL_SOCKET_PATH_MAX


def post_fork(server: Any, worker: Any) -> None:
    """Before the worker patches with gevent and makes its hub: the hub starts gevent's monitor
    thread only when configured before it exists (the stall detector, `app/stall_detector.py`)."""
    configure_gevent_monitor(_settings.web_stall_threshold_ms)


def post_worker_init(worker: Any) -> None:
    """gunicorn's own refusals as the API's JSON errors; no `Server` header."""
    gunicorn_refusals.install()
