"""python-telegram-bot's HTTP port on aiohttp: the SDK builds every Bot API call, the shared
``ProviderSession`` sends it.

``telegram.request.BaseRequest`` is the SDK's documented extension point for the transport; the
SDK still encodes the parameters, reads the answer and raises its own errors (``RetryAfter``,
``Forbidden``, ``BadRequest``...) from the status and body returned here. Why not the SDK's
default ``HTTPXRequest``: that is a second HTTP stack (httpx) with a pool of its own beside the
aiohttp one the Twilio channels and the rest of citybot use; here every provider call shares one
session and one connection pool.

Parameters go form-encoded (multipart when files are uploaded), as the SDK's own transport sends
them. A form is encoded here by ``urllib.parse.urlencode`` and handed to aiohttp as bytes: given
a dict, aiohttp builds a ``FormData`` (and a multipart writer with a fresh uuid4 boundary it then
does not use) for every request, which cost a sixth of a reply's CPU. Transport failures become the SDK's ``TimedOut`` (a timeout) or
``NetworkError`` (refused, reset, not HTTP), which the channel reports as the provider being
down, so the message is retried.

Example::

    request = AiohttpRequest(ProviderSession(), read_timeout=10.0, connect_timeout=5.0)
    bot = Bot(token, request=request)
    await bot.send_message(chat_id=123456789, text="Hello")   # POST .../sendMessage
    await request.shutdown()
"""

from __future__ import annotations

import functools
from urllib.parse import urlencode

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

from channels.http_session import ProviderSession

__all__ = ["AiohttpRequest"]

# The Bot API serves files of up to 20 MB; downloads go through this transport too (the media
# proxy checks its own, lower, limit on what arrives).
MAX_ANSWER_BYTES = 21 * 1024 * 1024


class AiohttpRequest(BaseRequest):
    """A ``BaseRequest`` that sends through the shared provider session.

    ``shutdown`` closes that session (every channel sharing it is shutting down with it); a bot
    used again afterwards gets a fresh one.
    """

    def __init__(
        self,
        http: ProviderSession,
        *,
        read_timeout: float | None = 10.0,
        write_timeout: float | None = 10.0,
        connect_timeout: float | None = 5.0,
        media_write_timeout: float | None = 20.0,
    ) -> None:
        self._http = http
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._media_write_timeout = media_write_timeout
        self._headers = {"User-Agent": self.USER_AGENT}
        self._form_headers = {**self._headers, "Content-Type": "application/x-www-form-urlencoded"}

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        """Nothing to do: the session is made on first use, in the loop that uses it."""

    async def shutdown(self) -> None:
        await self._http.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        # The SDK passes ``BaseRequest.DEFAULT_NONE`` for a timeout the caller did not name
        # (its public marker); typed ``object`` so that no private SDK type is imported.
        read_timeout: object = BaseRequest.DEFAULT_NONE,
        write_timeout: object = BaseRequest.DEFAULT_NONE,
        connect_timeout: object = BaseRequest.DEFAULT_NONE,
        pool_timeout: object = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        data: aiohttp.FormData | bytes | None = None
        headers = self._headers
        uploads = request_data is not None and request_data.contains_files
        if request_data is not None:
            fields = request_data.json_parameters
            if uploads:
                data = aiohttp.FormData(fields)
                for name, (filename, content, mime_type) in request_data.multipart_data.items():
                    data.add_field(name, content, filename=filename, content_type=mime_type)
            elif fields:
                data = urlencode(fields).encode("ascii")
                headers = self._form_headers
        write_default = self._media_write_timeout if uploads else self._write_timeout
        read = _given(read_timeout, self._read_timeout)
        write = _given(write_timeout, write_default)
        # One clock for the whole exchange (the write and the read); the connect has its own.
        total = None if read is None or write is None else read + write
        timeout = _timeout(total, _given(connect_timeout, self._connect_timeout))
        try:
            # A free slot first (its wait is not timed), then the exchange (timed).
            async with (
                self._http.slots,
                self._http.get().request(
                    method, url, data=data, headers=headers, timeout=timeout
                ) as response,
            ):
                if (response.content_length or 0) > MAX_ANSWER_BYTES:
                    raise NetworkError(f"the answer is larger than {MAX_ANSWER_BYTES:,} bytes")
                return response.status, await response.read()
        except TimeoutError as exc:  # aiohttp's timeouts are TimeoutErrors too
            raise TimedOut from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise NetworkError(f"{type(exc).__name__}: {exc}") from exc


def _given(value: object, default: float | None) -> float | None:
    if value is BaseRequest.DEFAULT_NONE:
        return default  # the caller named no timeout: this transport's own applies
    if value is None or isinstance(value, int | float):
        return value
    raise TypeError(f"a timeout must be a number of seconds or None, not {value!r}")


@functools.lru_cache(maxsize=32)
def _timeout(total: float | None, connect: float | None) -> aiohttp.ClientTimeout:
    # The same few pairs come back on every call: each ClientTimeout is made once.
    return aiohttp.ClientTimeout(total=total, sock_connect=connect)
