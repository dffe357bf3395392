"""The `lightfm` process's parts: the serving model and the gRPC server in front of it."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from adapters.lightfm.channel import ServerTls
from adapters.lightfm.model_service import ModelService
from adapters.lightfm.server import build_server
from adapters.system_clock import SystemClock
from app.composition.common import model_server_tls, model_store_from
from app.settings import Settings
from ports.clock import Clock
from ports.model_store import ModelStore


@dataclass
class ModelServiceOverrides:
    """Parts a caller supplies instead of the ones the settings describe."""

    store: ModelStore | None = None
    clock: Clock | None = None


@dataclass
class ModelServiceComposition:
    """`models` holds the serving model (none loaded yet); `listen` binds the server."""

    models: ModelService
    bind: str
    max_workers: int
    admin_token: str
    tls: ServerTls | None = None

    def listen(self) -> tuple[grpc.Server, int]:
        """The gRPC server bound to `bind` (port 0 picks a free one), not started yet, and
        its port. Raises OSError when it cannot listen there."""
        return build_server(
            self.models,
            self.bind,
            max_workers=self.max_workers,
            admin_token=self.admin_token,
            tls=self.tls,
        )


def build_model_service(
    settings: Settings, overrides: ModelServiceOverrides | None = None
) -> ModelServiceComposition:
    """The model service wired from `settings`. Opens no connection and binds no port yet."""
    chosen = overrides or ModelServiceOverrides()
    models = ModelService(chosen.store or model_store_from(settings), chosen.clock or SystemClock())
    return ModelServiceComposition(
        models,
        settings.lightfm_bind,
        max_workers=settings.lightfm_max_workers,
        admin_token=settings.lightfm_admin_token,
        tls=model_server_tls(settings),
    )
