"""How the web service and the worker reach the model service: the gRPC target of one or more
replicas, and TLS (optionally mutual) on the channel.

`LIGHTFM_TARGET` is `host:port` (a DNS name resolving to several replicas uses them all), a
gRPC target URI (`dns:///`, `ipv4:`, `ipv6:`, `unix:`) or several comma-separated `ip:port`;
every channel picks replicas round-robin (`ROUND_ROBIN`); a replica that goes away fails the
calls in flight on it with UNAVAILABLE (connection reset), and the client's retry of them
lands on another.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

#: The service-config entry that spreads calls over every resolved address.
ROUND_ROBIN: list[dict[str, Any]] = [{"round_robin": {}}]
_SCHEMES = ("dns:", "ipv4:", "ipv6:", "unix:", "unix-abstract:")


@dataclass(frozen=True)
class ClientTls:
    """PEM files of a TLS channel: the CA trusted for the model service, and for mutual TLS
    this client's certificate and key. `server_name` overrides the name checked in the
    service's certificate (empty: the target's host)."""

    ca_file: str
    cert_file: str = ""
    key_file: str = ""
    server_name: str = ""

    def credentials(self) -> grpc.ChannelCredentials:
        chain = _read(self.cert_file) if self.cert_file else None
        key = _read(self.key_file) if self.key_file else None
        if (chain is None) != (key is None):
            raise ValueError("a client certificate needs its key, and a key its certificate")
        return grpc.ssl_channel_credentials(_read(self.ca_file), key, chain)


@dataclass(frozen=True)
class ServerTls:
    """PEM files the model service listens with; `client_ca_file` set: clients must present
    a certificate that CA signed (mutual TLS)."""

    cert_file: str
    key_file: str
    client_ca_file: str = ""

    def credentials(self) -> grpc.ServerCredentials:
        client_ca = _read(self.client_ca_file) if self.client_ca_file else None
        return grpc.ssl_server_credentials(
            [(_read(self.key_file), _read(self.cert_file))],
            root_certificates=client_ca,
            require_client_auth=client_ca is not None,
        )


def grpc_target(spec: str) -> str:
    """The gRPC target for `LIGHTFM_TARGET`. Raises ValueError for a list holding a name
    (gRPC resolves a list only of addresses; give one DNS name for several replicas)."""
    spec = spec.strip()
    if spec.startswith(_SCHEMES) or "," not in spec:
        return spec
    parts = [part.strip() for part in spec.split(",") if part.strip()]
    versions = {_ip_version(part) for part in parts}
    if None in versions or len(versions) != 1:
        raise ValueError(
            f"LIGHTFM_TARGET {spec!r}: a list must be ip:port addresses of one IP version"
        )
    return f"ipv{versions.pop()}:{','.join(parts)}"


def hosts(spec: str) -> list[str]:
    """The hosts `spec` names (a unix socket: `localhost`)."""
    target = grpc_target(spec)
    if target.startswith(("unix:", "unix-abstract:")):
        return ["localhost"]
    for scheme in ("dns:", "ipv4:", "ipv6:"):
        if target.startswith(scheme):
            target = target[len(scheme) :]
            # dns:[//authority/]host[:port]
            target = target.split("/")[-1] if scheme == "dns:" else target
    return [_split_host(part) for part in target.split(",")]


def is_loopback(spec: str) -> bool:
    """Does every host of `spec` stay on this machine?"""
    for host in hosts(spec):
        if host == "localhost":
            continue
        try:
            if not ipaddress.ip_address(host).is_loopback:
                return False
        except ValueError:  # a name other than localhost may resolve anywhere
            return False
    return True


def open_channel(
    spec: str, options: Mapping[str, str | int], tls: ClientTls | None = None
) -> grpc.Channel:
    """A lazily connecting channel to `spec`, TLS when `tls` is given."""
    target = grpc_target(spec)
    pairs: list[tuple[str, str | int]] = list(options.items())
    if tls is None:
        return grpc.insecure_channel(target, options=pairs)
    if tls.server_name:
        pairs.append(("grpc.ssl_target_name_override", tls.server_name))
    return grpc.secure_channel(target, tls.credentials(), options=pairs)


def _ip_version(address: str) -> int | None:
    try:
        return ipaddress.ip_address(_split_host(address)).version
    except ValueError:
        return None


def _split_host(address: str) -> str:
    if address.startswith("["):  # [v6]:port
        return address[1:].partition("]")[0]
    host, colon, port = address.rpartition(":")
    return host if colon and port.isdigit() and ":" not in host else address


def _read(path: str) -> bytes:
    return Path(path).read_bytes()
