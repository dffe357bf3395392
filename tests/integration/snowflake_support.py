"""fakesnow's server mode (a fake Snowflake over HTTP, in a thread of the test process) for the
Snowflake run log tests.

`fakesnow.server` is captured at import: the function imports its own submodule
`fakesnow.server` when first called, which replaces the package attribute with that module,
so a second `fakesnow.server(...)` in the same process fails with "'module' object is not
callable" (fakesnow 0.12.1).
"""

from __future__ import annotations

import importlib.metadata
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import fakesnow

from tests.servers import STARTED_SERVERS

_start: Callable[..., AbstractContextManager[dict[str, Any]]] = fakesnow.server
if not callable(_start):  # pragma: no cover - only if something imported fakesnow.server first
    raise RuntimeError("import tests.integration.snowflake_support before fakesnow.server runs")

DATABASE = "FEEDREC"
SCHEMA = "PUBLIC"
#: The duckdb under fakesnow 0.12.1 warns on every query fakesnow answers (fakesnow/cursor.py
#: calls the DB-API `to_arrow_table`); the server thread would turn it into HTTP 500s under
#: filterwarnings=error. Matched by message, category and fakesnow's module only.
FAKESNOW_WARNING = (
    "ignore:Arrow output on a DB-API result makes an extra copy:UserWarning:fakesnow.cursor"
)


@contextmanager
def fakesnow_server(port: int) -> Iterator[dict[str, Any]]:
    """A fakesnow server on 127.0.0.1:`port`, stopped on exit; yields `connect` kwargs with
    the database and schema of the run log."""
    with _start(port=port) as kwargs:
        version = importlib.metadata.version("fakesnow")
        STARTED_SERVERS["snowflake"] = f"fakesnow {version} server mode (HTTP, 127.0.0.1:{port})"
        yield {**kwargs, "database": DATABASE, "schema": SCHEMA, "login_timeout": 5}


def unique_table() -> str:
    return f"RETRAIN_RUNS_{uuid.uuid4().hex[:8].upper()}"
