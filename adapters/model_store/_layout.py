"""What the folder and S3 stores share: the object names under their root and the info codec.

Layout under the root: `versions/<version>/artifact.bin`, then `versions/<version>/info.json`
(written last, so its presence marks a complete version), and `PUBLISHED` holding the version
to serve.
"""

from __future__ import annotations

import json

from domain.errors import DependencyUnavailable, InvalidInput, NotFound
from domain.model import ModelInfo, model_info_from_json, model_info_to_json, model_version_problem

COMPONENT = "model_store"
VERSIONS = "versions"
ARTIFACT = "artifact.bin"
INFO = "info.json"
POINTER = "PUBLISHED"


def check_new(version: str, info: ModelInfo) -> None:
    if problem := model_version_problem(version):
        raise InvalidInput(f"model version {problem}", {"version": problem})
    if info.version != version:
        raise ValueError(f"info describes version {info.version!r}, not {version!r}")


def check_known(version: str) -> None:
    """An ill-formed version cannot be stored, so it is simply not found (and never a path)."""
    if model_version_problem(version):
        raise NotFound(f"model version {version!r} is not stored")


def encode_info(info: ModelInfo) -> bytes:
    return json.dumps(model_info_to_json(info), indent=2, sort_keys=True).encode()


def decode_info(raw: bytes, where: str) -> ModelInfo:
    try:
        return model_info_from_json(json.loads(raw))
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors too
        raise DependencyUnavailable(COMPONENT, f"unreadable model info at {where}: {err}") from err
