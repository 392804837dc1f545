"""python-telegram-bot's HTTP port on aiohttp: the SDK builds every Bot API call, aiohttp moves it.

``telegram.request.BaseRequest`` is the SDK's documented extension point for the transport; the
SDK still encodes the parameters, reads the answer and raises its own errors (``RetryAfter``,
``Forbidden``, ``BadRequest``...) from the status and body returned here. Why not the default
``HTTPXRequest``: under a flood of replies httpx and httpcore cost several times what aiohttp
costs per request (httpcore rescans every pooled connection, asking each socket whether it is
readable, whenever a request starts or ends), and that CPU is taken from the turns being
answered. The Twilio channels already send through aiohttp (``twilio_common.BaseUrlHttpClient``).

Transport failures become the SDK's ``TimedOut`` (a timeout) or ``NetworkError`` (refused,
reset), which the channel reports as the provider being down, so the message is retried.

Example::

    request = AiohttpRequest(connection_pool_size=16, read_timeout=10.0, connect_timeout=5.0)
    bot = Bot(token, request=request)
    await bot.send_message(chat_id=123456789, text="Hello")   # POST .../sendMessage via aiohttp
    await request.shutdown()
"""

from __future__ import annotations

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

from channels.form_encoding import form_urlencode

__all__ = ["AiohttpRequest"]


class AiohttpRequest(BaseRequest):
    """A ``BaseRequest`` that sends with one aiohttp session (made on first use, in the loop)."""

    def __init__(
        self,
        *,
        connection_pool_size: int = 16,
        read_timeout: float | None = 10.0,
        write_timeout: float | None = 10.0,
        connect_timeout: float | None = 5.0,
        media_write_timeout: float | None = 20.0,
    ) -> None:
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        self._ensure_session()

    async def shutdown(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                headers={"User-Agent": self.USER_AGENT},
            )
        return self._session

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        files = request_data.multipart_data if request_data and request_data.contains_files else {}
        fields = request_data.json_parameters if request_data else {}
        # Form-encoded like the SDK's own transport (encoded here: aiohttp's FormData costs
        # several times more per message); a multipart body when files are uploaded.
        body: aiohttp.FormData | bytes | None = form_urlencode(fields.items()) if fields else None
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if fields else None
        if files:
            headers = None
            form = aiohttp.FormData()
            for name, value in fields.items():
                form.add_field(name, value)
            for name, (filename, content, mime_type) in files.items():
                form.add_field(name, content, filename=filename, content_type=mime_type)
            body = form
        write_default = self._media_write_timeout if files else self._write_timeout
        read = _given(read_timeout, self._read_timeout)
        write = _given(write_timeout, write_default)
        # aiohttp has no separate write timeout: a request may take both, plus the connect.
        total = None if read is None or write is None else read + write
        timeout = aiohttp.ClientTimeout(
            total=total,
            sock_connect=_given(connect_timeout, self._connect_timeout),
            sock_read=read,
        )
        try:
            async with self._ensure_session().request(
                method, url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            ) as response:
                return response.status, await response.read()
        except TimeoutError as exc:  # asyncio.TimeoutError too, from Python 3.11 on
            raise TimedOut from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {exc}") from exc


def _given(value: ODVInput[float], default: float | None) -> float | None:
    # The SDK passes DEFAULT_NONE when the caller named no timeout: this transport's own applies.
    if isinstance(value, DefaultValue):
        return default
    return value
