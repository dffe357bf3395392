"""ModelStore on a local folder: every file is written to a temporary name in its final folder,
fsynced, then renamed over the target with `os.replace`, which POSIX makes atomic."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from adapters.model_store._layout import (
    ARTIFACT,
    COMPONENT,
    INFO,
    POINTER,
    VERSIONS,
    check_known,
    check_new,
    decode_info,
    encode_info,
)
from domain.errors import Conflict, DependencyUnavailable, NotFound
from domain.model import ModelInfo

_TEMP_PREFIX = ".tmp-"


class LocalModelStore:
    """Implements `ports.model_store.ModelStore` under `root` (created on first write)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalModelStore({str(self.root)!r})"

    def put(self, version: str, blob: bytes, info: ModelInfo) -> None:
        check_new(version, info)
        folder = self.root / VERSIONS / version
        with _translated(f"storing model {version}"):
            if (folder / INFO).exists():
                raise Conflict(f"model version {version!r} is already stored")
            folder.mkdir(parents=True, exist_ok=True)
            _write_atomically(folder / ARTIFACT, blob)
            _write_atomically(folder / INFO, encode_info(info))

    def get(self, version: str) -> bytes:
        self.info(version)  # the info file marks the artifact complete
        with _translated(f"reading model {version}"):
            return (self.root / VERSIONS / version / ARTIFACT).read_bytes()

    def info(self, version: str) -> ModelInfo:
        check_known(version)
        path = self.root / VERSIONS / version / INFO
        with _translated(f"reading model {version}"):
            try:
                raw = path.read_bytes()
            except FileNotFoundError as err:
                raise NotFound(f"model version {version!r} is not stored") from err
        return decode_info(raw, str(path))

    def publish(self, version: str) -> None:
        self.info(version)
        with _translated(f"publishing model {version}"):
            _write_atomically(self.root / POINTER, version.encode())

    def published(self) -> str | None:
        with _translated("reading the published model"):
            try:
                return (self.root / POINTER).read_text().strip() or None
            except FileNotFoundError:
                return None


def _write_atomically(target: Path, data: bytes) -> None:
    fd, temp_name = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as temp:
            temp.write(data)
            temp.flush()
            os.fsync(temp.fileno())
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    # The rename itself is durable only once the folder's entry is on disk.
    folder_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(folder_fd)
    finally:
        os.close(folder_fd)


@contextmanager
def _translated(doing: str) -> Iterator[None]:
    try:
        yield
    except OSError as err:
        raise DependencyUnavailable(COMPONENT, f"{doing} failed: {err}") from err
