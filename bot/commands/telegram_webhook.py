"""``citybot telegram set-webhook``: tell Telegram where to deliver updates, with the secret.

Registers ``CITYBOT_PUBLIC_URL`` + ``/webhooks/telegram`` with ``TELEGRAM_WEBHOOK_SECRET``, which
Telegram then sends in ``X-Telegram-Bot-Api-Secret-Token`` on every update (the webhook refuses
updates without it). ``TELEGRAM_API_BASE_URL`` points it at another Bot API server (tests).

Exit status: 0 registered, 1 Telegram refused or could not be reached, 2 settings missing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from bot.commands.lifecycle import settings_or_none
from bot.config import Settings
from channels.telegram import TelegramChannel, WebhookRefused

__all__ = ["WEBHOOK_PATH", "run", "set_webhook"]

WEBHOOK_PATH = "/webhooks/telegram"


def run(args: argparse.Namespace) -> int:
    settings = settings_or_none("citybot")
    if settings is None:
        return 2
    return asyncio.run(set_webhook(settings))


async def set_webhook(settings: Settings) -> int:
    if not settings.telegram_bot_token or not settings.telegram_webhook_secret:
        print(
            "citybot: set TELEGRAM_BOT_TOKEN and TELEGRAM_WEBHOOK_SECRET first "
            "(the secret is any string of 1-256 characters A-Z, a-z, 0-9, _ and -)",
            file=sys.stderr,
        )
        return 2
    url = settings.public_url.rstrip("/") + WEBHOOK_PATH
    if not url.startswith("https://"):
        print(
            f"citybot: note: Telegram only delivers to https URLs; {url} is not one",
            file=sys.stderr,
        )
    channel = TelegramChannel(
        settings.telegram_bot_token,
        settings.telegram_webhook_secret,
        api_base_url=settings.telegram_api_base_url,
    )
    try:
        await channel.set_webhook(url)
    except WebhookRefused as exc:
        print(f"citybot: Telegram refused the webhook: {exc}", file=sys.stderr)
        return 1
    finally:
        await channel.close()
    print(f"Telegram webhook set: {url}")
    return 0
