"""The model the `lightfm` process serves, and how a new version replaces it.

The serving model lives in one attribute that is replaced, never mutated: a request reads it
once and keeps that reference, so it finishes on the version it started with while a load
swaps in the next one. Loading (download, parse, index) happens before the swap, off the
request path.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from adapters.lightfm.artifact import ModelArtifact
from adapters.lightfm.scorer import LoadedModel
from domain.errors import NotFound
from domain.model import model_version_problem
from ports.clock import Clock
from ports.model_store import ModelStore

log = logging.getLogger(__name__)


class CorruptArtifactError(Exception):
    """The store holds the version, but its bytes are not a usable model artifact."""


@dataclass(frozen=True, eq=False)
class ServingModel:
    """A model ready to rank, and when this process swapped it in (timezone-aware)."""

    model: LoadedModel
    loaded_at: datetime

    @property
    def version(self) -> str:
        return self.model.info.version


ServingListener = Callable[[ServingModel | None], None]


class ModelService:
    """Owns the serving model: `current` for readers, `load` and `refresh_published` to replace
    it, and an optional background poll of the store's published pointer."""

    def __init__(self, store: ModelStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._serving: ServingModel | None = None
        # Serialises loads so two concurrent LoadModel calls cannot finish in the wrong order.
        self._load_lock = threading.Lock()
        self._listeners: list[ServingListener] = []
        self._stop_polling = threading.Event()
        self._poller: threading.Thread | None = None

    @property
    def current(self) -> ServingModel | None:
        """The model serving now, or None before the first successful load."""
        return self._serving

    def subscribe(self, listener: ServingListener) -> None:
        """Call `listener` with the serving model now and after every swap."""
        self._listeners.append(listener)
        listener(self._serving)

    def load(self, version: str | None = None) -> ServingModel:
        """Load `version` (None: the store's published one) and swap it in.

        Raises `domain.errors.NotFound` (no such version, or nothing published),
        `domain.errors.DependencyUnavailable` (store unreachable), ValueError (not a valid
        version name) or CorruptArtifactError. On any error the serving model stays as it was.
        """
        with self._load_lock:
            target = version if version is not None else self._published_version()
            if problem := model_version_problem(target):
                raise ValueError(f"model version {target!r} {problem}")
            model = self._read(target)
            serving = ServingModel(model, self._clock.now())
            previous, self._serving = self._serving, serving
        log.info(
            "model swapped in",
            extra={
                "model_version": serving.version,
                "previous_version": previous.version if previous else None,
                "n_users": model.info.n_users,
                "n_items": model.info.n_items,
            },
        )
        # The model lives until the next swap: out of the cyclic collector's sight, full
        # collections stop scanning its id maps (100k+ entries) in the middle of requests.
        # Nothing it holds is cyclic, so a replaced model is still freed by reference counting.
        gc.collect()
        gc.freeze()
        for listener in self._listeners:
            listener(serving)
        return serving

    def refresh_published(self) -> bool:
        """Load the published version if it is not the one serving; True when it swapped."""
        published = self._store.published()
        serving = self._serving
        if published is None or (serving is not None and serving.version == published):
            return False
        self.load(published)
        return True

    def start_polling(self, interval_s: float) -> None:
        """Check the published pointer every `interval_s` seconds in a daemon thread, so a
        publish is picked up even when the LoadModel call that announces it is lost."""
        if self._poller is not None:
            raise RuntimeError("already polling")
        self._stop_polling.clear()
        self._poller = threading.Thread(
            target=self._poll, args=(interval_s,), name="model-poller", daemon=True
        )
        self._poller.start()

    def stop_polling(self) -> None:
        poller, self._poller = self._poller, None
        if poller is not None:
            self._stop_polling.set()
            poller.join()

    def _poll(self, interval_s: float) -> None:
        while not self._stop_polling.wait(interval_s):
            try:
                self.refresh_published()
            except Exception:
                # The poller must outlive a flaky store or a bad artifact; the next tick retries.
                log.exception("polling the published model failed")

    def _published_version(self) -> str:
        published = self._store.published()
        if published is None:
            raise NotFound("no model version is published yet")
        return published

    def _read(self, version: str) -> LoadedModel:
        blob = self._store.get(version)
        try:
            artifact = ModelArtifact.from_bytes(blob)
            # Dropped once parsed, before the scorer copies the arrays: at 10M videos the
            # bytes, the artifact and the scorer are ~6 GB each.
            del blob
            return LoadedModel.from_artifact(artifact)
        except ValueError as err:
            raise CorruptArtifactError(f"model {version!r} is not a usable artifact") from err
