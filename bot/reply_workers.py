"""Sending residents' replies: the app's ``Replies`` (sender, delivery log, stream readers), and
the ``replies`` worker that lets ``citybot worker`` processes send them too.

With Redis, each turn commits its reply on its channel's stream (``notifier.replies``); any
process that reads the streams in the consumer group may send it. A ``citybot serve`` process
reads them for its webhooks' sake; a ``citybot worker`` process reads them through the
``replies`` worker, so replies still go out while every web process is being restarted, and
more workers can be added when sending is the bottleneck. One process never reads twice: the
worker stands aside where the webhook routes already read.

Example::

    replies = Replies.build(services)      # readers only with Redis
    replies.start()
    ...
    await replies.stop(timeout=10)         # what was taken is finished or left for a claim
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from bot.app import register_worker
from bot.filing_workers import ensure_channels
from bot.services import Services
from conversations.sql_batch import SqlBatcher
from notifier.delivery_log import Sent, write_deliveries
from notifier.replies import ReplySender, ReplyStream

__all__ = ["Replies", "run_replies"]

log = logging.getLogger("citybot.replies")


@dataclass
class Replies:
    sender: ReplySender
    deliveries: SqlBatcher[Sent, None]

    @classmethod
    def build(cls, services: Services) -> Replies:
        """A sender whose delivery rows share commits, reading the reply streams with Redis."""
        deliveries: SqlBatcher[Sent, None] = SqlBatcher(
            services.engine, write_deliveries, name="deliveries"
        )
        sender = ReplySender(record=deliveries.submit)
        prefix = services.turn_loop.reply_stream
        sender.queues_in_turn = services.redis is not None and prefix is not None
        if services.redis is not None and prefix is not None and services.settings.send_replies:
            # One stream per provider channel (the web chat answers in its HTTP response).
            sender.streams = [
                ReplyStream(
                    services.redis,
                    prefix,
                    channel,
                    sender,
                    claim_idle=services.settings.reply_claim_seconds,
                )
                for name, channel in services.channels.items()
                if name != "webchat"
            ]
            services.reads_replies = True
        return cls(sender, deliveries)

    def start(self) -> None:
        for stream in self.sender.streams:
            stream.start()

    async def stop(self, timeout: float) -> None:
        """Take no more; finish what was taken within ``timeout``; the rest stays queued."""
        streams = self.sender.streams
        for stream in streams:
            await stream.stop()
        if not await self.sender.drain(timeout, queued=False):
            log.warning(
                "shutdown: replies still being sent after the timeout; "
                + ("they stay queued for the next process" if streams else "they are dropped"),
                extra={"replies": self.sender.pending},
            )
            await self.sender.cancel()  # before the channels close under them
        for stream in streams:
            await stream.close()
        await self.deliveries.close()


async def run_replies(services: Services) -> None:
    """The ``replies`` worker: read the reply streams where nothing in this process does."""
    if (
        services.reads_replies
        or not services.settings.send_replies
        or services.redis is None
        or services.turn_loop.reply_stream is None
    ):
        # The webhook routes read them here, this process was told to leave them to others,
        # or replies are not queued at all.
        return
    await ensure_channels(services)
    replies = Replies.build(services)
    replies.start()
    try:
        await asyncio.Event().wait()  # until the supervisor cancels the worker
    finally:
        await asyncio.shield(replies.stop(services.settings.shutdown_timeout))


register_worker("replies", run_replies)
