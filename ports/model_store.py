"""Where trained models live between the trainer that writes them and the model service that
serves them. Artifacts are opaque bytes here; their format belongs to the model adapter."""

from __future__ import annotations

from typing import Protocol

from domain.model import ModelInfo


class ModelStore(Protocol):
    """Versioned model artifacts plus one "published" pointer naming the version to serve.

    Every method raises `domain.errors.DependencyUnavailable("model_store", ...)` when the
    store cannot be reached; no driver exception crosses this boundary. Methods that take a
    version raise `domain.errors.NotFound` when no complete artifact of that version is stored.
    """

    def put(self, version: str, blob: bytes, info: ModelInfo) -> None:
        """Store an artifact (`blob`, any size in bytes) and its description under `version`.

        Atomic: until `put` returns, readers do not see the version at all; after, they see the
        whole artifact. `info.version` must equal `version`, else ValueError; a version that
        breaks `domain.model.model_version_problem` raises `domain.errors.InvalidInput`.
        Versions are immutable: storing one that exists raises `domain.errors.Conflict`.
        Does not publish.
        """
        ...

    def get(self, version: str) -> bytes:
        """The artifact's bytes exactly as `put`."""
        ...

    def info(self, version: str) -> ModelInfo:
        """The description stored with the artifact."""
        ...

    def publish(self, version: str) -> None:
        """Make `version` the one to serve. The pointer moves atomically: a reader sees the
        previous version or this one, never neither. Raises NotFound for an unknown version."""
        ...

    def published(self) -> str | None:
        """The version to serve, or None when nothing was ever published."""
        ...
