"""The twilio SDK's own async transport on the process's shared provider session.

``AsyncTwilioHttpClient`` (aiohttp, shipped with the SDK) builds and sends every request: the
form body, Basic auth, the answer. What this subclass changes, and why:

- the session: the SDK's client makes a ``ClientSession`` of its own in its constructor (which
  needs a running loop, and is one more pool per channel); here ``session`` is the shared
  ``ProviderSession``'s, made on first use, so SMS, WhatsApp and Telegram share one pool;
- where requests go: to ``TWILIO_API_BASE_URL`` when that is set (the SDK builds the path, only
  the scheme, host and a path prefix change), so tests and benchmarks talk to a local fake
  Twilio without patching the SDK;
- a timeout on every request: the SDK passes none unless asked, and aiohttp then waits forever;
  it starts once the request has one of the session's slots (``ProviderSession.slots``);
- Basic auth as a header made once per account: the SDK would build an ``aiohttp.BasicAuth``
  for every request, which aiohttp 3.12 and later deprecate (and 4.0 removes);
- the form body encoded by ``urllib.parse.urlencode`` (lists as repeated fields, as Twilio
  expects) and handed to aiohttp as bytes: given a dict, aiohttp builds a ``FormData`` and a
  multipart writer (with a fresh uuid4 boundary it does not use) for every request, a quarter of
  a send's CPU;
- ``Retry-After`` of a 429, which the SDK's exception does not carry, is kept for the sender
  (``retry_after_seen``), per task, so concurrent sends never see each other's value.

Example::

    http = TwilioHttpClient(ProviderSession(), base_url="http://127.0.0.1:8082")
    client = twilio.rest.Client(account_sid, auth_token, http_client=http)
    await client.messages.create_async(to="+27831234567", from_="+27211234567", body="Hi")
"""

from __future__ import annotations

import base64
import contextvars
import functools
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response

from channels.http_session import ProviderSession

__all__ = ["TwilioHttpClient", "retry_after_seen"]

# The SDK logs each request and answer at INFO here; bot.logging keeps "twilio" at WARNING.
log = logging.getLogger("twilio.http_client")

_retry_after: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "twilio_retry_after", default=None
)


def retry_after_seen() -> float | None:
    """The Retry-After (seconds) of the last 429 this task was answered, if any."""
    return _retry_after.get()


class TwilioHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]  # twilio ships no type hints
    """``AsyncTwilioHttpClient`` on a shared session, sending to ``base_url`` when set."""

    def __init__(
        self, http: ProviderSession, base_url: str | None = None, *, timeout: float = 10.0
    ) -> None:
        self._http = http
        # pool_connections=False: the SDK makes no session of its own (``session`` below).
        super().__init__(pool_connections=False, timeout=timeout, logger=log)
        self._base = urlsplit(base_url.rstrip("/")) if base_url else None

    @property
    def session(self) -> aiohttp.ClientSession:
        return self._http.get()

    @session.setter
    def session(self, value: object) -> None:
        # The SDK's constructor sets its own (None, with pool_connections=False): ours stands.
        if value is not None:
            raise ValueError("TwilioHttpClient sends through its ProviderSession only")

    async def request(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        if self._base is not None:
            url = _moved(self._base.scheme, self._base.netloc, self._base.path, url)
        merged = _with_authorization(headers, auth)
        body = None
        if data:
            body = urlencode(data, doseq=True).encode("ascii")
            merged.setdefault("Content-Type", "application/x-www-form-urlencoded")
        # A free slot first (its wait is not timed), then the exchange (timed); the SDK reads
        # the whole answer before it returns.
        async with self._http.slots:
            response: Response = await super().request(
                method,
                url,
                params=params,
                data=body,
                headers=merged,
                auth=None,
                timeout=timeout or self.timeout,
                allow_redirects=allow_redirects,
            )
        if response.status_code == 429:
            _retry_after.set(_seconds(response.headers.get("Retry-After")))
        return response

    async def close(self) -> None:
        await self._http.close()


@functools.lru_cache(maxsize=64)
def _moved(scheme: str, netloc: str, prefix: str, url: str) -> str:
    # The few URLs a channel calls repeat for every message: each is moved once.
    parts = urlsplit(url)
    return urlunsplit((scheme, netloc, prefix + parts.path, parts.query, ""))


def _with_authorization(
    headers: Mapping[str, str] | None, auth: tuple[str, str] | None
) -> dict[str, str]:
    merged = dict(headers or {})
    if auth is not None:
        merged["Authorization"] = _basic_authorization(*auth)
    return merged


@functools.lru_cache(maxsize=8)
def _basic_authorization(username: str, password: str) -> str:
    # RFC 7617; one account (or a few) signs every request, so each is encoded once.
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def _seconds(raw: str | None) -> float | None:
    try:
        return max(0.0, float(raw)) if raw else None
    except ValueError:
        return None
