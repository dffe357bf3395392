"""Fixes for kafka-python 3.0.12 leaking sockets while a broker is down."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

_T = TypeVar("_T")


def fix_kafka_python_socket_leak() -> None:
    """Close the socket of a refused connect in kafka-python (idempotent).

    kafka-python 3.0.12's ``KafkaNetSocket.sock_connect`` (kafka/net/inet.py) raises on
    ECONNREFUSED without closing the socket it was given. While a broker is down every
    reconnect attempt leaves one socket behind (a file descriptor until the garbage collector
    gets to it, then a ``ResourceWarning``), so a relay that waits out a long outage would
    run out of descriptors. Every client this package creates applies the fix first; the test
    harness uses it too. Harmless once kafka-python fixes it (closing twice is a no-op).
    The TLS handshake leaks the same way (`KafkaSSLTransport.handshake` raising, e.g. on a
    certificate it does not trust): that socket is closed too.
    """
    from kafka.net.inet import KafkaNetSocket

    _close_failed_tls_handshakes()

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


def construct_closing_on_failure(constructor: Callable[..., _T], config: Mapping[str, Any]) -> _T:
    """`constructor(**config)` for a kafka-python producer or admin client, closing its network
    client when the constructor raises.

    In 3.0.12 both constructors create their network client (a selector and a wake-up socket
    pair) and then bootstrap; when that fails (no broker within `bootstrap_timeout_ms`) they
    raise without closing it, so every failed attempt during an outage leaks two sockets. The
    client is created here through the `kafka_client` factory option, so it can be closed.
    """
    from kafka.net.compat import KafkaNetClient

    created: list[Any] = []

    def make_client(**kwargs: Any) -> Any:
        client = KafkaNetClient(**kwargs)
        created.append(client)
        return client

    try:
        return constructor(**config, kafka_client=make_client)
    except BaseException:
        for client in created:
            with contextlib.suppress(Exception):
                client.close()
        raise


def _close_failed_tls_handshakes() -> None:
    from kafka.net.transport import KafkaSSLTransport

    original = KafkaSSLTransport.handshake
    if getattr(original, "_closes_on_failure", False):
        return

    async def handshake(self: Any) -> Any:
        try:
            return await original(self)
        except BaseException:
            self._close()  # at once: close() would wait to flush a connection never made
            raise

    handshake._closes_on_failure = True  # type: ignore[attr-defined]
    KafkaSSLTransport.handshake = handshake
