"""`LIGHTFM_TARGET` as the gRPC target of one or several model-service replicas, and which
targets stay on this machine (where LoadModel's token may go without TLS)."""

from __future__ import annotations

import pytest

from adapters.lightfm.channel import grpc_target, is_loopback

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("spec", "target"),
    [
        ("127.0.0.1:50051", "127.0.0.1:50051"),
        ("model.internal:50051", "model.internal:50051"),
        ("dns:///model.internal:50051", "dns:///model.internal:50051"),
        ("10.0.0.1:1, 10.0.0.2:2", "ipv4:10.0.0.1:1,10.0.0.2:2"),
        ("[::1]:1,[fd00::2]:2", "ipv6:[::1]:1,[fd00::2]:2"),
        ("ipv4:10.0.0.1:1,10.0.0.2:2", "ipv4:10.0.0.1:1,10.0.0.2:2"),
    ],
)
def test_a_target_names_every_replica_for_grpc(spec: str, target: str) -> None:
    assert grpc_target(spec) == target


@pytest.mark.parametrize("spec", ["a.internal:1,b.internal:2", "10.0.0.1:1,[::1]:2"])
def test_a_list_of_names_or_mixed_ip_versions_is_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="LIGHTFM_TARGET"):
        grpc_target(spec)


@pytest.mark.parametrize(
    ("spec", "loopback"),
    [
        ("127.0.0.1:50051", True),
        ("localhost:50051", True),
        ("[::1]:50051", True),
        ("127.0.0.1:1,127.0.0.2:2", True),
        ("unix:///run/feedrec/lightfm.sock", True),
        ("dns:///localhost:50051", True),
        ("127.0.0.1:1,10.0.0.2:2", False),
        ("10.0.0.1:50051", False),
        ("model.internal:50051", False),
        ("dns:///model.internal:50051", False),
    ],
)
def test_only_targets_on_this_machine_count_as_loopback(spec: str, loopback: bool) -> None:
    assert is_loopback(spec) is loopback
