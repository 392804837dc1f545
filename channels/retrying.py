"""Send one message through a channel, waiting out rate limits and retrying provider outages.

``BaseChannel.send`` never raises: it reports what happened in a ``Delivery``. This wraps it with
the policy every caller wants: pace first, wait the "retry after" a provider names (429), back off
and retry when the provider is down (5xx, connection refused), and stop at once for a resident who
is unreachable (blocked the bot, opted out at the provider).

Example::

    delivery = await send_with_retries(channel, message, pacer=channel.pacer)
    if delivery.status is DeliveryStatus.UNREACHABLE:
        await mark_unreachable(message.channel, message.address)
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence

from channels.base import BaseChannel
from channels.pacing import BasePacer, Lane
from channels.types import Delivery, DeliveryStatus, OutboundMessage

__all__ = ["DEFAULT_BACKOFF", "PROVIDER_DOWN", "send_with_retries"]

# ``Delivery.error_code`` of a failure worth retrying: 5xx, timeout, connection refused.
# Any other failure (a 4xx such as an invalid number) would fail the same way again.
PROVIDER_DOWN = "provider_down"

# Seconds between attempts while a provider is down; the last value repeats until attempts run out.
DEFAULT_BACKOFF: tuple[float, ...] = (0.5, 2.0, 5.0, 15.0, 30.0, 60.0)


async def send_with_retries(
    channel: BaseChannel,
    message: OutboundMessage,
    *,
    pacer: BasePacer | None = None,
    lane: Lane = Lane.REPLY,
    attempts: int = 8,
    backoff: Sequence[float] = DEFAULT_BACKOFF,
    max_retry_after: float = 300.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Delivery:
    """Deliver ``message``; return the final ``Delivery`` (SENT, UNREACHABLE or the last failure).

    ``lane`` tells the pacer whether a resident is waiting (``REPLY``) or not (``BULK``: status
    updates, broadcasts), so bulk sends yield to replies.
    """
    delivery = Delivery(status=DeliveryStatus.FAILED, error="not attempted")
    for attempt in range(attempts):
        if pacer is not None:
            await pacer.wait(message.address, lane)
        delivery = await channel.send(message)
        if delivery.status is DeliveryStatus.RATE_LIMITED:
            wait = min(delivery.retry_after or 1.0, max_retry_after)
            if pacer is not None:
                # The whole account is over its limit, not this resident: every sender of it
                # (every process, with a shared pacer) waits, then books its slot again.
                await pacer.hold(wait)
            else:
                await sleep(wait)
            continue
        if delivery.status is not DeliveryStatus.FAILED:
            return delivery
        if delivery.error_code != PROVIDER_DOWN:
            return delivery
        if attempt + 1 < attempts:
            base = backoff[min(attempt, len(backoff) - 1)] if backoff else 0.0
            # Jitter spreads the retries of many messages that failed at the same moment.
            await sleep(base * (0.8 + 0.4 * random.random()))
    return delivery
