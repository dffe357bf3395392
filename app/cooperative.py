"""Under gunicorn's gevent worker, C-level clients must yield to the hub too: gevent patches
Python's sockets, not grpc's or psycopg2's, whose calls otherwise block (and serialize) the
whole worker."""

from __future__ import annotations

_done = False


def make_c_clients_cooperative() -> bool:
    """Make grpc and psycopg2 gevent-friendly when gevent has patched the socket module.
    Returns whether it did. Safe to call more than once."""
    global _done  # noqa: PLW0603 - process-wide, like the patching itself
    if _done:
        return True
    try:
        from gevent import monkey
    except ImportError:  # pragma: no cover - gevent is a runtime dependency
        return False
    if not monkey.is_module_patched("socket"):
        return False
    import grpc.experimental.gevent as grpc_gevent
    from psycogreen.gevent import patch_psycopg

    grpc_gevent.init_gevent()
    patch_psycopg()
    _done = True
    return True
