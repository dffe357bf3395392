"""Model stores: a local folder or an S3 prefix, chosen by URI."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from adapters.model_store.local import LocalModelStore
from adapters.model_store.s3 import S3ModelStore
from ports.model_store import ModelStore

__all__ = ["LocalModelStore", "S3ModelStore", "model_store_from_uri"]


def model_store_from_uri(uri: str, s3_endpoint: str | None = None) -> ModelStore:
    """`s3://bucket/prefix` -> S3ModelStore (through `s3_endpoint`, e.g. `http://127.0.0.1:9000`,
    when given); `file:///path` or a plain folder path -> LocalModelStore."""
    if uri.startswith("s3://"):
        return S3ModelStore(uri, endpoint_override=s3_endpoint)
    if uri.startswith("file://"):
        return LocalModelStore(Path(unquote(urlparse(uri).path)))
    if "://" in uri:
        raise ValueError(f"unsupported model store URI {uri!r}: use a folder, file:// or s3://")
    return LocalModelStore(Path(uri))
