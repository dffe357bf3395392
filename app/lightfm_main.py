"""The `lightfm` process: the gRPC model service on `LIGHTFM_BIND`.

    python -m app.lightfm_main        (or `feedrec lightfm`)

Starts listening at once; health says NOT_SERVING until a model is loaded, which is the
published one at start, or the next one published (poll) or named by LoadModel. SIGTERM or
SIGINT stops it, giving in-flight calls `LIGHTFM_SHUTDOWN_GRACE_S` seconds to finish.
"""

from __future__ import annotations

import logging
import threading

from threadpoolctl import threadpool_limits

from adapters.lightfm.model_service import CorruptArtifactError, ModelService
from app.composition.model_service import ModelServiceOverrides, build_model_service
from app.logs import configure_logging
from app.settings import Settings
from app.signals import stop_on_signals
from domain.errors import DependencyUnavailable, NotFound

log = logging.getLogger("feedrec.lightfm")


def serve(
    settings: Settings,
    stop: threading.Event | None = None,
    overrides: ModelServiceOverrides | None = None,
) -> None:
    """Run the model service until `stop` is set; without one, until SIGTERM or SIGINT."""
    if stop is None:
        stop = stop_on_signals()
    # Calls are already parallel (one gRPC worker thread each); a BLAS that also fans every
    # vector-matrix product out over all cores makes concurrent calls fight for them:
    # measured 67 calls/s at p50 208 ms with the default, 827 calls/s at 18 ms with one thread.
    threadpool_limits(limits=1)
    composition = build_model_service(settings, overrides)
    models = composition.models
    server, port = composition.listen()
    server.start()
    host = settings.lightfm_bind.rpartition(":")[0]
    log.info("lightfm listening", extra={"bind": f"{host}:{port}", "port": port})
    _load_published(models)
    if settings.lightfm_poll_interval_s > 0:
        models.start_polling(settings.lightfm_poll_interval_s)
    try:
        stop.wait()
    finally:
        log.info("lightfm stopping", extra={"grace_s": settings.lightfm_shutdown_grace_s})
        models.stop_polling()
        server.stop(settings.lightfm_shutdown_grace_s).wait()
        log.info("lightfm stopped")


def _load_published(models: ModelService) -> None:
    # A missing or broken model must not keep the process down: it serves NOT_SERVING, and the
    # poller or a LoadModel call brings a model in later.
    try:
        models.load()
    except NotFound:
        log.warning("no model published yet: NOT_SERVING until one is")
    except (DependencyUnavailable, CorruptArtifactError) as err:
        log.error("could not load the published model", extra={"error": str(err)})


def main() -> None:
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    serve(settings)


if __name__ == "__main__":
    main()
