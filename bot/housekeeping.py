"""Housekeeping worker: forget what the city promised to forget, on time.

Every ``interval`` seconds it clears the text of message-log rows older than the retention
setting (the row stays, so message counts stay right) and drops dedupe markers old enough that no
provider still retries them. Both statements are idempotent, so several workers may run it.

Example::

    purged = await purge_expired(services)      # {"message_texts": 120, "dedupe_markers": 3400}
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import update

from bot.app import register_worker
from bot.db.models import MessageLog
from bot.db.types import utc_now
from bot.services import Services
from conversations.dedupe import SqlDedupe

__all__ = ["DEDUPE_KEEP", "purge_expired", "run_housekeeping"]

# Providers retry for hours at most (Twilio, Telegram); the design promises at least 24 h.
DEDUPE_KEEP = timedelta(days=3)
INTERVAL_SECONDS = 3600.0

log = logging.getLogger("citybot.housekeeping")


async def purge_expired(services: Services) -> dict[str, int]:
    now = utc_now()
    text_cutoff = now - timedelta(days=services.settings.message_retention_days)
    async with services.session_factory() as session, session.begin():
        texts = await session.execute(
            update(MessageLog)
            .where(MessageLog.created_at < text_cutoff, MessageLog.text.is_not(None))
            .values(text=None)
        )
    markers = await SqlDedupe(services.session_factory).purge(now, keep=DEDUPE_KEEP)
    return {"message_texts": _count(texts), "dedupe_markers": markers}


def _count(result: object) -> int:
    rowcount = getattr(result, "rowcount", 0)
    return int(rowcount) if isinstance(rowcount, int) and rowcount > 0 else 0


async def run_housekeeping(services: Services, interval: float = INTERVAL_SECONDS) -> None:
    while True:
        purged = await purge_expired(services)
        if any(purged.values()):
            log.info("purged expired data", extra=purged)
        await asyncio.sleep(interval)


register_worker("housekeeping", run_housekeeping)
