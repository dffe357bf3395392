"""A fix for kafka-python 3.0.12 leaking the socket of every refused connection attempt."""

from __future__ import annotations

import socket
from typing import Any


def fix_kafka_python_socket_leak() -> None:
    """Close the socket of a refused connect in kafka-python (idempotent).

    kafka-python 3.0.12's ``KafkaNetSocket.sock_connect`` (kafka/net/inet.py) raises on
    ECONNREFUSED without closing the socket it was given. While a broker is down every
    reconnect attempt leaves one socket behind (a file descriptor until the garbage collector
    gets to it, then a ``ResourceWarning``), so a relay that waits out a long outage would
    run out of descriptors. Every client this package creates applies the fix first; the test
    harness uses it too. Harmless once kafka-python fixes it (closing twice is a no-op).
    """
    from kafka.net.inet import KafkaNetSocket

    original = KafkaNetSocket.sock_connect
    if getattr(original, "_closes_on_failure", False):
        return

    async def sock_connect(
        self: Any, net: Any, sock: socket.socket, sockaddr: Any, timeout_at: Any = None
    ) -> Any:
        try:
            return await original(self, net, sock, sockaddr, timeout_at=timeout_at)
        except BaseException:
            sock.close()
            raise

    sock_connect._closes_on_failure = True  # type: ignore[attr-defined]
    KafkaNetSocket.sock_connect = sock_connect
