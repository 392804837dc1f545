"""Fetching a resident's photo from the provider that holds it, with that provider's credentials.

Photos are stored as references (``channels.media``): ``tg-file://<file_id>`` for Telegram, the
Twilio ``MediaUrl`` for SMS and WhatsApp. Neither is any use to the city's back end (a Telegram
file URL contains the bot token; Twilio media needs the account's Basic auth), so the media proxy
(``bot.web.media``) fetches the bytes here when the back end asks for them.

- Telegram: ``getFile`` and then the file download, both through the SDK
  (``TelegramChannel.download_file``).
- Twilio: a GET of the MediaUrl with Basic auth, answered with a redirect to a pre-signed
  storage URL, which is followed WITHOUT the credentials. Only URLs under this account on the
  Twilio API host are fetched, so a stored reference can never send the credentials elsewhere.
- Every fetch is capped at ``MAX_PHOTO_BYTES`` (the engine's photo limit) and its content type
  is read from the bytes themselves (JPEG, PNG or WebP), not from what the provider or the
  resident claimed.

Errors, drawn once::

    MediaError
    ├── MediaNotFound      the provider no longer has it, or the reference is not one we fetch
    ├── MediaRefused       it is there but not served: not JPEG/PNG/WebP, or too large
    └── MediaUnavailable   the provider is down or rate limited: try again later

Example::

    fetchers = MediaFetchers(telegram=channel.download_file, twilio=TwilioMediaFetcher(account))
    photo = await fetchers.fetch("tg-file://AgACAgQAAx...")   # FetchedMedia("image/jpeg", b"...")
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import aiohttp

from channels.media import telegram_file_id
from forms_runtime.answers import MAX_PHOTO_BYTES

__all__ = [
    "FetchedMedia",
    "MediaError",
    "MediaFetchers",
    "MediaNotFound",
    "MediaRefused",
    "MediaUnavailable",
    "TwilioMediaFetcher",
    "sniff_image_type",
]

TWILIO_API_HOST = "api.twilio.com"
_REDIRECTS = (301, 302, 303, 307, 308)
_MAX_REDIRECTS = 3

# (file_size_limit) -> bytes; raises the errors below. ``TelegramChannel.download_file`` is one.
DownloadTelegramFile = Callable[[str, int], Awaitable[bytes]]


class MediaError(Exception):
    """A photo could not be served; ``str(exc)`` is a reason safe to show (no URLs, no tokens)."""


class MediaNotFound(MediaError):
    pass


class MediaRefused(MediaError):
    def __init__(self, reason: str, *, too_large: bool = False) -> None:
        super().__init__(reason)
        self.too_large = too_large


class MediaUnavailable(MediaError):
    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class FetchedMedia:
    content_type: str
    body: bytes


def sniff_image_type(head: bytes) -> str | None:
    """The image type the bytes really are (JPEG, PNG or WebP), else None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def checked(body: bytes, max_bytes: int = MAX_PHOTO_BYTES) -> FetchedMedia:
    """The bytes as ``FetchedMedia`` if they are an accepted image within the size limit."""
    if len(body) > max_bytes:
        raise MediaRefused("the photo is larger than the limit", too_large=True)
    content_type = sniff_image_type(body[:16])
    if content_type is None:
        raise MediaRefused("the file is not a JPEG, PNG or WebP image")
    return FetchedMedia(content_type, body)


class TwilioMediaFetcher:
    """GET a Twilio MediaUrl with the account's Basic auth, following the storage redirect.

    Example::

        fetcher = TwilioMediaFetcher("AC...", "token", api_base_url="http://127.0.0.1:8082")
        photo = await fetcher.fetch("https://api.twilio.com/2010-04-01/Accounts/AC.../Media/ME...")
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        api_base_url: str | None = None,
        timeout: float = 20.0,
        max_bytes: int = MAX_PHOTO_BYTES,
    ) -> None:
        self.account_sid = account_sid
        self._auth = "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self._base = urlsplit(api_base_url.rstrip("/")) if api_base_url else None
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.max_bytes = max_bytes
        self._session: aiohttp.ClientSession | None = None

    def owns(self, url: str) -> bool:
        """True for a media URL of this account on the Twilio API host."""
        parts = urlsplit(url)
        prefix = f"/2010-04-01/Accounts/{self.account_sid}/"
        return (
            parts.scheme == "https"
            and parts.hostname == TWILIO_API_HOST
            and parts.path.startswith(prefix)
            and "/Media/" in parts.path
            and ".." not in parts.path
        )

    def _target(self, url: str) -> str:
        if self._base is None:
            return url
        parts = urlsplit(url)
        return urlunsplit(
            (self._base.scheme, self._base.netloc, self._base.path + parts.path, parts.query, "")
        )

    async def fetch(self, url: str) -> FetchedMedia:
        if not self.owns(url):
            raise MediaNotFound("not a media URL of this Twilio account")
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        target = self._target(url)
        headers = {"Authorization": self._auth}
        try:
            for _ in range(_MAX_REDIRECTS + 1):
                async with self._session.get(
                    target, headers=headers, allow_redirects=False
                ) as response:
                    if response.status in _REDIRECTS and "Location" in response.headers:
                        target = urljoin(target, response.headers["Location"])
                        # The storage URL is pre-signed: the account's credentials stay here.
                        headers = {}
                        continue
                    return await self._read(response)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise MediaUnavailable(f"Twilio could not be reached ({type(exc).__name__})") from None
        raise MediaUnavailable("Twilio redirected too many times")

    async def _read(self, response: aiohttp.ClientResponse) -> FetchedMedia:
        if response.status == 429:
            raise MediaUnavailable(
                "Twilio is rate limiting", retry_after=_seconds(response.headers.get("Retry-After"))
            )
        if response.status in (404, 410):
            raise MediaNotFound("Twilio no longer has this photo")
        if response.status >= 500 or response.status in (401, 403):
            # 401/403: credentials rotated or wrong; retrying later with new ones can succeed.
            raise MediaUnavailable(f"Twilio answered {response.status}")
        if response.status != 200:
            raise MediaNotFound(f"Twilio answered {response.status}")
        if (response.content_length or 0) > self.max_bytes:
            raise MediaRefused("the photo is larger than the limit", too_large=True)
        body = bytearray()
        async for chunk in response.content.iter_chunked(64 * 1024):
            body.extend(chunk)
            if len(body) > self.max_bytes:
                raise MediaRefused("the photo is larger than the limit", too_large=True)
        return checked(bytes(body), self.max_bytes)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class MediaFetchers:
    """Picks the provider that holds a stored reference and fetches it from there.

    Example::

        fetchers = MediaFetchers(telegram=channel.download_file)
        await fetchers.fetch("tg-file://AgAC...")     # via the Bot API, with the bot token
        await fetchers.fetch("https://example.org/x")  # MediaNotFound: nobody holds it
    """

    def __init__(
        self,
        *,
        telegram: DownloadTelegramFile | None = None,
        twilio: TwilioMediaFetcher | None = None,
        max_bytes: int = MAX_PHOTO_BYTES,
    ) -> None:
        self._telegram = telegram
        self._twilio = twilio
        self.max_bytes = max_bytes

    async def fetch(self, reference: str) -> FetchedMedia:
        file_id = telegram_file_id(reference)
        if file_id is not None:
            if self._telegram is None or not file_id:
                raise MediaNotFound("the Telegram channel is not configured")
            return checked(await self._telegram(file_id, self.max_bytes), self.max_bytes)
        if self._twilio is not None and self._twilio.owns(reference):
            return await self._twilio.fetch(reference)
        raise MediaNotFound("the photo is not held by a configured provider")

    async def close(self) -> None:
        if self._twilio is not None:
            await self._twilio.close()


def _seconds(raw: str | None) -> float | None:
    try:
        return max(0.0, float(raw)) if raw else None
    except ValueError:
        return None
