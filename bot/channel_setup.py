"""The provider channels ``Settings`` enable, built once per process.

A channel without credentials stays off (its webhook answers 404). The channels built together
share one ``ProviderSession``: one aiohttp session and connection pool for every provider call
of the process (closing any of the channels closes it). Besides the contract's
variables (DESIGN.md): ``TWILIO_WHATSAPP_TEMPLATES`` (JSON, message purpose -> Content SID) and
the providers' limits, in messages a second:

* ``CITYBOT_TELEGRAM_SEND_RATE``: per bot, default 30 (Telegram's limit; one a second per chat);
* ``TWILIO_SMS_MPS``: per SMS sender (number or messaging service), default
  ``CITYBOT_TWILIO_SEND_RATE`` or 10;
* ``TWILIO_WHATSAPP_MPS``: per WhatsApp sender, default twice the SMS default (one a second
  per resident);
* ``CITYBOT_PACING_JITTER_MS``: the network jitter (milliseconds) the pacing absorbs so that a
  provider never counts more than its limit in any second, default 10 (the pacer then runs 1%
  under the limit; see ``channels.pacing``).

Each channel gets one pacer for its provider account (``channels.pacing``). With Redis every
process shares it (``RedisPacer``: the limits hold for all processes together); without Redis the
one process paces itself.

Example::

    channels = build_channels(settings, sessionmaker, redis=redis)   # {"telegram": ..., "sms": ...}
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import ConfigError, Settings
from channels.africastalking_sms import AfricasTalkingSms
from channels.base import BaseChannel
from channels.http_session import ProviderSession
from channels.pacing import DEFAULT_JITTER_ALLOWANCE, BasePacer, Pacer
from channels.shared_pacing import RedisPacer
from channels.telegram import TelegramChannel
from channels.twilio_common import TwilioAccount
from channels.twilio_sms import SmsChannel
from channels.ussd import UssdChannel
from channels.whatsapp import WhatsAppChannel
from storage.models import ResidentAddress

__all__ = ["build_channels", "check_channel_env"]

Sessions = async_sessionmaker[AsyncSession]


def build_channels(
    settings: Settings,
    sessions: Sessions | None = None,
    env: Mapping[str, str] = os.environ,
    *,
    redis: Redis | None = None,
    redis_prefix: str = "citybot:",
) -> dict[str, BaseChannel]:
    """The provider channels the settings enable (see the module's docstring)."""
    channels: dict[str, BaseChannel] = {}
    http = ProviderSession()

    jitter = _jitter(env)

    def pacer(account: str, per_second: float, per_address: float | None) -> BasePacer:
        if redis is None:
            return Pacer(per_second, per_address, jitter_allowance=jitter)
        return RedisPacer(
            redis, account, per_second, per_address, prefix=redis_prefix, jitter_allowance=jitter
        )

    if settings.telegram_bot_token:
        rate = _rate(env, "CITYBOT_TELEGRAM_SEND_RATE", 30.0)
        # The bot's id (the token's part before the colon) names the account; it is no secret.
        bot_id = settings.telegram_bot_token.split(":", 1)[0]
        channels["telegram"] = TelegramChannel(
            settings.telegram_bot_token,
            settings.telegram_webhook_secret,
            api_base_url=settings.telegram_api_base_url,
            http=http,
            pacer=pacer(f"telegram:{bot_id}", rate, 1.0),
        )
    if settings.twilio_account_sid and settings.twilio_auth_token:
        account = TwilioAccount(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            settings.public_url,
            api_base_url=settings.twilio_api_base_url,
        )
        sid = settings.twilio_account_sid
        default = _rate(env, "CITYBOT_TWILIO_SEND_RATE", 10.0)
        if settings.twilio_sms_from:
            sender = settings.twilio_sms_from
            channels["sms"] = SmsChannel(
                account,
                sender,
                http=http,
                pacer=pacer(f"twilio:{sid}:{sender}", _rate(env, "TWILIO_SMS_MPS", default), None),
            )
        if settings.twilio_whatsapp_from:
            sender = settings.twilio_whatsapp_from.removeprefix("whatsapp:")
            mps = _rate(env, "TWILIO_WHATSAPP_MPS", default * 2)
            channels["whatsapp"] = WhatsAppChannel(
                account,
                settings.twilio_whatsapp_from,
                templates=_templates(env),
                last_inbound=_last_inbound(sessions, "whatsapp") if sessions else None,
                http=http,
                pacer=pacer(f"twilio:{sid}:whatsapp:{sender}", mps, 1.0),
            )
    if settings.ussd_service_code and settings.ussd_webhook_secret:
        channels["ussd"] = _ussd(settings, channels.get("sms"))
    return channels


def _ussd(settings: Settings, sms_channel: BaseChannel | None) -> UssdChannel:
    """The USSD channel; its follow-up SMS go by the city's Twilio SMS number where there is
    one (one sender residents know, one opt-out list), else by Africa's Talking SMS."""
    at_sms = None
    if settings.africastalking_username and settings.africastalking_api_key:
        at_sms = AfricasTalkingSms(
            settings.africastalking_username,
            settings.africastalking_api_key,
            sender_id=settings.africastalking_sms_from,
        )
    assert settings.ussd_service_code and settings.ussd_webhook_secret
    return UssdChannel(
        settings.ussd_service_code,
        settings.ussd_webhook_secret,
        allowed=settings.ussd_allowed_ips,
        sms=at_sms,
        sms_channel=sms_channel,
    )


def check_channel_env(env: Mapping[str, str] = os.environ) -> None:
    """``ConfigError`` naming the first sending setting that cannot be used, whether or not its
    channel is on: a typo is found at start, not when the channel is configured later."""
    for name in (
        "CITYBOT_TELEGRAM_SEND_RATE",
        "CITYBOT_TWILIO_SEND_RATE",
        "TWILIO_SMS_MPS",
        "TWILIO_WHATSAPP_MPS",
    ):
        _rate(env, name, 1.0)
    _jitter(env)
    _templates(env)


def _rate(env: Mapping[str, str], name: str, default: float) -> float:
    try:
        value = float(env.get(name, "") or default)
    except ValueError:
        raise ConfigError(f"{name} must be a number of messages per second") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive")
    return value


def _jitter(env: Mapping[str, str]) -> float:
    raw = env.get("CITYBOT_PACING_JITTER_MS", "").strip()
    if not raw:
        return DEFAULT_JITTER_ALLOWANCE
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError("CITYBOT_PACING_JITTER_MS must be a number of milliseconds") from None
    if not 0 <= value <= 500:
        raise ConfigError("CITYBOT_PACING_JITTER_MS must be between 0 and 500")
    return value / 1000


def _templates(env: Mapping[str, str]) -> dict[str, str]:
    raw = env.get("TWILIO_WHATSAPP_TEMPLATES", "").strip()
    if not raw:
        return {}
    try:
        loaded = json.loads(raw)
    except ValueError:
        raise ConfigError("TWILIO_WHATSAPP_TEMPLATES must be a JSON object") from None
    if not isinstance(loaded, dict) or not all(isinstance(v, str) for v in loaded.values()):
        raise ConfigError(
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
