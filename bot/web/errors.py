"""How the web layer says no: JSON errors with a reason, and which failures mean "try again".

Example::

    return json_error(400, "the body is not valid JSON")
    try:
        ...
    except unavailable_errors():
        return json_error(503, "the service is briefly unavailable; send the message again")
"""

from __future__ import annotations

from functools import cache

import redis.exceptions
import sqlalchemy.exc
from aiohttp import web

__all__ = ["json_error", "unavailable_errors"]


def json_error(status: int, reason: str, **headers: str) -> web.Response:
    extra = {"Retry-After": "1"} if status == 503 else {}
    return web.json_response({"error": reason}, status=status, headers={**extra, **headers})


@cache
def unavailable_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean a store is briefly unreachable, not that the request is wrong.

    The turn that raised one did not commit, so the message is not marked processed and the
    client may send it again with the same id.
    """
    return (
        sqlalchemy.exc.OperationalError,
        sqlalchemy.exc.InterfaceError,
        sqlalchemy.exc.TimeoutError,
        sqlalchemy.exc.DisconnectionError,
        redis.exceptions.ConnectionError,
        redis.exceptions.TimeoutError,
        ConnectionError,
        TimeoutError,
    )
