"""python-telegram-bot's HTTP port on ``channels.http_client``: the SDK builds every Bot API
call, the keep-alive client moves it.

``telegram.request.BaseRequest`` is the SDK's documented extension point for the transport; the
SDK still encodes the parameters, reads the answer and raises its own errors (``RetryAfter``,
``Forbidden``, ``BadRequest``...) from the status and body returned here. Why not the default
``HTTPXRequest``, nor aiohttp: under a flood of replies both cost several times more CPU per
request than the request itself (httpcore rescans every pooled connection whenever a request
starts or ends; aiohttp's client is general), and that CPU is taken from the turns being
answered. The Twilio channels send through the same client (``twilio_common``).

Transport failures become the SDK's ``TimedOut`` (a timeout) or ``NetworkError`` (refused,
reset, not HTTP), which the channel reports as the provider being down, so the message is
retried.

Example::

    request = HttpClientRequest(connection_pool_size=16, read_timeout=10.0, connect_timeout=5.0)
    bot = Bot(token, request=request)
    await bot.send_message(chat_id=123456789, text="Hello")   # POST .../sendMessage
    await request.shutdown()
"""

from __future__ import annotations

import secrets

from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput, UploadFileDict
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

from channels.form_encoding import form_urlencode
from channels.http_client import HttpClient

__all__ = ["HttpClientRequest"]

# The Bot API serves files of up to 20 MB; downloads go through this transport too (the media
# proxy checks its own, lower, limit on what arrives).
MAX_ANSWER_BYTES = 21 * 1024 * 1024


class HttpClientRequest(BaseRequest):
    """A ``BaseRequest`` that sends with one keep-alive ``HttpClient`` (made again after a
    shutdown, if the bot is used again)."""

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
        self._client: HttpClient | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        self._ensure_client()

    async def shutdown(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    def _ensure_client(self) -> HttpClient:
        if self._client is None:
            self._client = HttpClient(
                limit=self._pool_size,
                connect_timeout=self._connect_timeout,
                user_agent=self.USER_AGENT,
                max_body=MAX_ANSWER_BYTES,
            )
        return self._client

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
        # Form-encoded like the SDK's own transport; multipart when files are uploaded.
        body: bytes | None = None
        headers: dict[str, str] = {}
        if files:
            boundary = secrets.token_hex(16)
            body = _multipart(boundary, fields, files)
            headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
        elif fields:
            body = form_urlencode(fields.items())
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        write_default = self._media_write_timeout if files else self._write_timeout
        read = _given(read_timeout, self._read_timeout)
        write = _given(write_timeout, write_default)
        # One clock for the whole exchange: the write and the read, after the connect.
        total = None if read is None or write is None else read + write
        try:
            answer = await self._ensure_client().request(
                method, url, headers=headers, body=body, timeout=total
            )
        except TimeoutError as exc:  # asyncio.TimeoutError too, from Python 3.11 on
            raise TimedOut from exc
        except OSError as exc:  # HttpError among them
            raise NetworkError(f"{type(exc).__name__}: {exc}") from exc
        return answer.status, answer.body


def _multipart(boundary: str, fields: dict[str, str], files: UploadFileDict) -> bytes:
    """A multipart/form-data body (RFC 7578): the text fields, then the files."""
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{_quoted(name)}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
        )
    for name, (filename, file, mime_type) in files.items():
        # The SDK hands over bytes, or (since 21.5) an open file.
        content = file if isinstance(file, bytes) else file.read()
        parts.append(
            (
                f"--{boundary}\r\nContent-Disposition: form-data; "
                f'name="{_quoted(name)}"; filename="{_quoted(filename)}"\r\n'
                f"Content-Type: {mime_type}\r\n\r\n"
            ).encode()
            + content
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts)


def _quoted(text: str) -> str:
    # Quotes and line breaks would end the parameter early (RFC 7578, section 2).
    return text.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def _given(value: ODVInput[float], default: float | None) -> float | None:
    # The SDK passes DEFAULT_NONE when the caller named no timeout: this transport's own applies.
    if isinstance(value, DefaultValue):
        return default
    return value
