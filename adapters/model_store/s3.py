"""ModelStore on an S3 prefix (AWS S3 or any S3-compatible server), through pyarrow.

S3 makes each object appear whole or not at all (a single PUT, or a multipart upload that
becomes visible only on completion). Atomicity of a version therefore comes from the order:
the artifact object first, its info object last (the info's presence marks a complete
version), and publishing is one PUT of the pointer object.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlparse

import pyarrow.fs as pafs
from pyarrow.lib import ArrowException

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


class S3ModelStore:
    """Implements `ports.model_store.ModelStore` under `uri` (`s3://bucket/prefix`).

    `endpoint_override` is an S3-compatible server (`http://127.0.0.1:9000` or
    `host:port`, https when no scheme is given). Credentials and region default to the AWS SDK's
    chain (environment, profile). The bucket must exist. Timeouts are in seconds.
    """

    def __init__(
        self,
        uri: str,
        endpoint_override: str | None = None,
        *,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str | None = None,
        connect_timeout_s: float = 3.0,
        request_timeout_s: float = 30.0,
        max_attempts: int = 3,
    ) -> None:
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError(f"not an s3://bucket/prefix URI: {uri!r}")
        self.uri = uri
        self._base = "/".join(part for part in (parsed.netloc, parsed.path.strip("/")) if part)
        options: dict[str, Any] = {
            "connect_timeout": connect_timeout_s,
            "request_timeout": request_timeout_s,
            "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=max_attempts),
        }
        if endpoint_override:
            scheme, _, address = endpoint_override.rpartition("://")
            options.update(endpoint_override=address, scheme=scheme or "https")
        if access_key is not None and secret_key is not None:
            options.update(access_key=access_key, secret_key=secret_key)
        if region is not None:
            options["region"] = region
        self._options = options
        self._filesystem: pafs.S3FileSystem | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"S3ModelStore({self.uri!r})"

    def put(self, version: str, blob: bytes, info: ModelInfo) -> None:
        check_new(version, info)
        with _translated(f"storing model {version}"):
            fs = self._fs()
            if fs.get_file_info(self._key(version, INFO)).type != pafs.FileType.NotFound:
                raise Conflict(f"model version {version!r} is already stored")
            for name, data in ((ARTIFACT, blob), (INFO, encode_info(info))):
                with fs.open_output_stream(self._key(version, name)) as stream:
                    stream.write(data)

    def get(self, version: str) -> bytes:
        self.info(version)  # the info object marks the artifact complete
        with _translated(f"reading model {version}"):
            return self._read(self._key(version, ARTIFACT))

    def info(self, version: str) -> ModelInfo:
        check_known(version)
        key = self._key(version, INFO)
        with _translated(f"reading model {version}"):
            try:
                raw = self._read(key)
            except FileNotFoundError as err:
                raise NotFound(f"model version {version!r} is not stored") from err
        return decode_info(raw, f"s3://{key}")

    def publish(self, version: str) -> None:
        self.info(version)
        with (
            _translated(f"publishing model {version}"),
            self._fs().open_output_stream(f"{self._base}/{POINTER}") as stream,
        ):
            stream.write(version.encode())

    def published(self) -> str | None:
        with _translated("reading the published model"):
            try:
                return self._read(f"{self._base}/{POINTER}").decode().strip() or None
            except FileNotFoundError:
                return None

    def _key(self, version: str, name: str) -> str:
        return f"{self._base}/{VERSIONS}/{version}/{name}"

    def _read(self, key: str) -> bytes:
        with self._fs().open_input_stream(key) as stream:
            return bytes(stream.read())

    def _fs(self) -> pafs.S3FileSystem:
        # Built on first use: constructing it may consult the credential chain.
        with self._lock:
            if self._filesystem is None:
                self._filesystem = pafs.S3FileSystem(**self._options)
            return self._filesystem


@contextmanager
def _translated(doing: str) -> Iterator[None]:
    try:
        yield
    except (OSError, ArrowException) as err:
        raise DependencyUnavailable(COMPONENT, f"{doing} failed: {err}") from err
