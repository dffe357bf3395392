"""Implements `ports.health.HealthCheck` for the Kafka brokers: does one of them answer a
Kafka `ApiVersions` request?

Non-critical: events wait in the outbox while the brokers are down, so the API keeps
answering. The probe is one plain socket round trip (no client threads), which also
cooperates with gevent once the socket module is patched.
"""

from __future__ import annotations

import socket
import struct
import time

from adapters.kafka.admin import COMPONENT
from ports.health import ComponentHealth

_API_VERSIONS = 18
_CORRELATION_ID = 0x0FEED
_CLIENT_ID = b"feedrec-health"


class KafkaHealth:
    name = COMPONENT
    critical = False

    def __init__(self, bootstrap_servers: str, timeout_s: float = 0.5) -> None:
        self._servers = [s.strip() for s in bootstrap_servers.split(",") if s.strip()]
        self._timeout_s = timeout_s

    def check(self) -> ComponentHealth:
        if not self._servers:
            return ComponentHealth(False, "no broker configured (KAFKA_BOOTSTRAP_SERVERS)")
        deadline = time.monotonic() + self._timeout_s
        problems: list[str] = []
        for server in self._servers:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                problems.append(f"{server}: no time left")
                break
            try:
                count = _api_versions(server, remaining)
            except (OSError, ValueError) as err:
                problems.append(f"{server}: {type(err).__name__}: {err}")
                continue
            return ComponentHealth(True, f"{server} answers ({count} APIs)")
        return ComponentHealth(False, "; ".join(problems))


def _api_versions(server: str, timeout_s: float) -> int:
    """Send ApiVersions v0 to `server` ("host:port"); the number of APIs it supports."""
    host, _, port = server.rpartition(":")
    request = struct.pack(">hhih", _API_VERSIONS, 0, _CORRELATION_ID, len(_CLIENT_ID)) + _CLIENT_ID
    with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s) as sock:
        sock.sendall(struct.pack(">i", len(request)) + request)
        (size,) = struct.unpack(">i", _read_exactly(sock, 4))
        if not 10 <= size <= 1_000_000:
            raise ValueError(f"not a Kafka response (size {size})")
        body = _read_exactly(sock, size)
    correlation_id, error_code, count = struct.unpack(">ihi", body[:10])
    if correlation_id != _CORRELATION_ID:
        raise ValueError("not a Kafka response (correlation id)")
    if error_code != 0:
        raise ValueError(f"ApiVersions error code {error_code}")
    return int(count)


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ValueError("the connection closed mid-response")
        chunks.extend(chunk)
    return bytes(chunks)
