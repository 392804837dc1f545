"""The ``CityBackend`` port and its one implementation, the GeoReport v2 HTTP client.

The filer, the status poller and ``citybot forms import-open311`` talk to a city only through
``CityBackend``. ``Open311Backend`` speaks GeoReport v2 over HTTP (JSON or XML) to the city's
endpoint, or to citybot's own built-in server (``city.open311.server``) when the city has none, so
the same code path runs in the demo, in tests and in production.

Example::

    backend = Open311Backend("https://city.example/open311/v2", api_key="k", jurisdiction_id="city")
    result = await backend.submit(ServiceRequestDraft(service_code="ROADS-POTHOLE", lat=-34.0, long=18.6,
                                                      description="Pothole", reference="CT-7K2M9Q"))
    # SubmitResult(service_request_id="1042", token=None, ...)
    [request] = await backend.status([result.service_request_id])
    await backend.close()
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import aiohttp

from city.open311.errors import (
    ApiKeyRefused,
    BackendRejected,
    BackendUnavailable,
    ErrorDetail,
    RequestNotFound,
)
from city.open311.formats import (
    Format,
    decode,
    parse_errors,
    parse_requests,
    parse_service_definition,
    parse_services,
    parse_submit_results,
    parse_token_results,
    parse_updates,
)
from city.open311.types import (
    Service,
    ServiceDefinition,
    ServiceRequest,
    ServiceRequestDraft,
    ServiceRequestUpdate,
    SubmitResult,
)

__all__ = [
    "DESCRIPTION_LIMIT",
    "CityBackend",
    "Open311Backend",
    "compose_description",
    "reference_marker",
]

# GeoReport v2 caps the description of a request at 4,000 characters.
DESCRIPTION_LIMIT = 4000


def reference_marker(reference: str) -> str:
    """The text that carries citybot's reference inside a request's description."""
    return f"[ref {reference}]"


def compose_description(text: str, reference: str | None, limit: int = DESCRIPTION_LIMIT) -> str:
    """The description as sent: cut cleanly at a word to fit ``limit``, reference marker last.

    The marker is never cut, because the filer finds an orphaned report by it.
    """
    suffix = f"\n\n{reference_marker(reference)}" if reference else ""
    room = limit - len(suffix)
    text = text.strip()
    if len(text) > room:
        cut = text[: room - 1]
        space = cut.rfind(" ")
        # Break at a word when one is near; a single enormous "word" is cut where it must be.
        if space > room // 2:
            cut = cut[:space]
        text = cut.rstrip() + "…"
    return (text + suffix).strip()


class CityBackend(ABC):
    """Where reports are filed and their status is read: a city's GeoReport v2 service.

    Example::

        backend: CityBackend = Open311Backend(endpoint, api_key=None, jurisdiction_id=None)
        for service in await backend.services():
            print(service.service_code, service.service_name)
    """

    @abstractmethod
    async def services(self) -> list[Service]: ...

    @abstractmethod
    async def service_definition(self, service_code: str) -> ServiceDefinition: ...

    @abstractmethod
    async def submit(self, request: ServiceRequestDraft) -> SubmitResult:
        """File one report. Raises ``BackendRejected`` (permanent) or ``BackendUnavailable``."""

    @abstractmethod
    async def request_id_from_token(self, token: str) -> str | None:
        """The id for a batch service's token, or ``None`` while the city has not made one."""

    @abstractmethod
    async def status(self, ids: Sequence[str]) -> list[ServiceRequest]:
        """The current state of these requests (unknown ids are simply absent)."""

    @abstractmethod
    async def request(self, service_request_id: str) -> ServiceRequest | None: ...

    @abstractmethod
    async def search(
        self,
        *,
        service_code: str | None = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        status: str | None = None,
    ) -> list[ServiceRequest]:
        """GET requests with the spec's filters (the server caps the window and the count)."""

    @abstractmethod
    async def updates(
        self, start_date: datetime, end_date: datetime | None = None
    ) -> list[ServiceRequestUpdate]:
        """The servicerequestupdates extension; ``RequestNotFound`` where it is not offered."""

    async def find_by_reference(
        self, reference: str, service_code: str, since: datetime
    ) -> ServiceRequest | None:
        """A request filed earlier with this reference, found by its marker in the description."""
        marker = reference_marker(reference)
        for found in await self.search(service_code=service_code, start_date=since):
            if found.description and marker in found.description:
                return found
        return None

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class Open311Backend(CityBackend):
    """GeoReport v2 over HTTP with aiohttp.

    ``endpoint`` is the base URL without a trailing slash, e.g. ``https://city.example/open311/v2``.
    ``max_ids_per_call`` batches ``status``; ``concurrency`` bounds parallel status calls.
    """

    def __init__(
        self,
        endpoint: str,
        api_key: str | None = None,
        jurisdiction_id: str | None = None,
        format: Format = "json",
        session: aiohttp.ClientSession | None = None,
        *,
        timeout: float = 15.0,
        max_ids_per_call: int = 50,
        concurrency: int = 4,
    ) -> None:
        if format not in ("json", "xml"):
            raise ValueError(f"format must be json or xml, not {format!r}")
        self.endpoint = endpoint.rstrip("/")
        self.api_key = api_key
        self.jurisdiction_id = jurisdiction_id
        self.format: Format = format
        self.max_ids_per_call = max(1, max_ids_per_call)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session = session
        self._owns_session = session is None
        self._concurrency = asyncio.Semaphore(max(1, concurrency))
        # Counted for the benchmark and metrics: how many HTTP calls this client made.
        self.calls = 0

    # -- HTTP ------------------------------------------------------------------------------

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
            self._owns_session = True
        return self._session

    def _params(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        params = dict(extra or {})
        if self.jurisdiction_id:
            params["jurisdiction_id"] = self.jurisdiction_id
        # Reads carry the key too: a server may show descriptions only to its key holders (the
        # built-in one does), and the filer finds an orphaned report by its description.
        if self.api_key:
            params["api_key"] = self.api_key
        return params

    async def _call(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None = None,
        data: list[tuple[str, str]] | None = None,
    ) -> bytes:
        url = f"{self.endpoint}/{path}.{self.format}"
        self.calls += 1
        try:
            async with self._http().request(
                method, url, params=params, data=data, timeout=self._timeout
            ) as response:
                body = await response.read()
                status = response.status
        except TimeoutError as exc:
            raise BackendUnavailable(f"the city's server did not answer in time ({url})") from exc
        except aiohttp.ClientError as exc:
            raise BackendUnavailable(f"the city's server could not be reached: {exc}") from exc
        if 200 <= status < 300:
            return body
        errors = parse_errors(body, self.format)
        if status == 403:
            raise ApiKeyRefused(status, errors)
        if status == 404:
            raise RequestNotFound(status, errors)
        if status >= 500 or status in (408, 429):
            text = "; ".join(e.description for e in errors if e.description)
            raise BackendUnavailable(f"the city's server failed (HTTP {status}): {text}", status)
        raise BackendRejected(status, errors)

    # -- the port ----------------------------------------------------------------------------

    async def services(self) -> list[Service]:
        return parse_services(await self._call("GET", "services", self._params()), self.format)

    async def service_definition(self, service_code: str) -> ServiceDefinition:
        body = await self._call("GET", f"services/{service_code}", self._params())
        return parse_service_definition(body, self.format)

    def _form_fields(self, request: ServiceRequestDraft) -> list[tuple[str, str]]:
        fields: list[tuple[str, str]] = [("service_code", request.service_code)]
        if self.jurisdiction_id:
            fields.append(("jurisdiction_id", self.jurisdiction_id))
        if self.api_key:
            fields.append(("api_key", self.api_key))
        if request.lat is not None and request.long is not None:
            fields += [("lat", repr(request.lat)), ("long", repr(request.long))]
        optional = {
            "address_string": request.address_string,
            "address_id": request.address_id,
            "email": request.email,
            "device_id": request.device_id,
            "account_id": request.account_id,
            "first_name": request.first_name,
            "last_name": request.last_name,
            "phone": request.phone,
            "media_url": request.media_url,
        }
        fields += [(name, value) for name, value in optional.items() if value]
        description = compose_description(request.description, request.reference)
        if description:
            fields.append(("description", description))
        for code, value in request.attributes.items():
            if isinstance(value, str):
                fields.append((f"attribute[{code}]", value))
            else:
                fields += [(f"attribute[{code}][]", item) for item in value]
        return fields

    async def submit(self, request: ServiceRequestDraft) -> SubmitResult:
        body = await self._call("POST", "requests", data=self._form_fields(request))
        _raise_if_error_array(body, self.format)
        results = parse_submit_results(body, self.format)
        # Neither id nor token (or an empty list) is legal enough: the filer polls later.
        return results[0] if results else SubmitResult()

    async def _get_if_found(self, path: str) -> bytes | None:
        """GET one resource; None where the city answers 404 (not there, or not yet)."""
        try:
            return await self._call("GET", path, self._params())
        except RequestNotFound:
            return None

    async def request_id_from_token(self, token: str) -> str | None:
        body = await self._get_if_found(f"tokens/{token}")
        if body is None:
            return None
        for result in parse_token_results(body, self.format):
            if result.service_request_id:
                return result.service_request_id
        return None

    async def _status_batch(self, ids: Sequence[str]) -> list[ServiceRequest]:
        async with self._concurrency:
            params = self._params({"service_request_id": ",".join(ids)})
            return parse_requests(await self._call("GET", "requests", params), self.format)

    async def status(self, ids: Sequence[str]) -> list[ServiceRequest]:
        unique = list(dict.fromkeys(ids))
        batches = [
            unique[i : i + self.max_ids_per_call]
            for i in range(0, len(unique), self.max_ids_per_call)
        ]
        found = await asyncio.gather(*(self._status_batch(batch) for batch in batches))
        return [request for batch in found for request in batch]

    async def request(self, service_request_id: str) -> ServiceRequest | None:
        body = await self._get_if_found(f"requests/{service_request_id}")
        if body is None:
            return None
        found = parse_requests(body, self.format)
        return found[0] if found else None

    async def search(
        self,
        *,
        service_code: str | None = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        status: str | None = None,
    ) -> list[ServiceRequest]:
        params = self._params(
            _present(
                service_code=service_code,
                start_date=_iso(start_date),
                end_date=_iso(end_date),
                status=status,
            )
        )
        return parse_requests(await self._call("GET", "requests", params), self.format)

    async def updates(
        self, start_date: datetime, end_date: datetime | None = None
    ) -> list[ServiceRequestUpdate]:
        params = self._params(
            _present(
                start_date=_iso(start_date),
                end_date=_iso(end_date),
            )
        )
        return parse_updates(await self._call("GET", "servicerequestupdates", params), self.format)

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None


def _present(**values: str | None) -> dict[str, str]:
    return {name: value for name, value in values.items() if value}


def _iso(moment: datetime | None) -> str | None:
    # GeoReport v2 dates are W3C datetimes; whole seconds are all any server expects.
    return moment.isoformat(timespec="seconds") if moment else None


def _raise_if_error_array(body: bytes, fmt: Format) -> None:
    """Some servers answer a refused POST with HTTP 200 and an error array."""
    data: Any = decode(body, fmt)
    records: Iterable[Any] = data if isinstance(data, list) else [data]
    records = [r for r in records if isinstance(r, dict)]
    if records and all(
        "description" in r and "code" in r and "service_request_id" not in r and "token" not in r
        for r in records
    ):
        raise BackendRejected(
            200,
            [
                ErrorDetail(
                    code=str(r.get("code") or ""), description=str(r.get("description") or "")
                )
                for r in records
            ],
        )
