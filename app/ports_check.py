"""`feedrec up`'s first step: every port its processes will listen on must be free.

Without it a taken port surfaces as one process failing to bind (the embedded broker panics
with a Rust backtrace), honcho tears every process down and the command still exits 0.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from app.settings import Settings


@dataclass(frozen=True)
class TakenPort:
    """A listening address `feedrec up` needs that cannot be bound, and why."""

    setting: str
    address: str
    reason: str

    def describe(self) -> str:
        return f"{self.setting}={self.address} cannot be bound: {self.reason}"


def planned_binds(settings: Settings) -> dict[str, str]:
    """Setting name -> host:port for every process `feedrec up` starts."""
    binds = {"WEB_BIND": settings.web_bind, "LIGHTFM_BIND": settings.lightfm_bind}
    if not settings.kafka_bootstrap_servers:  # only then does `up` run its own broker
        binds["EMBEDDED_KAFKA_BIND"] = settings.embedded_kafka_bind
    return binds


def taken_ports(settings: Settings) -> list[TakenPort]:
    """The planned addresses that cannot be bound now (empty when all are free)."""
    return [
        TakenPort(setting, address, reason)
        for setting, address in planned_binds(settings).items()
        if (reason := _bind_problem(address)) is not None
    ]


def _bind_problem(address: str) -> str | None:
    host, _, port_text = address.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"  # noqa: S104 - only probed, closed at once
    try:
        port = int(port_text)
    except ValueError:
        return f"{port_text!r} is not a port number"
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        return f"unknown host {host!r} ({err.strerror})"
    family, kind, proto, _, sockaddr = infos[0]
    # SO_REUSEADDR as the servers themselves set it: a port in TIME_WAIT is free to them.
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(sockaddr)
            probe.listen(1)
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                return "the port is in use by another process"
            return err.strerror or str(err)
    return None
