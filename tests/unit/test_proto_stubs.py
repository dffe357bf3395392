"""The committed gRPC stubs are exactly what grpcio-tools generates from the committed .proto."""

from __future__ import annotations

from pathlib import Path

import pytest

from proto import generate
from proto.lightfm.v2025_9 import recommender_pb2, recommender_pb2_grpc

pytestmark = pytest.mark.unit


def test_committed_stubs_match_a_fresh_generation(tmp_path: Path) -> None:
    fresh = generate.generate(tmp_path)

    stale = []
    for path in fresh:
        committed = generate.REPO_ROOT / path.relative_to(tmp_path)
        if not committed.exists() or committed.read_bytes() != path.read_bytes():
            stale.append(str(committed.relative_to(generate.REPO_ROOT)))
    assert not stale, f"stale stubs {stale}: run `python proto/generate.py` and commit the result"


def test_stubs_import_under_the_proto_package_not_the_lightfm_library() -> None:
    assert recommender_pb2.DESCRIPTOR.package == "lightfm.v2025_9"
    assert hasattr(recommender_pb2_grpc, "RecommenderStub")
