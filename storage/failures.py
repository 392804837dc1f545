"""What a failed database call means: the database could not be used (wait and try again, the
same work will succeed), or it refused this work (its data; trying again changes nothing).

Writers that queue work behind the turns (``storage.sql_batch``, the message log) need the
difference: work is kept and retried while the database is unreachable, but a row the database
refuses must not be retried forever in front of everything queued after it.

Example::

    try:
        await write(rows)
    except Exception as exc:
        if database_unreachable(exc):
            ...   # keep the rows, back off, try again
        else:
            ...   # split the batch: the rows refused alone are set aside
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

__all__ = ["UNREACHABLE", "database_unreachable"]

# Failures of the connection, never of the data: refused or dropped connections, an exhausted
# pool, a timeout, SQLite's "database is locked" (an OperationalError). An ``InterfaceError``
# is not among them: asyncpg reports a value of the wrong type for a column as one (its
# ``DataError`` is an ``InterfaceError``); a dropped connection is told apart by
# ``connection_invalidated`` instead.
UNREACHABLE: tuple[type[BaseException], ...] = (
    OperationalError,
    DisconnectionError,
    PoolTimeoutError,
    OSError,
    TimeoutError,
)


def database_unreachable(exc: BaseException) -> bool:
    """True when ``exc`` says the database could not be used, not that it refused the data."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, UNREACHABLE)
