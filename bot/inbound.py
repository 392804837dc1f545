"""One inbound message through the turn loop to its reply, whichever way it arrived.

The webhooks and the Telegram long poller (``bot.web.webhooks.run_turns``) run each message
through ``run_turn``; so does ``drain_held`` for the messages held (``conversations.held_inbound``)
over a resident's rate limit or while Redis was away, when their turn comes: the same screening,
the same turn, the same ordered, paced path for the reply.

Example::

    result = await run_turn(services, services.replies.sender, channel, inbound)
    handled = await drain_held(services)          # the "held" worker's cycle
"""

from __future__ import annotations

import logging
import time
from functools import partial

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.services import Services
from bot.web.errors import unavailable_errors
from channels.base import BaseChannel
from channels.screening import notice_text, screen
from channels.types import InboundMessage
from conversations.ports import ReplyEncoder
from conversations.turn import TurnResult
from forms_runtime.effects import Effect, Notice
from forms_runtime.i18n import normalise_locale
from notifier import reply_queue
from notifier.message_trace import MessageTrace
from notifier.replies import ReplySender
from storage.redis import outage_of

__all__ = ["drain_held", "run_turn", "turn_outcome"]

log = logging.getLogger("citybot.inbound")

# A held message whose turn failed (a store still down) is tried again after this long.
HELD_RETRY_SECONDS = 2.0


async def run_turn(
    services: Services,
    sender: ReplySender,
    channel: BaseChannel,
    inbound: InboundMessage,
    *,
    held: bool = False,
) -> TurnResult:
    """Run one message's turn and see that its reply is sent (``held``: one kept over the rate
    limit, now having its turn; see ``TurnLoop.handle``). Logged as arrived, routed and (by
    whichever process sends the reply) replied, under one trace id."""
    trace = MessageTrace.arrived(inbound.channel, held=held)
    started = time.monotonic()
    screened = screen(inbound)
    notice = screened.notice
    # The reply is committed with the turn: on the reply stream with Redis (which absorbs a
    # flood), in the database without (sent from memory here, so a flood waits for room).
    outbox = services.replies.outbox
    encoder: ReplyEncoder | None = None
    if sender.queues_in_turn or outbox is not None:
        encoder = _reply_encoder(channel, inbound.address, notice, trace)
    if not sender.queues_in_turn:
        await sender.wait_for_room(channel.name)
    try:
        result = await services.handle_inbound(screened.message, encoder, held=held)
    except (RedisConnectionError, RedisTimeoutError) as exc:
        keep = services.turn_loop.held
        if held or keep is None:
            raise
        # Redis is away: keep the message in the database (Twilio never resends an SMS we
        # refuse) and run it, in order, once Redis is back. A database that is down too
        # raises here, and the provider gets its 503. Logged once per outage, with a count.
        if services.redis is not None:
            outage_of(services.redis).failed("running a turn; messages are held", exc)
        await keep.hold(screened.message)
        trace.routed("held", turn_seconds=time.monotonic() - started)
        return TurnResult(normalise_locale(inbound.language_hint), [], held=True)
    if services.redis is not None:
        outage_of(services.redis).recovered()
    trace.routed(turn_outcome(result), turn_seconds=time.monotonic() - started)
    if not (result.duplicate or result.reply_queued):
        effects = _noticed(list(result.effects), notice, result.locale)
        row = result.pending_reply
        sender.schedule(
            channel,
            channel.render(effects, result.locale, inbound.address),
            on_done=None if row is None or outbox is None else partial(outbox.done, row),
            trace=trace,
        )
    return result


def turn_outcome(result: TurnResult) -> str:
    """How a turn ended, in a word, for the trace's ``routed`` line."""
    if result.duplicate:
        return "duplicate"
    if result.held:
        return "held"
    if result.rate_limited:
        return "rate_limited"
    if result.reply_queued:
        return "queued"
    return "answered" if result.effects else "silent"


async def drain_held(services: Services) -> int:
    """Run the turns of held messages whose residents have slowed down; how many ran."""
    held = services.turn_loop.held
    if held is None:
        return 0
    ran = 0
    taken = await held.due()
    for index, (row, message) in enumerate(taken):
        channel = services.channels.get(message.channel)
        if channel is None:
            # The channel was switched off since: nothing can answer it.
            log.warning("held message dropped: channel off", extra={"channel": message.channel})
            await held.done(row)
            continue
        try:
            result = await run_turn(services, services.replies.sender, channel, message, held=True)
        except unavailable_errors():
            # A store is still away (Redis, most likely): this conversation waits, in order,
            # and so do the others taken with it (left leased, they would wait the whole lease:
            # a minute after a Sentinel failover of two seconds).
            for later, _ in taken[index:]:
                await held.release(later, after=HELD_RETRY_SECONDS)
            break
        except Exception:
            log.exception("held message failed", extra={"channel": message.channel})
            await held.release(row, after=HELD_RETRY_SECONDS)
            continue
        if result.rate_limited:
            await held.release(row)  # still over the limit: next time
        else:
            await held.done(row)
            ran += 1
    return ran


def _reply_encoder(
    channel: BaseChannel, address: str, notice: str | None, trace: MessageTrace
) -> ReplyEncoder:
    """What the turn commits on the reply stream: the reply rendered for ``channel``, and the
    trace of the message it answers."""

    def encode(locale: str, effects: list[Effect]) -> bytes | None:
        return reply_queue.encode(
            channel.render(_noticed(effects, notice, locale), locale, address), trace
        )

    return encode


def _noticed(effects: list[Effect], notice: str | None, locale: str) -> list[Effect]:
    # No effects: the resident opted out (or is rate limited): say nothing, not even this.
    if notice is None or not effects:
        return effects
    return [Notice(notice_text(notice, locale)), *effects]
