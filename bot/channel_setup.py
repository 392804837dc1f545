"""The provider channels ``Settings`` enable, built once per process.

A channel without credentials stays off (its webhook answers 404). The channels built together
share one ``ProviderSession``: one aiohttp session and connection pool for every provider call
of the process (closing any of the channels closes it). Besides the contract's
variables (DESIGN.md): ``TWILIO_WHATSAPP_TEMPLATES`` (JSON, message purpose -> Content SID),
``CITYBOT_TELEGRAM_SEND_RATE`` (messages/s, default 30) and ``CITYBOT_TWILIO_SEND_RATE``
(default 10 for SMS; WhatsApp twice that).

Example::

    channels = build_channels(settings, sessionmaker)   # {"telegram": ..., "sms": ...}
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from channels.base import BaseChannel
from channels.http_session import ProviderSession
from channels.telegram import TelegramChannel
from channels.twilio_common import TwilioAccount
from channels.twilio_sms import SmsChannel
from channels.whatsapp import WhatsAppChannel
from storage.models import ResidentAddress

__all__ = ["build_channels"]

Sessions = async_sessionmaker[AsyncSession]


def build_channels(
    settings: Settings,
    sessions: Sessions | None = None,
    env: Mapping[str, str] = os.environ,
) -> dict[str, BaseChannel]:
    """The provider channels the settings enable (see the module's docstring)."""
    channels: dict[str, BaseChannel] = {}
    http = ProviderSession()
    if settings.telegram_bot_token:
        channels["telegram"] = TelegramChannel(
            settings.telegram_bot_token,
            settings.telegram_webhook_secret,
            api_base_url=settings.telegram_api_base_url,
            per_second=_rate(env, "CITYBOT_TELEGRAM_SEND_RATE", 30.0),
            http=http,
        )
    if settings.twilio_account_sid and settings.twilio_auth_token:
        account = TwilioAccount(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            settings.public_url,
            api_base_url=settings.twilio_api_base_url,
        )
        rate = _rate(env, "CITYBOT_TWILIO_SEND_RATE", 10.0)
        if settings.twilio_sms_from:
            channels["sms"] = SmsChannel(
                account, settings.twilio_sms_from, per_second=rate, http=http
            )
        if settings.twilio_whatsapp_from:
            channels["whatsapp"] = WhatsAppChannel(
                account,
                settings.twilio_whatsapp_from,
                templates=_templates(env),
                last_inbound=_last_inbound(sessions, "whatsapp") if sessions else None,
                per_second=rate * 2,
                http=http,
            )
    return channels


def _rate(env: Mapping[str, str], name: str, default: float) -> float:
    try:
        value = float(env.get(name, "") or default)
    except ValueError:
        raise ValueError(f"{name} must be a number of messages per second") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive")
    return value


def _templates(env: Mapping[str, str]) -> dict[str, str]:
    raw = env.get("TWILIO_WHATSAPP_TEMPLATES", "").strip()
    if not raw:
        return {}
    try:
        loaded = json.loads(raw)
    except ValueError:
        raise ValueError("TWILIO_WHATSAPP_TEMPLATES must be a JSON object") from None
    if not isinstance(loaded, dict) or not all(isinstance(v, str) for v in loaded.values()):
        raise ValueError(
            'TWILIO_WHATSAPP_TEMPLATES must map purposes to Content SIDs: {"status_update": "HX..."}'
        )
    return {str(k): v for k, v in loaded.items()}


def _last_inbound(sessions: Sessions, channel: str) -> Callable[[str], Awaitable[datetime | None]]:
    async def last_inbound(address: str) -> datetime | None:
        async with sessions() as db:
            found = await db.scalar(
                select(ResidentAddress.last_inbound_at).where(
                    ResidentAddress.channel == channel, ResidentAddress.address == address
                )
            )
        return found

    return last_inbound
