"""The `web` process: `gunicorn -c python:app.gunicorn_conf 'app.web:create_app()'`."""

from __future__ import annotations

from flask import Flask

from adapters.web.factory import build_flask_app
from app.bootstrap import Overrides, build_web_dependencies
from app.cooperative import make_c_clients_cooperative
from app.logs import configure_logging
from app.settings import Settings


def create_app(settings: Settings | None = None, overrides: Overrides | None = None) -> Flask:
    """The Flask app; with no arguments, configured from the environment."""
    make_c_clients_cooperative()
    chosen = settings or Settings.from_env()
    if settings is None:
        configure_logging(chosen.log_level)
    return build_flask_app(build_web_dependencies(chosen, overrides))
