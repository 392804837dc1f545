"""Telegram long polling, for a machine with no public URL (``citybot serve --telegram-polling``).

Instead of Telegram calling ``POST /webhooks/telegram``, this process asks for updates
(getUpdates) and runs each one through exactly the webhook's path after verification:
``channel.parse`` -> ``bot.web.webhooks.run_turns`` (screen, turn loop, render, reply sender).

- **Nothing lost, nothing doubled.** The offset (which tells Telegram an update is done) moves
  past a batch of updates only after every turn in it committed. A crash, a kill or a store
  outage before that leaves the batch with Telegram, which hands it out again; the turn loop's
  dedupe on ``tg:<update_id>`` makes a second run of a committed turn a no-op.
- **In order per resident, residents side by side:** a batch's updates are grouped by chat; each
  chat's run in order, the chats concurrently (as Telegram's concurrent webhook deliveries do). The offset is not stored:
  Telegram keeps unconfirmed updates, and a restarted poller starts from the oldest of them.
- **Store down:** the same update is retried with back-off, for as long as it takes (like a
  webhook answered 503). Any other failure is retried a few times, then the update is skipped
  and logged, so one poisoned update cannot stop every resident's messages.
- **Telegram down or limiting:** a 429 waits the ``retry_after`` Telegram names; network errors
  and 5xx back off (doubling to a minute); a 409 (a webhook was set again, or another process is
  polling) deletes the webhook and backs off.
- Any webhook is deleted before the first poll (Telegram refuses getUpdates while one is set).

Only one process may poll a bot: run ``--telegram-polling`` on one ``citybot serve`` only.
Polling starts and stops with the web app (it is an inbound path, like the webhook routes), so it
runs with ``--no-workers`` too; replies go out as the webhook's do (``notifier.replies``: with
Redis committed on the reply stream with the turn, else sent from the app's ``ReplySender``).

Example::

    poller = TelegramPoller(channel, handle=lambda request: ...)
    task = asyncio.create_task(poller.run())     # until cancelled
    poller.offset                                # the next update_id wanted
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from bot.services import Services
from bot.web.errors import unavailable_errors
from bot.web.webhooks import run_turns
from channels.base import BadRequest, ChannelRequest
from channels.telegram import PolledUpdate, PollingError, TelegramChannel

__all__ = ["TelegramPoller", "telegram_polling"]

log = logging.getLogger("citybot.telegram_polling")

# Seconds Telegram holds a getUpdates open when there is nothing to hand out.
POLL_TIMEOUT = 25.0
# Waits after a failure (the last repeats); reset by a poll that works.
BACKOFF: tuple[float, ...] = (1.0, 2.0, 5.0, 15.0, 30.0, 60.0)
# Tries of one update that fails for a reason other than a store outage before it is skipped.
ATTEMPTS_PER_UPDATE = 5

Handle = Callable[[ChannelRequest], Awaitable[None]]


class TelegramPoller:
    """getUpdates in a loop; each update handled, then confirmed by moving the offset past it.

    Example::

        poller = TelegramPoller(channel, handle, timeout=25)
        await poller.run()          # deletes the webhook, then polls until cancelled
    """

    def __init__(
        self,
        channel: TelegramChannel,
        handle: Handle,
        *,
        timeout: float = POLL_TIMEOUT,
        backoff: Sequence[float] | None = None,
        attempts_per_update: int = ATTEMPTS_PER_UPDATE,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.channel = channel
        self.handle = handle
        self.timeout = timeout
        self.backoff = tuple(BACKOFF if backoff is None else backoff)
        self.attempts_per_update = attempts_per_update
        self.offset: int | None = None
        self._failures = 0
        self._on_error = on_error or (lambda where: None)

    async def run(self) -> None:
        await self._delete_webhook()
        while True:
            await self.run_once()

    async def run_once(self) -> int:
        """One getUpdates and every update it returned; how many updates were handled.

        Each chat's updates run in order; different chats run side by side, as webhook
        deliveries do. The offset moves past the batch once every update in it is done.
        """
        try:
            updates = await self.channel.poll(self.offset, self.timeout)
        except PollingError as exc:
            await self._poll_failed(exc)
            return 0
        self._failures = 0
        chats: dict[str, list[PolledUpdate]] = {}
        for update in updates:
            if self.offset is None or update.update_id >= self.offset:
                chats.setdefault(update.chat, []).append(update)
        await asyncio.gather(*(self._handle_in_order(chat) for chat in chats.values()))
        if updates:
            self.offset = max(update.update_id for update in updates) + 1
        return len(updates)

    async def _handle_in_order(self, updates: Sequence[PolledUpdate]) -> None:
        for update in updates:
            await self._handle(update)

    async def _handle(self, update: PolledUpdate) -> None:
        """Run one update until its turn commits; returns only then (or when it is skipped)."""
        attempt = 0
        while True:
            try:
                await self.handle(update.request)
                return
            except BadRequest as exc:
                # A malformed update stays malformed: confirm it, or it blocks every other one.
                log.warning("telegram update skipped: %s", exc, extra={"update": update.update_id})
                return
            except unavailable_errors() as exc:
                # Not committed: retried for as long as the store is down, never skipped.
                self._on_error("telegram_polling:store")
                log.warning(
                    "telegram update deferred: store unavailable",
                    extra={"update": update.update_id, "error": type(exc).__name__},
                )
            except Exception:
                attempt += 1
                self._on_error("telegram_polling:turn")
                if attempt >= self.attempts_per_update:
                    log.exception(
                        "telegram update skipped after %d failures",
                        attempt,
                        extra={"update": update.update_id},
                    )
                    return
                log.warning("telegram update failed; retrying", exc_info=True)
            await asyncio.sleep(self._delay(attempt))

    async def _poll_failed(self, exc: PollingError) -> None:
        self._on_error("telegram_polling:poll")
        if exc.retry_after is not None:
            log.warning("getUpdates rate limited; waiting %.1f s", exc.retry_after)
            await asyncio.sleep(exc.retry_after)
            return
        self._failures += 1
        delay = self.backoff[-1] if exc.refused else self._delay(self._failures - 1)
        log.warning("getUpdates failed (%s); retrying in %.1f s", exc, delay)
        await asyncio.sleep(delay)
        if exc.conflict:
            # A webhook was set again (or another process polls): take the updates back.
            await self._delete_webhook()

    async def _delete_webhook(self) -> None:
        failures = 0
        while True:
            try:
                await self.channel.delete_webhook()
                return
            except PollingError as exc:
                self._on_error("telegram_polling:delete_webhook")
                delay = exc.retry_after if exc.retry_after is not None else self._delay(failures)
                failures += 1
                log.warning("deleteWebhook failed (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)

    def _delay(self, failures: int) -> float:
        return self.backoff[min(failures, len(self.backoff) - 1)]


@contextlib.asynccontextmanager
async def telegram_polling(services: Services) -> AsyncIterator[TelegramPoller | None]:
    """With ``settings.telegram_polling`` and a Telegram channel: poll while the block runs
    (yields the poller; None when polling is off). Leaving the block stops polling first, so no
    new turn starts once replies are being drained; a turn in flight is shielded
    (``Services.handle_inbound``) and still commits."""
    channel = services.channels.get("telegram")
    if not services.settings.telegram_polling:
        yield None
        return
    if not isinstance(channel, TelegramChannel):
        log.warning("--telegram-polling without TELEGRAM_BOT_TOKEN: nothing to poll")
        yield None
        return
    telegram: TelegramChannel = channel
    sender = services.replies.sender

    async def handle(request: ChannelRequest) -> None:
        await run_turns(services, sender, telegram, request, telegram.parse(request))

    def count(where: str) -> None:
        services.metrics.errors.labels(where=where).inc()

    poller = TelegramPoller(telegram, handle, on_error=count)
    task = asyncio.create_task(poller.run(), name="telegram-polling")
    task.add_done_callback(_report_end)
    try:
        yield poller
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _report_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("telegram polling stopped", exc_info=task.exception())
