"""Turns SQLAlchemy and driver exceptions into the errors `ports.repositories` promises.

Nothing from SQLAlchemy or a DBAPI driver crosses the port: a broken uniqueness rule is a
`Conflict`, anything else the database does wrong is `DependencyUnavailable("database")`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import (
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
    StatementError,
)

from domain.errors import Conflict, DependencyUnavailable

COMPONENT = "database"


def describe(err: BaseException) -> str:
    """One line for operators: the driver's own message without the SQL and its parameters."""
    cause = err.orig if isinstance(err, StatementError) and err.orig is not None else err
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0] if lines else 'no message'}"


def is_connection_failure(err: SQLAlchemyError) -> bool:
    if isinstance(err, DBAPIError) and err.connection_invalidated:
        return True
    return isinstance(err, OperationalError | InterfaceError)


@contextmanager
def database_errors() -> Iterator[None]:
    """Translate what the block raises; usable as a decorator too (`@database_errors()`)."""
    try:
        yield
    except IntegrityError as err:
        raise Conflict(f"already stored ({describe(err)})") from err
    except StatementError as err:
        # A value our own column types refused (e.g. a naive datetime) is the caller's bug,
        # not the database's: raise it as what it is.
        if not isinstance(err, DBAPIError) and isinstance(err.orig, ValueError | TypeError):
            raise err.orig from err
        raise _unavailable(err) from err
    except SQLAlchemyError as err:
        raise _unavailable(err) from err


def _unavailable(err: SQLAlchemyError) -> DependencyUnavailable:
    what = "cannot be reached" if is_connection_failure(err) else "failed"
    return DependencyUnavailable(COMPONENT, f"the database {what} ({type(err).__name__})")
