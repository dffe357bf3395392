"""A Kafka-protocol broker reached over TLS: tansu (plaintext only; its 0.6.0 CLI refuses
`--cert` together with `--key`, and `--cert` alone leaves the listener plaintext) behind a
TLS-terminating proxy that advertises itself, so every Kafka client connects through TLS,
optionally with a client certificate the proxy requires (mutual TLS).

The broker speaks real Kafka behind the proxy; what the proxy adds is the TLS handshake the
clients must pass: the certificate chain, the host name, and the client certificate.
"""

from __future__ import annotations

import contextlib
import select
import signal
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from app.embedded_broker import tansu_binary
from tests.integration.tls_support import Pem
from tests.servers import LOOPBACK, STARTED_SERVERS, free_port, wait_for_port


class TlsProxy:
    """Accepts TLS on 127.0.0.1:`port` and relays the plaintext to `upstream` (host, port)."""

    def __init__(self, server: Pem, upstream: tuple[str, int], client_ca: str = "") -> None:
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(server.cert_file, server.key_file)
        if client_ca:
            self._context.load_verify_locations(client_ca)
            self._context.verify_mode = ssl.CERT_REQUIRED
        self._upstream = upstream
        self._listener = socket.create_server((LOOPBACK, 0))
        self.port: int = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.handshake_errors: list[str] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stopping.is_set():
            try:
                raw, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._relay, args=(raw,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _relay(self, raw: socket.socket) -> None:
        raw.settimeout(5.0)
        try:
            client = self._context.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError) as err:  # a client that does not trust us, or no cert
            self.handshake_errors.append(f"{type(err).__name__}: {err}")
            raw.close()
            return
        # one thread per connection reads both sides: an SSL socket is not shared between threads
        with (
            client,
            socket.create_connection(self._upstream, timeout=5.0) as upstream,
            contextlib.suppress(OSError),
        ):
            sides: list[socket.socket] = [client, upstream]
            while not self._stopping.is_set():
                ready: list[socket.socket] = [client] if client.pending() else []
                if not ready:
                    ready, _, _ = select.select(sides, [], [], 0.2)
                for side in ready:
                    data = side.recv(65536)
                    if not data:
                        return
                    (upstream if side is client else client).sendall(data)

    def close(self) -> None:
        self._stopping.set()
        self._listener.close()
        self._accepting.join(2.0)
        for thread in self._threads:
            thread.join(2.0)


@dataclass(frozen=True)
class TlsBroker:
    bootstrap: str  # the proxy: what clients are given
    proxy: TlsProxy


@contextlib.contextmanager
def tls_broker(server: Pem, workdir: Path, client_ca: str = "") -> Iterator[TlsBroker]:
    """tansu (memory storage) advertising a TLS proxy in front of it, both stopped on exit.
    The proxy listens on `localhost`'s 127.0.0.1, the name the test certificates carry."""
    broker_port = free_port()
    proxy = TlsProxy(server, (LOOPBACK, broker_port), client_ca)
    advertised = f"localhost:{proxy.port}"
    log = (workdir / "tansu-tls.log").open("ab")
    process = subprocess.Popen(
        [
            str(tansu_binary()),
            "broker",
            *("--listener-url", f"tcp://{LOOPBACK}:{broker_port}"),
            *("--advertised-listener-url", f"tcp://{advertised}"),
            *("--storage-engine", "memory://tansu/"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(LOOPBACK, broker_port, timeout=10.0, what="tansu")
        STARTED_SERVERS["kafka-tls"] = f"tansu at {LOOPBACK}:{broker_port} behind a TLS proxy"
        yield TlsBroker(advertised, proxy)
    finally:
        proxy.close()
        process.send_signal(signal.SIGINT)  # tansu takes 5 s over SIGTERM, SIGINT is at once
        try:
            process.wait(10.0)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5.0)
        log.close()
