"""Requests as providers send them: Telegram updates with the secret, Twilio posts signed."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from channels.base import ChannelRequest
from tests.fakes.telegram_api import FIXTURES as TELEGRAM_FIXTURES
from tests.fakes.twilio_api import AUTH_TOKEN
from tests.fakes.twilio_api import fixture as twilio_fixture

PUBLIC_URL = "https://bot.city.example"
TELEGRAM_SECRET = "tg-secret-0123456789"


def telegram_update(name: str, **changes: Any) -> dict[str, Any]:
    update: dict[str, Any] = json.loads((TELEGRAM_FIXTURES / name).read_text())
    update.update(changes)
    return update


def telegram_request(
    update: dict[str, Any] | bytes, secret: str | None = TELEGRAM_SECRET
) -> ChannelRequest:
    body = update if isinstance(update, bytes) else json.dumps(update).encode()
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    return ChannelRequest("POST", "http://127.0.0.1:8080/webhooks/telegram", headers, body, {})


def twilio_form(name: str, **changes: str) -> dict[str, str]:
    form: dict[str, str] = twilio_fixture(name)
    form.update(changes)
    return form


def twilio_signature(path: str, form: dict[str, str], token: str = AUTH_TOKEN) -> str:
    signature: str = RequestValidator(token).compute_signature(PUBLIC_URL + path, form)
    return signature


def twilio_request(
    path: str, form: dict[str, str], *, signature: str | None = None, sign: bool = True
) -> ChannelRequest:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if sign:
        headers["X-Twilio-Signature"] = signature or twilio_signature(path, form)
    # The process sees its own address behind the proxy, not the public URL Twilio signed.
    return ChannelRequest(
        "POST", "http://10.0.0.7:8080" + path, headers, urlencode(form).encode(), form
    )
