"""What can go wrong talking to a city's Open311 back end, drawn once as a tree.

::

    Open311Error                  anything from this package
    ├── BackendRejected           the city read the request and said no (its error array kept)
    │   ├── ApiKeyRefused         HTTP 403: the api_key was refused; retrying will not help
    │   └── RequestNotFound       HTTP 404: no such service, request or token
    └── BackendUnavailable        worth retrying later: timeout, connection refused, HTTP 5xx
        └── InvalidResponse       the answer could not be read (broken JSON/XML, wrong shape)

The filer retries ``BackendUnavailable`` with backoff and parks ``BackendRejected`` for a person.

Example::

    try:
        result = await backend.submit(draft)
    except BackendRejected as exc:
        log.warning("city refused the report: %s", exc.descriptions)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "ApiKeyRefused",
    "BackendRejected",
    "BackendUnavailable",
    "ErrorDetail",
    "InvalidResponse",
    "Open311Error",
    "RequestNotFound",
]


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    """One entry of the spec's error array: ``[{"code": 403, "description": "..."}]``."""

    code: str
    description: str


class Open311Error(Exception):
    """Base of every error raised by the Open311 client."""


class BackendRejected(Open311Error):
    """The back end refused the request; ``errors`` holds the city's own descriptions."""

    def __init__(self, status: int, errors: Sequence[ErrorDetail], message: str | None = None):
        self.status = status
        self.errors = tuple(errors)
        text = "; ".join(e.description for e in self.errors if e.description)
        super().__init__(
            message or f"the city refused the request (HTTP {status}): {text or 'no reason given'}"
        )

    @property
    def descriptions(self) -> list[str]:
        return [e.description for e in self.errors]


class ApiKeyRefused(BackendRejected):
    def __init__(self, status: int, errors: Sequence[ErrorDetail]):
        text = "; ".join(e.description for e in errors if e.description)
        super().__init__(
            status,
            errors,
            "the API key was refused (HTTP 403): check OPEN311_API_KEY"
            + (f" ({text})" if text else ""),
        )


class RequestNotFound(BackendRejected):
    pass


class BackendUnavailable(Open311Error):
    """Temporary: the same call may succeed later. ``status`` is the HTTP status, if any."""

    def __init__(self, message: str, status: int | None = None):
        self.status = status
        super().__init__(message)


class InvalidResponse(BackendUnavailable):
    pass
