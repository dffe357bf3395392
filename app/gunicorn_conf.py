"""gunicorn settings for the `web` process, from the same Settings as everything else."""

from __future__ import annotations

from app.logs import gunicorn_logconfig
from app.settings import Settings

_settings = Settings.from_env()

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
