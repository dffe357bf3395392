"""Implements `ports.health.HealthCheck` for the Kafka brokers: does one of them answer a
Kafka `ApiVersions` request?

Non-critical: events wait in the outbox while the brokers are down, so the API keeps
answering. The probe is one plain socket round trip (no client threads), which also
cooperates with gevent once the socket module is patched. Over SSL and SASL_SSL the socket is
wrapped in the clients' TLS context (the broker's certificate is verified); ApiVersions needs
no SASL login (Kafka answers it before authentication).
"""

from __future__ import annotations

import socket
import ssl
import struct
import time

from adapters.kafka.admin import COMPONENT
from adapters.kafka.security import KafkaSecurity
from ports.health import ComponentHealth

_API_VERSIONS = 18
_CORRELATION_ID = 0x0FEED
_CLIENT_ID = b"feedrec-health"


class KafkaHealth:
    name = COMPONENT
    critical = False

    def __init__(
        self, bootstrap_servers: str, timeout_s: float = 0.5, security: KafkaSecurity | None = None
    ) -> None:
        self._servers = [s.strip() for s in bootstrap_servers.split(",") if s.strip()]
        self._timeout_s = timeout_s
        self._tls = security.ssl_context() if security is not None and security.uses_tls else None

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
                count = _api_versions(server, remaining, self._tls)
            except (OSError, ValueError) as err:
                problems.append(f"{server}: {type(err).__name__}: {err}")
                continue
            return ComponentHealth(True, f"{server} answers ({count} APIs)")
        return ComponentHealth(False, "; ".join(problems))


def _api_versions(server: str, timeout_s: float, tls: ssl.SSLContext | None = None) -> int:
    """Send ApiVersions v0 to `server` ("host:port"); the number of APIs it supports."""
    host, _, port = server.rpartition(":")
    host = host.strip("[]")
    request = struct.pack(">hhih", _API_VERSIONS, 0, _CORRELATION_ID, len(_CLIENT_ID)) + _CLIENT_ID
    raw = socket.create_connection((host, int(port)), timeout=timeout_s)
    # wrap_socket takes the descriptor over from `raw`: close whichever socket holds it
    with tls.wrap_socket(raw, server_hostname=host) if tls is not None else raw as sock:
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
