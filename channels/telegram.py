"""Telegram: verify the webhook secret, parse updates, render keyboards, send via the Bot API.

Decisions worth knowing:

- The webhook must carry ``TELEGRAM_WEBHOOK_SECRET`` in ``X-Telegram-Bot-Api-Secret-Token``
  (compared in constant time). Without a configured secret every update is refused: a webhook
  without one can be forged by anyone who guesses the URL.
- ``message_id`` is ``tg:<update_id>``: Telegram redelivers an unacknowledged update with the same
  ``update_id``, so that is the dedupe key.
- Edited messages are ignored (acknowledged, not processed). An edit of an answer the form has
  already moved past would either answer a question twice or silently change an earlier answer;
  the resident can simply send the corrected answer.
- Commands: ``/start`` and ``/menu`` become "menu", ``/help``, ``/cancel``, ``/stop`` their word.
- The SDK's ``de_json`` checks no types, so every field an ``InboundMessage`` is made of is
  checked here: ids are integers of at most 64 bits (as the Bot API says), texts are strings,
  a date is one Python can hold, a location is on Earth. Anything else is a 400 that names the
  field, never a 500 nor a row the message log cannot store.
- A shared contact counts as the resident's phone number only when it is their own
  (``contact.user_id == from.id``); anyone else's contact is answered like a sticker.
- Photos become a ``MediaRef`` of the largest size, ``tg-file://<file_id>``: the file is fetched
  with the bot token only when the back end needs it. Images sent as files keep their MIME type,
  so a GIF gets the polite "send a JPEG, PNG or WebP" answer.
- Inline buttons carry the option id as ``callback_data`` (Telegram allows 64 bytes); a button
  that stands for typed text (a yes/no word, or an id too long for 64 bytes) carries ``txt:...``.
- Long polling (``poll``, for a machine with no public URL) hands back each update as the
  ``ChannelRequest`` a webhook would have carried, so it takes the same parse and turn path;
  failures come back as ``PollingError`` (with Telegram's ``retry_after`` on a 429).
- Messages go out through the SDK as ``sendMessage`` calls made with ``Bot.do_api_request``:
  the SDK encodes them and raises its usual errors, but the answer stays JSON, as only its
  ``message_id`` is kept (decoding a ``Message`` cost two fifths of a send's CPU at a broadcast's
  rate). Every call of the Bot API (messages, the long poll, file downloads) goes through ``channels.telegram_http`` on the process's one shared
  aiohttp session. Each keyboard is built by the SDK once per distinct set of buttons and reused
  (the SDK's markup objects are frozen, so one may go with any number of sends).
- ``download_file`` (getFile, then the file download) is how the media proxy gets a photo's bytes
  with the bot token, which must never leave this process.

Example::

    channel = TelegramChannel(token="123:ABC", secret="s3cret", api_base_url="http://127.0.0.1:8081")
    channel.verify(request)
    [inbound] = channel.parse(request)      # InboundMessage(channel="telegram", address="123456789", ...)
    delivery = await channel.send(channel.render(effects, "en", inbound.address)[0])
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.error import BadRequest as TelegramBadRequest
from telegram.error import (
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.warnings import PTBUserWarning

from channels.base import (
    AccountCheckFailed,
    BadRequest,
    BaseChannel,
    ChannelRequest,
    ForbiddenRequest,
)
from channels.http_session import ProviderSession
from channels.media import telegram_file_ref
from channels.media_fetch import MediaNotFound, MediaRefused, MediaUnavailable
from channels.pacing import BasePacer, Pacer
from channels.render_text import render_plain
from channels.retrying import PROVIDER_DOWN
from channels.sms_render import split_for_length
from channels.telegram_http import AiohttpRequest
from channels.types import (
    Button,
    Capabilities,
    Delivery,
    DeliveryStatus,
    InboundKind,
    InboundMessage,
    OutboundMessage,
)
from forms_runtime.effects import Ask, Effect, GeoPoint, InputKind, MediaRef, OptionView, Review
from forms_runtime.i18n import N_, tr

__all__ = [
    "SECRET_HEADER",
    "TEXT_PREFIX",
    "PolledUpdate",
    "PollingError",
    "TelegramChannel",
    "WebhookRefused",
]

log = logging.getLogger(__name__)

# Opt in to python-telegram-bot's coming behaviour (time periods as timedelta) now: otherwise
# every 429 raises a deprecation warning inside the SDK. Both types are handled below.
os.environ.setdefault("PTB_TIMEDELTA", "true")

# ``send`` calls this method through ``Bot.do_api_request`` (see there), which warns that
# ``Bot.send_message`` exists; that is known and chosen, so that one warning, from here, is quiet.
_SEND_MESSAGE = "send_message"
warnings.filterwarnings(
    "ignore",
    message=r"Please use 'Bot\.send_message'",
    category=PTBUserWarning,
    module=r"channels\.telegram",
)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# callback_data of a button that stands for typed text rather than an option id.
TEXT_PREFIX = "txt:"
_CALLBACK_DATA_BYTES = 64
_MAX_LENGTH = 4096
_COMMANDS = {
    "/start": "menu",
    "/menu": "menu",
    "/help": "help",
    "/cancel": "cancel",
    "/stop": "stop",
}
# Message fields that carry something citybot cannot read (answered politely).
_UNSUPPORTED_FIELDS = (
    "sticker",
    "voice",
    "poll",
    "audio",
    "video",
    "video_note",
    "animation",
    "dice",
    "game",
    "venue",
    "story",
)


class WebhookRefused(Exception):
    """Telegram would not register the webhook; the message says why, in Telegram's words."""


class PollingError(Exception):
    """getUpdates failed; poll again after ``retry_after`` (Telegram's, on a 429) or a back-off.

    ``conflict``: Telegram refused because a webhook is set or another process is polling.
    ``refused``: the token is wrong or revoked; polling again will not help until it is fixed.
    """

    def __init__(
        self,
        reason: str,
        *,
        retry_after: float | None = None,
        conflict: bool = False,
        refused: bool = False,
    ) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.conflict = conflict
        self.refused = refused


@dataclass(frozen=True, slots=True)
class PolledUpdate:
    """One update from getUpdates, as the webhook request that would have carried it."""

    update_id: int
    request: ChannelRequest
    # The chat it belongs to: updates of one chat are handled in order, chats side by side.
    chat: str = ""


class TelegramChannel(BaseChannel):
    name = "telegram"
    capabilities = Capabilities(
        max_length=_MAX_LENGTH,
        buttons=True,
        max_buttons=100,
        location_input=True,
        media=True,
        # Once a resident has pressed Start, the bot may write to them (status updates).
        can_message_first=True,
    )

    def __init__(
        self,
        token: str,
        secret: str | None,
        *,
        api_base_url: str | None = None,
        per_second: float = 30.0,
        per_chat_per_second: float = 1.0,
        http: ProviderSession | None = None,
        pacer: BasePacer | None = None,
    ) -> None:
        self._secret = secret
        base = (api_base_url or "https://api.telegram.org").rstrip("/")
        # Every Bot API call goes through the process's shared provider session (one of its own
        # when none is given); the long poll holds one of its connections while it waits.
        self._http = http or ProviderSession()
        self._request = AiohttpRequest(self._http, read_timeout=10.0, connect_timeout=5.0)
        self.bot = Bot(
            token,
            base_url=f"{base}/bot",
            base_file_url=f"{base}/file/bot",
            request=self._request,
            get_updates_request=AiohttpRequest(self._http, read_timeout=10.0, connect_timeout=5.0),
        )
        # The composition root passes one shared by every process (Redis) where there are several.
        self.pacer: BasePacer = pacer or Pacer(per_second, per_chat_per_second)

    # -- verify ---------------------------------------------------------------------------------

    def verify(self, request: ChannelRequest) -> None:
        if not self._secret:
            raise ForbiddenRequest("TELEGRAM_WEBHOOK_SECRET is not set: refusing unsigned updates")
        given = request.header(SECRET_HEADER)
        if given is None or not hmac.compare_digest(
            given.encode("utf-8", "replace"), self._secret.encode("utf-8")
        ):
            raise ForbiddenRequest("wrong or missing X-Telegram-Bot-Api-Secret-Token")

    # -- parse ----------------------------------------------------------------------------------

    def parse(self, request: ChannelRequest) -> list[InboundMessage]:
        data = _update_json(request.body)
        plain = _plain_text(data)
        if plain is not None:
            return [plain]
        update = _de_json(data)
        try:
            if update.callback_query is not None:
                return _callback(update)
            if update.message is not None:
                message = _message(update.update_id, update.message)
                return [] if message is None else [message]
        except (AttributeError, TypeError, ValueError) as exc:
            # de_json is lenient: a message without its chat or sender shows up only here.
            raise BadRequest(f"the Update is missing a required field: {exc}") from None
        # Edited messages, channel posts, member updates...: acknowledged, nothing to answer.
        return []

    def may_need_acknowledging(self, request: ChannelRequest) -> bool:
        """Whether ``acknowledge`` could have anything to do (a button tap), without parsing.

        The webhook path asks this for every update, so that the Update is not parsed a second
        time and no task is started for the plain messages that make up nearly all traffic.
        """
        return b"callback_query" in request.body

    async def acknowledge(self, request: ChannelRequest) -> None:
        """Stop the spinner on a tapped inline button (answerCallbackQuery); errors are logged."""
        try:
            update = _update(request.body)
        except BadRequest:
            return
        if update.callback_query is None:
            return
        try:
            await self.bot.answer_callback_query(update.callback_query.id)
        except TelegramError as exc:
            log.info("answerCallbackQuery failed: %s", exc)

    # -- render ---------------------------------------------------------------------------------

    def render(self, effects: Sequence[Effect], locale: str, address: str) -> list[OutboundMessage]:
        text = render_plain(effects, locale, numbered_options=False)
        buttons = _buttons(effects, locale)
        if not text and not buttons:
            return []
        chunks = split_for_length(text, _MAX_LENGTH) or [""]
        last = len(chunks) - 1
        return [
            OutboundMessage(
                channel=self.name,
                address=address,
                text=chunk,
                buttons=buttons if i == last else (),
            )
            for i, chunk in enumerate(chunks)
        ]

    # -- send -----------------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> Delivery:
        fields: dict[str, Any] = {"chat_id": int(message.address), "text": message.text}
        markup = _markup(tuple(message.buttons))
        if markup is not None:
            fields["reply_markup"] = markup
        try:
            # The SDK builds, sends and checks the call as ``send_message`` would (its errors
            # are the same), but hands back Telegram's JSON instead of decoding it into a
            # ``Message``: that decoding was two fifths of a send's CPU, for the one id we keep.
            sent = await self.bot.do_api_request(_SEND_MESSAGE, api_kwargs=fields)
        except RetryAfter as exc:
            return Delivery(
                status=DeliveryStatus.RATE_LIMITED,
                error_code="429",
                error=str(exc),
                retry_after=_retry_after(exc),
            )
        except Forbidden as exc:
            # "bot was blocked by the user", "user is deactivated": stop writing to them.
            return Delivery(status=DeliveryStatus.UNREACHABLE, error_code="403", error=str(exc))
        except (TelegramBadRequest, InvalidToken) as exc:
            return Delivery(status=DeliveryStatus.FAILED, error_code="400", error=str(exc))
        except NetworkError as exc:
            # Timeouts, refused connections and 5xx answers: the provider is down, retry later.
            return Delivery(status=DeliveryStatus.FAILED, error_code=PROVIDER_DOWN, error=str(exc))
        except TelegramError as exc:
            return Delivery(status=DeliveryStatus.FAILED, error_code="telegram", error=str(exc))
        except ValueError as exc:
            return Delivery(status=DeliveryStatus.FAILED, error_code="address", error=str(exc))
        return Delivery(status=DeliveryStatus.SENT, provider_message_id=str(sent["message_id"]))

    async def check_account(self) -> str:
        """getMe: the bot the token belongs to, e.g. ``@CapeTownCityBot``."""
        try:
            me = await self.bot.get_me()
        except (InvalidToken, Forbidden) as exc:
            raise AccountCheckFailed(f"Telegram refused the token ({exc})") from None
        except TelegramError as exc:
            raise AccountCheckFailed(f"getMe failed: {type(exc).__name__}: {exc}") from None
        return f"bot @{me.username}"

    async def set_webhook(self, url: str) -> bool:
        """Register ``url`` with the secret (``citybot telegram set-webhook``)."""
        if not self._secret:
            raise ValueError("TELEGRAM_WEBHOOK_SECRET must be set before registering a webhook")
        try:
            return await self.bot.set_webhook(
                url=url,
                secret_token=self._secret,
                allowed_updates=["message", "callback_query"],
            )
        except TelegramError as exc:
            # Callers outside channels/ never see the SDK's exception types.
            raise WebhookRefused(str(exc)) from exc

    # -- long polling (no public URL) -----------------------------------------------------------

    async def delete_webhook(self) -> None:
        """Remove any webhook, which Telegram requires before getUpdates; raises PollingError."""
        try:
            await self.bot.delete_webhook(drop_pending_updates=False)
        except TelegramError as exc:
            raise _polling_error(exc) from None

    async def poll(
        self, offset: int | None, timeout: float, limit: int = 100
    ) -> list[PolledUpdate]:
        """Updates from ``offset`` on, waiting up to ``timeout`` seconds for the first.

        Passing ``offset`` confirms every update below it: Telegram will not send those again.
        """
        try:
            updates = await self.bot.get_updates(
                offset=offset,
                timeout=int(timeout),
                limit=limit,
                allowed_updates=["message", "callback_query"],
            )
        except TelegramError as exc:
            raise _polling_error(exc) from None
        return [
            PolledUpdate(
                update.update_id,
                ChannelRequest(
                    method="POST",
                    url="telegram:getUpdates",
                    headers={"Content-Type": "application/json"},
                    body=json.dumps(update.to_dict()).encode(),
                    form={},
                ),
                chat=str(update.effective_chat.id) if update.effective_chat else "",
            )
            for update in updates
        ]

    # -- media ------------------------------------------------------------------------------------

    async def download_file(self, file_id: str, max_bytes: int) -> bytes:
        """A file's bytes (getFile, then the download), refused above ``max_bytes``.

        Raises ``MediaNotFound``, ``MediaRefused`` or ``MediaUnavailable`` with a reason that
        never contains the file URL (it carries the bot token).
        """
        try:
            file = await self.bot.get_file(file_id)
            if file.file_size is not None and file.file_size > max_bytes:
                raise MediaRefused("the photo is larger than the limit", too_large=True)
            body = bytes(await file.download_as_bytearray())
        except RetryAfter as exc:
            raise MediaUnavailable(
                "Telegram is rate limiting", retry_after=_retry_after(exc)
            ) from None
        except (TelegramBadRequest, InvalidToken) as exc:
            # "invalid file_id", "file is too big" (over the Bot API's 20 MB), an unknown path.
            raise MediaNotFound(f"Telegram has no such file ({type(exc).__name__})") from None
        except (NetworkError, TelegramError) as exc:
            raise MediaUnavailable(
                f"Telegram could not be reached ({type(exc).__name__})"
            ) from None
        except RuntimeError:
            raise MediaNotFound("Telegram gave no path for the file") from None
        if len(body) > max_bytes:
            raise MediaRefused("the photo is larger than the limit", too_large=True)
        return body

    async def close(self) -> None:
        await self._http.close()


def _update(body: bytes) -> Update:
    return _de_json(_update_json(body))


def _update_json(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)  # several times the json module's speed, every update
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the body is not JSON") from None
    if not isinstance(data, dict) or not _is_int64(data.get("update_id")):
        raise BadRequest("the body is not a Telegram Update (no 64-bit integer update_id)")
    return data


# The fields of a plain text message that ``_plain_text`` reads without the SDK.
_PLAIN_MESSAGE_FIELDS = frozenset({"message_id", "from", "chat", "date", "text"})


def _plain_text(data: dict[str, Any]) -> InboundMessage | None:
    """A plain typed message read straight from the JSON; None for anything else.

    Nearly every update is one, and ``Update.de_json`` builds a tree of SDK objects for it that
    cost as much CPU as the rest of the parse and the turn's routing together. Only the exact
    shape is taken here, with every field it reads of the right type; a command, entities,
    a photo, a button, a bot sender or any field more or less goes through ``de_json`` as
    before. Both paths give the same ``InboundMessage`` (the tests compare them).
    """
    message = data.get("message")
    if len(data) != 2 or not isinstance(message, dict) or message.keys() != _PLAIN_MESSAGE_FIELDS:
        return None
    sender, chat, text, date = message["from"], message["chat"], message["text"], message["date"]
    if not (
        isinstance(sender, dict)
        and isinstance(chat, dict)
        and isinstance(text, str)
        and not text.startswith("/")
        and type(date) is int
        and type(message["message_id"]) is int
    ):
        return None
    chat_id, language, name = chat.get("id"), sender.get("language_code"), sender.get("first_name")
    if not (
        _is_int64(chat_id)
        and isinstance(chat.get("type"), str)
        and _is_int64(sender.get("id"))
        and sender.get("is_bot") is False
        and isinstance(name, str)
        and (language is None or isinstance(language, str))
    ):
        return None
    try:
        received = datetime.fromtimestamp(date, UTC)
    except (OverflowError, OSError, ValueError):
        return None  # de_json says what is wrong with it
    return InboundMessage(
        channel=TelegramChannel.name,
        address=str(chat_id),
        message_id=f"tg:{data['update_id']}",
        kind=InboundKind.TEXT,
        text=text,
        language_hint=language,
        display_name=name,
        received_at=received,
    )


def _de_json(data: dict[str, Any]) -> Update:
    try:
        return Update.de_json(data, None)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadRequest(f"the Update is malformed: {exc!r}") from None
    except (OverflowError, OSError):
        # A date no clock can hold (1e18): datetime.fromtimestamp refuses it with these.
        raise BadRequest("the Update is malformed: a date out of range") from None


_INT64 = range(-(2**63), 2**63)


def _is_int64(value: object) -> bool:
    # type() rather than isinstance(): JSON true is a bool, which Python counts as an int.
    return type(value) is int and value in _INT64


def _int64(value: object, field: str) -> int:
    if not isinstance(value, int) or not _is_int64(value):
        raise BadRequest(f"{field} must be an integer of at most 64 bits")
    return value


def _optional_int(value: object, field: str) -> int | None:
    return None if value is None else _int64(value, field)


def _optional_text(value: object, field: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"{field} must be a string")
    return value


def _text(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"{field} must be a string")
    return value


def _coordinate(value: object, field: str, limit: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not -limit <= value <= limit
    ):
        raise BadRequest(f"{field} must be a number from {-limit:g} to {limit:g}")
    return float(value)


def _message(update_id: int, message: Message) -> InboundMessage | None:
    user = message.from_user
    if user is None or user.is_bot:
        return None
    _int64(user.id, "message.from.id")
    base: dict[str, Any] = {
        "channel": TelegramChannel.name,
        "address": str(_int64(message.chat.id, "message.chat.id")),
        "message_id": f"tg:{update_id}",
        "language_hint": _optional_text(user.language_code, "message.from.language_code"),
        "display_name": _text(user.first_name, "message.from.first_name"),
        "received_at": message.date,
    }
    caption = _optional_text(message.caption, "message.caption")
    if message.location is not None:
        point = GeoPoint(
            lat=_coordinate(message.location.latitude, "message.location.latitude", 90),
            lon=_coordinate(message.location.longitude, "message.location.longitude", 180),
        )
        return InboundMessage(kind=InboundKind.LOCATION, location=point, **base)
    if message.photo:
        for size in message.photo:
            _text(size.file_id, "message.photo.file_id")
            _int64(size.width, "message.photo.width")
            _int64(size.height, "message.photo.height")
            _optional_int(size.file_size, "message.photo.file_size")
        largest = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
        ref = MediaRef(
            url=telegram_file_ref(largest.file_id),
            content_type="image/jpeg",  # Telegram re-encodes every photo as JPEG
            size=largest.file_size,
        )
        return InboundMessage(kind=InboundKind.MEDIA, media=(ref,), text=caption, **base)
    if message.document is not None:
        doc = message.document
        ref = MediaRef(
            url=telegram_file_ref(_text(doc.file_id, "message.document.file_id")),
            content_type=_optional_text(doc.mime_type, "message.document.mime_type")
            or "application/octet-stream",
            size=_optional_int(doc.file_size, "message.document.file_size"),
        )
        return InboundMessage(kind=InboundKind.MEDIA, media=(ref,), text=caption, **base)
    if message.contact is not None:
        contact = message.contact
        contact_user = _optional_int(contact.user_id, "message.contact.user_id")
        if contact_user is not None and contact_user == user.id:
            phone = _text(contact.phone_number, "message.contact.phone_number").strip()
            phone = phone if phone.startswith("+") else "+" + phone
            return InboundMessage(kind=InboundKind.CONTACT, contact_phone=phone, **base)
        return InboundMessage(kind=InboundKind.UNSUPPORTED, **base)
    text = _optional_text(message.text, "message.text")
    if text is not None:
        command = text.split(maxsplit=1)[0].split("@", 1)[0].lower() if text else ""
        if command in _COMMANDS:
            text = _COMMANDS[command]
        return InboundMessage(kind=InboundKind.TEXT, text=text, **base)
    if any(getattr(message, field, None) for field in _UNSUPPORTED_FIELDS):
        return InboundMessage(kind=InboundKind.UNSUPPORTED, **base)
    # Service messages (a member joined, a pinned message...) are not the resident talking.
    return None


def _callback(update: Update) -> list[InboundMessage]:
    query = update.callback_query
    assert query is not None
    chat = query.message.chat if query.message is not None else None
    user_id = _int64(query.from_user.id, "callback_query.from.id")
    address = str(_int64(chat.id, "callback_query.message.chat.id") if chat else user_id)
    base: dict[str, Any] = {
        "channel": TelegramChannel.name,
        "address": address,
        "message_id": f"tg:{update.update_id}",
        "language_hint": _optional_text(
            query.from_user.language_code, "callback_query.from.language_code"
        ),
        "display_name": _text(query.from_user.first_name, "callback_query.from.first_name"),
    }
    data = _optional_text(query.data, "callback_query.data") or ""
    if not data:
        return []
    if data.startswith(TEXT_PREFIX):
        return [InboundMessage(kind=InboundKind.TEXT, text=data[len(TEXT_PREFIX) :], **base)]
    return [InboundMessage(kind=InboundKind.BUTTON, option_id=data, **base)]


def _buttons(effects: Sequence[Effect], locale: str) -> tuple[Button, ...]:
    """Buttons for the question that ends the turn (the last Ask or Review), if any."""
    last = effects[-1] if effects else None
    if isinstance(last, Review):
        return _option_buttons(last.options)
    if not isinstance(last, Ask):
        return ()
    if last.kind is InputKind.LOCATION:
        return (Button(id="location", label=tr(locale, N_("Send my location")), kind="location"),)
    if last.kind is InputKind.PHONE:
        return (Button(id="contact", label=tr(locale, N_("Share my number")), kind="contact"),)
    if last.options:
        return _option_buttons(last.options)
    if last.kind is InputKind.YES_NO:
        yes, no = tr(locale, N_("Yes")), tr(locale, N_("No"))
        return (Button(id=TEXT_PREFIX + yes, label=yes), Button(id=TEXT_PREFIX + no, label=no))
    return ()


def _option_buttons(options: Sequence[OptionView]) -> tuple[Button, ...]:
    buttons = []
    for number, option in enumerate(options, 1):
        data = option.id
        if len(data.encode("utf-8")) > _CALLBACK_DATA_BYTES:
            # The engine understands an option's number as well as its id.
            data = f"{TEXT_PREFIX}{number}"
        buttons.append(Button(id=data, label=option.label))
    return tuple(buttons)


@functools.lru_cache(maxsize=1024)
def _markup(buttons: tuple[Button, ...]) -> InlineKeyboardMarkup | ReplyKeyboardMarkup | None:
    """The keyboard for these buttons; None without buttons.

    A form asks the same few questions of everyone, so the same keyboards come back again and
    again: each distinct one is built once (``Button`` is frozen, so hashable, and the SDK's
    markup objects are frozen too, so one is shared safely by every send).
    """
    if not buttons:
        return None
    if any(b.kind in ("location", "contact") for b in buttons):
        keys = [
            [
                KeyboardButton(
                    b.label,
                    request_location=b.kind == "location",
                    request_contact=b.kind == "contact",
                )
            ]
            for b in buttons
        ]
        return ReplyKeyboardMarkup(keys, one_time_keyboard=True, resize_keyboard=True)
    # Short labels side by side (two a row), long ones on a row of their own.
    rows: list[list[InlineKeyboardButton]] = []
    for b in buttons:
        key = InlineKeyboardButton(b.label[:64], callback_data=b.id)
        if len(b.label) <= 14 and rows and len(rows[-1]) == 1 and len(rows[-1][0].text) <= 14:
            rows[-1].append(key)
        else:
            rows.append([key])
    return InlineKeyboardMarkup(rows)


def _polling_error(exc: TelegramError) -> PollingError:
    if isinstance(exc, RetryAfter):
        return PollingError("Telegram is rate limiting", retry_after=_retry_after(exc))
    if isinstance(exc, Conflict):
        return PollingError(f"Telegram refused: {exc}", conflict=True)
    if isinstance(exc, InvalidToken | Forbidden):
        return PollingError(f"Telegram refused the bot token: {exc}", refused=True)
    return PollingError(f"Telegram could not be reached: {type(exc).__name__}: {exc}")


def _retry_after(exc: RetryAfter) -> float:
    value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
