"""The web chat channel: the city's own chat page talking JSON to ``/webchat/``.

Reads top to bottom like every channel: verify (the signed session cookie), parse (a JSON post),
render (effects into JSON messages with buttons), send (the page cannot be messaged first).

A resident is identified by a random session id carried in an HMAC-signed, HttpOnly cookie; the
page sends one JSON object per message::

    POST /webchat/messages
    {"client_message_id": "m-1", "text": "pothole"}
    {"client_message_id": "m-2", "option_id": "medium"}
    {"client_message_id": "m-3", "location": {"lat": -34.0363, "lon": 18.6776}}

``client_message_id`` is the dedupe key: a retried post with the same id is processed once.
Exactly one of ``text``, ``option_id`` and ``location`` is given. Unknown fields are ignored, so
an older page keeps working against a newer server (and the reverse); everything else that is
wrong is a ``BadRequest`` whose message says what to fix.

Example::

    channel = WebChatChannel(["new secret", "old secret"])   # signs with the first
    cookie = channel.new_session()                     # set as the citybot_session cookie
    session = channel.session_of(cookie)               # the id, or None when forged
    inbound = channel.parse_post(body, session)        # -> InboundMessage(channel="webchat", ...)
    payload = channel.to_json(effects)                 # -> [{"type": "ask", "text": ...}, ...]
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from typing import Any

from channels.base import BadRequest, BaseChannel, ChannelRequest, ForbiddenRequest
from channels.types import (
    Button,
    Capabilities,
    Delivery,
    DeliveryStatus,
    InboundKind,
    InboundMessage,
    OutboundMessage,
)
from forms_runtime.effects import (
    Ask,
    Cancelled,
    Effect,
    GeoPoint,
    Handoff,
    InputKind,
    Notice,
    Reject,
    Review,
    Submit,
)
from forms_runtime.i18n import N_, tr

__all__ = [
    "COOKIE_NAME",
    "MAX_BODY_BYTES",
    "WEBCHAT",
    "WebChatChannel",
]

WEBCHAT = "webchat"
COOKIE_NAME = "citybot_session"
MAX_BODY_BYTES = 64 * 1024
MAX_TEXT_CHARS = 4000
MAX_ID_CHARS = 100

# The fields a post may carry; anything else is ignored (see the module docstring).
_ANSWER_FIELDS = ("text", "option_id", "location")


class WebChatChannel(BaseChannel):
    name = WEBCHAT
    capabilities = Capabilities(
        max_length=4096,
        buttons=True,
        max_buttons=24,
        location_input=True,
        media=False,
        # The page only hears from us when it posts; see ``send``.
        can_message_first=False,
    )

    def __init__(self, secret: str | Sequence[str]) -> None:
        """``secret``: the session secret to sign with, then old ones still accepted (a cookie
        signed with one keeps its session through a key rotation's grace period)."""
        given = [secret] if isinstance(secret, str) else list(secret)
        self._keys = [
            hashlib.sha256(b"citybot-webchat-session:" + s.encode()).digest() for s in given
        ]

    # --- verify: the session cookie ------------------------------------------------------------

    def new_session(self) -> str:
        """A fresh signed cookie value for a resident the server has not seen."""
        return self._sign(secrets.token_urlsafe(18))

    def session_of(self, cookie_value: str | None) -> str | None:
        """The session id in a cookie value, or None if absent, malformed or forged."""
        if not cookie_value or cookie_value.count(".") != 1:
            return None
        session_id, _ = cookie_value.split(".")
        matches = [
            hmac.compare_digest(self._sign(session_id, key), cookie_value) for key in self._keys
        ]
        return session_id if any(matches) else None

    def refreshed(self, cookie_value: str | None) -> str | None:
        """The same session signed with the current secret, when ``cookie_value`` is genuine but
        signed with an old one (so it outlasts the rotation's grace period); else None."""
        session_id = self.session_of(cookie_value)
        if session_id is None or self._sign(session_id) == cookie_value:
            return None
        return self._sign(session_id)

    def _sign(self, session_id: str, key: bytes | None = None) -> str:
        mac = hmac.new(key or self._keys[0], session_id.encode(), hashlib.sha256).digest()
        return session_id + "." + base64.urlsafe_b64encode(mac[:18]).decode().rstrip("=")

    def verify(self, request: ChannelRequest) -> None:
        if _cookie(request) is None or self.session_of(_cookie(request)) is None:
            raise ForbiddenRequest("no valid web chat session cookie")

    # --- parse: one JSON post ------------------------------------------------------------------

    def parse(self, request: ChannelRequest) -> list[InboundMessage]:
        session = self.session_of(_cookie(request))
        if session is None:
            raise ForbiddenRequest("no valid web chat session cookie")
        return [self.parse_post(request.body, session)]

    def parse_post(
        self, body: bytes, session_id: str, received_at: datetime | None = None
    ) -> InboundMessage:
        """Turn one posted JSON object into a neutral message; ``BadRequest`` says what is wrong."""
        if len(body) > MAX_BODY_BYTES:
            raise BadRequest(f"the body is over {MAX_BODY_BYTES} bytes")
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(f"the body is not valid JSON ({exc.__class__.__name__})") from None
        if not isinstance(data, dict):
            raise BadRequest("the body must be a JSON object")

        client_id = data.get("client_message_id")
        if not isinstance(client_id, str) or not 0 < len(client_id) <= MAX_ID_CHARS:
            raise BadRequest(
                f"client_message_id must be a string of 1 to {MAX_ID_CHARS} characters"
            )
        given = [f for f in _ANSWER_FIELDS if data.get(f) is not None]
        if len(given) != 1:
            raise BadRequest("give exactly one of text, option_id or location")

        common: dict[str, Any] = {
            "channel": WEBCHAT,
            "address": session_id,
            # Scoped to the session, so two residents' pages can never collide on an id.
            "message_id": f"{session_id}:{client_id}",
            "received_at": received_at or datetime.now(UTC),
            "language_hint": _locale_hint(data.get("locale")),
        }
        field_name = given[0]
        if field_name == "text":
            text = data["text"]
            if not isinstance(text, str):
                raise BadRequest("text must be a string")
            return InboundMessage(kind=InboundKind.TEXT, text=text[:MAX_TEXT_CHARS], **common)
        if field_name == "option_id":
            option_id = data["option_id"]
            if not isinstance(option_id, str) or not 0 < len(option_id) <= MAX_ID_CHARS:
                raise BadRequest(f"option_id must be a string of 1 to {MAX_ID_CHARS} characters")
            return InboundMessage(kind=InboundKind.BUTTON, option_id=option_id, **common)
        return InboundMessage(
            kind=InboundKind.LOCATION, location=_location(data["location"]), **common
        )

    # --- render: effects into JSON messages ----------------------------------------------------

    def to_json(self, effects: Sequence[Effect]) -> list[dict[str, Any]]:
        """The page's view of the effects: one JSON object per bubble, buttons included.

        The effects' texts are already in the resident's language, so no locale is needed.
        """
        return [m for effect in effects if (m := _effect_json(effect)) is not None]

    def render(self, effects: Sequence[Effect], locale: str, address: str) -> list[OutboundMessage]:
        """Plain messages with buttons, for code that speaks ``OutboundMessage`` (the notifier)."""
        out: list[OutboundMessage] = []
        for message in self.to_json(effects):
            text = message["text"]
            if message["type"] == "review":
                lines = [f"{i['number']}. {i['label']}: {i['value']}" for i in message["items"]]
                text = "\n".join([message["title"], *lines, message["text"]])
            buttons = tuple(
                Button(id=o["id"], label=o["label"]) for o in message.get("options", [])
            )
            if message.get("input") == InputKind.LOCATION:
                buttons = (
                    Button(
                        id="location", label=tr(locale, N_("Send my location")), kind="location"
                    ),
                    *buttons,
                )
            out.append(
                OutboundMessage(channel=WEBCHAT, address=address, text=text, buttons=buttons)
            )
        return out

    # --- send ----------------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> Delivery:
        """The page pulls its replies in the response to each post; nothing can be pushed.

        Messages the bot starts (status updates) are kept in the message log and shown by
        ``GET /webchat/history`` when the resident next opens the page; an open page polls
        ``GET /webchat/messages?after=ID`` for them (``notifier.delivery`` logs them).
        """
        return Delivery(status=DeliveryStatus.QUEUED)


def _cookie(request: ChannelRequest) -> str | None:
    header = request.headers.get("Cookie") or request.headers.get("cookie")
    if not header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except Exception:
        return None
    morsel = jar.get(COOKIE_NAME)
    return morsel.value if morsel else None


def _locale_hint(value: object) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= 16 else None


def _location(value: object) -> GeoPoint:
    if not isinstance(value, dict):
        raise BadRequest("location must be an object {lat, lon}")
    lat, lon = value.get("lat"), value.get("lon")
    for name, number, limit in (("lat", lat, 90.0), ("lon", lon, 180.0)):
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise BadRequest(f"location.{name} must be a number")
        if not math.isfinite(number) or abs(number) > limit:
            raise BadRequest(f"location.{name} must be between -{limit:g} and {limit:g}")
    assert isinstance(lat, int | float) and isinstance(lon, int | float)
    return GeoPoint(lat=float(lat), lon=float(lon))


def _options(options: Sequence[Any]) -> list[dict[str, str]]:
    return [{"id": o.id, "label": o.label} for o in options]


def _effect_json(effect: Effect) -> dict[str, Any] | None:
    if isinstance(effect, Ask):
        message: dict[str, Any] = {
            "type": "ask",
            "step_id": effect.step_id,
            "text": effect.prompt,
            "input": effect.kind.value,
            "options": _options(effect.options),
            "optional": effect.optional,
        }
        if effect.hint:
            message["hint"] = effect.hint
        if effect.position and effect.total:
            message["progress"] = {"position": effect.position, "total": effect.total}
        return message
    if isinstance(effect, Review):
        return {
            "type": "review",
            "title": effect.title,
            "items": [
                {"number": i.number, "step_id": i.step_id, "label": i.label, "value": i.value}
                for i in effect.items
            ],
            "text": effect.prompt,
            "options": _options(effect.options),
        }
    if isinstance(effect, Reject):
        return {"type": "error", "text": effect.message}
    if isinstance(effect, Notice):
        return {"type": "notice", "text": effect.message}
    if isinstance(effect, Cancelled | Handoff):
        return {"type": "notice", "text": effect.message}
    if isinstance(effect, Submit):
        # The core turns a Submit into a stored submission and a confirmation Notice with the
        # reference; the raw answers are never echoed back to the page.
        return None
    return None
