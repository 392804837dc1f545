"""Provider webhooks: Telegram, Twilio SMS, Twilio WhatsApp and Twilio delivery receipts.

Each route only translates: the aiohttp request becomes a ``ChannelRequest``; the channel verifies
it (403, nothing stored) and parses it (400 with the reason); each message goes through the turn
loop; the reply is rendered by the channel and sent in the background.

When the provider is acknowledged (the choice that keeps messages from being lost): only after
the turn is durably recorded. The turn loop commits the dedupe marker, the state and the message
log before ``handle_inbound`` returns, which takes milliseconds, so the route waits for it and
only then answers 200 (Telegram) or an empty TwiML ``<Response/>`` (Twilio). If the turn fails,
the route answers 503/500 and the provider redelivers the same update_id / MessageSid, which the
dedupe marker lets through because it was never committed; a redelivery of a turn that did
commit is answered 200 and processed no further. Twilio only redelivers when the webhook URL
asks for it (``...#rc=3&rt=5000`` connection overrides), so set that on the number.

Replies are not sent while the provider waits: sending takes a round trip to the provider and
may need to wait out a 429 or an outage. ``ReplySender`` sends them in background tasks that it
keeps references to, one chain per resident (so replies keep their order), paced per channel,
retried with back-off while the provider is down, and drained on shutdown. Each sent message is
written to the message log with the provider's id, which delivery receipts update later.

Wiring (``bot/app.py``): add ``"bot.web.webhooks:add_routes"`` to ``ROUTE_PROVIDERS``. The
channels are built from ``Settings`` (a channel without credentials stays off and its route
answers 404); ``services.channels`` gets them, so the notifier can reuse them and their pacers.

Example::

    add_routes(app, services)   # POST /webhooks/telegram, /webhooks/twilio/{sms,whatsapp,status}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime

from aiohttp import web
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.db.models import MessageLog, Resident, ResidentAddress
from bot.services import Services
from bot.web.errors import json_error, unavailable_errors
from channels.base import BadRequest, BaseChannel, ChannelRequest, ForbiddenRequest
from channels.retrying import DEFAULT_BACKOFF, send_with_retries
from channels.screening import notice_text, screen
from channels.telegram import TelegramChannel
from channels.twilio_common import (
    DeliveryReceipt,
    TwilioAccount,
    parse_receipt,
    verify_twilio_signature,
)
from channels.twilio_sms import SmsChannel
from channels.types import Delivery, DeliveryStatus, InboundMessage, OutboundMessage
from channels.whatsapp import WhatsAppChannel
from conversations.sql_batch import SqlBatcher
from forms_runtime.effects import Effect, Notice

__all__ = [
    "EMPTY_TWIML",
    "REPLY_SENDER_KEY",
    "ReplySender",
    "add_routes",
    "apply_receipt",
    "build_channels",
    "record_deliveries",
    "run_turns",
    "to_channel_request",
    "write_deliveries",
]

log = logging.getLogger("citybot.webhooks")

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
OPTED_OUT_CODE = "21610"

Sessions = async_sessionmaker[AsyncSession]


# -- channels from settings -------------------------------------------------------------------


def build_channels(
    settings: Settings,
    sessions: Sessions | None = None,
    env: Mapping[str, str] = os.environ,
) -> dict[str, BaseChannel]:
    """The provider channels the settings enable.

    Besides the contract's variables: ``TWILIO_WHATSAPP_TEMPLATES`` (JSON, message purpose ->
    Content SID), ``CITYBOT_TELEGRAM_SEND_RATE`` (messages/s, default 30) and
    ``CITYBOT_TWILIO_SEND_RATE`` (default 10 for SMS; WhatsApp twice that).
    """
    channels: dict[str, BaseChannel] = {}
    if settings.telegram_bot_token:
        channels["telegram"] = TelegramChannel(
            settings.telegram_bot_token,
            settings.telegram_webhook_secret,
            api_base_url=settings.telegram_api_base_url,
            per_second=_rate(env, "CITYBOT_TELEGRAM_SEND_RATE", 30.0),
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
            channels["sms"] = SmsChannel(account, settings.twilio_sms_from, per_second=rate)
        if settings.twilio_whatsapp_from:
            channels["whatsapp"] = WhatsAppChannel(
                account,
                settings.twilio_whatsapp_from,
                templates=_templates(env),
                last_inbound=_last_inbound(sessions, "whatsapp") if sessions else None,
                per_second=rate * 2,
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


# -- the message log: sends and receipts ------------------------------------------------------


async def record_deliveries(
    sessions: Sessions, sent: Sequence[tuple[OutboundMessage, Delivery]]
) -> None:
    """Log the messages of one reply in one transaction (one commit per reply, not per SMS)."""
    if not sent:
        return
    async with sessions() as db, db.begin():
        await write_deliveries(db, [sent])


async def write_deliveries(
    db: AsyncSession | AsyncConnection,
    replies: Sequence[Sequence[tuple[OutboundMessage, Delivery]]],
) -> list[None]:
    """Log the messages of several replies in the caller's transaction (one multi-row insert).

    ``add_routes`` hands it to a ``SqlBatcher``: during a flood the replies sent while one batch
    is in the database share the next commit, instead of one commit per reply.
    """
    now = datetime.now(UTC)
    rows = [
        {
            "direction": "out",
            "channel": message.channel,
            "address": message.address,
            "provider_message_id": delivery.provider_message_id,
            "kind": message.purpose,
            # The turn loop already logged what was said; this row tracks one provider
            # message and its receipts, so the text (personal data) is not stored twice.
            "text": None,
            "status": delivery.status.value,
            "status_updated_at": now,
            "created_at": now,
        }
        for sent in replies
        for message, delivery in sent
    ]
    if rows:
        await db.execute(insert(MessageLog), rows)
    for sent in replies:
        for message, delivery in sent:
            if delivery.status is DeliveryStatus.UNREACHABLE:
                await _mark_unreachable(
                    db,
                    message.channel,
                    message.address,
                    opted_out=delivery.error_code == OPTED_OUT_CODE,
                )
    return [None] * len(replies)


async def apply_receipt(sessions: Sessions, receipt: DeliveryReceipt) -> bool:
    """Update the logged message a receipt is about; False if no such message was logged.

    Receipts arrive out of order (``delivered`` before ``sent`` happens): a later state never
    goes back to an earlier one.
    """
    now = datetime.now(UTC)
    async with sessions() as db, db.begin():
        row = await db.scalar(
            select(MessageLog)
            .where(
                MessageLog.channel == receipt.channel,
                MessageLog.provider_message_id == receipt.provider_message_id,
                MessageLog.direction == "out",
            )
            .limit(1)
        )
        if row is not None and _rank(receipt.status.value) >= _rank(row.status):
            row.status = receipt.status.value
            row.status_updated_at = now
        if receipt.status is DeliveryStatus.UNREACHABLE:
            await _mark_unreachable(
                db, receipt.channel, receipt.address, opted_out=receipt.error_code == OPTED_OUT_CODE
            )
    return row is not None


_ORDER = ["queued", "sent", "delivered", "read"]


def _rank(status: str | None) -> int:
    # Failures are final whenever they come; unknown or missing statuses rank lowest.
    if status in ("failed", "unreachable"):
        return len(_ORDER)
    return _ORDER.index(status) if status in _ORDER else -1


async def _mark_unreachable(
    db: AsyncSession | AsyncConnection, channel: str, address: str, *, opted_out: bool
) -> None:
    now = datetime.now(UTC)
    await db.execute(
        update(ResidentAddress)
        .where(ResidentAddress.channel == channel, ResidentAddress.address == address)
        .values(unreachable_at=now)
    )
    if opted_out:
        # Twilio 21610: the resident texted STOP to the carrier; honour it everywhere.
        resident_ids = select(ResidentAddress.resident_id).where(
            ResidentAddress.channel == channel, ResidentAddress.address == address
        )
        await db.execute(
            update(Resident)
            .where(Resident.id.in_(resident_ids), Resident.opted_out_at.is_(None))
            .values(opted_out_at=now)
        )


# -- sending replies in the background --------------------------------------------------------


class ReplySender:
    """Send replies after the provider has been answered, in order per resident, never dropped.

    Example::

        sender = ReplySender(record=lambda sent: record_deliveries(sessions, sent))
        sender.schedule(channel, channel.render(effects, "en", address))
        await sender.drain(10)          # on shutdown
    """

    def __init__(
        self,
        record: Callable[[Sequence[tuple[OutboundMessage, Delivery]]], Awaitable[None]]
        | None = None,
        *,
        attempts: int = 8,
        backoff: Sequence[float] = DEFAULT_BACKOFF,
    ) -> None:
        self._record = record
        self.attempts = attempts
        self.backoff = tuple(backoff)
        self._tasks: set[asyncio.Task[None]] = set()
        # The last chain per (channel, address): a new batch waits for it, so order holds.
        self._tails: dict[tuple[str, str], asyncio.Task[None]] = {}

    def schedule(self, channel: BaseChannel, messages: Sequence[OutboundMessage]) -> None:
        if not messages:
            return
        key = (channel.name, messages[0].address)
        previous = self._tails.get(key)
        task = asyncio.create_task(self._send_all(channel, messages, previous))
        self._tasks.add(task)
        self._tails[key] = task

        def done(finished: asyncio.Task[None]) -> None:
            self._tasks.discard(finished)
            if self._tails.get(key) is finished:
                del self._tails[key]

        task.add_done_callback(done)

    async def _send_all(
        self,
        channel: BaseChannel,
        messages: Sequence[OutboundMessage],
        previous: asyncio.Task[None] | None,
    ) -> None:
        if previous is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(previous)
        pacer = getattr(channel, "pacer", None)
        sent: list[tuple[OutboundMessage, Delivery]] = []
        for message in messages:
            delivery = await send_with_retries(
                channel, message, pacer=pacer, attempts=self.attempts, backoff=self.backoff
            )
            sent.append((message, delivery))
            if delivery.status not in (DeliveryStatus.SENT, DeliveryStatus.QUEUED):
                log.warning(
                    "reply not delivered",
                    extra={
                        "channel": channel.name,
                        "status": delivery.status.value,
                        "code": delivery.error_code,
                    },
                )
            if delivery.status is DeliveryStatus.UNREACHABLE:
                break  # the rest of the reply would fail the same way
        if self._record is not None:
            try:
                await self._record(sent)
            except Exception:
                log.exception("could not log sent messages", extra={"channel": channel.name})

    def spawn(self, work: Awaitable[None]) -> None:
        """Run a small follow-up (answering a Telegram button tap) with a reference kept."""

        async def run() -> None:
            await work

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def drain(self, timeout: float) -> bool:
        """Wait for every reply in flight; False if ``timeout`` passed first."""
        if not self._tasks:
            return True
        _, still = await asyncio.wait(set(self._tasks), timeout=timeout)
        return not still


REPLY_SENDER_KEY = web.AppKey("reply_sender", ReplySender)


# -- routes ----------------------------------------------------------------------------------


async def to_channel_request(request: web.Request) -> ChannelRequest:
    """The aiohttp request as the channels see it (body read; form fields decoded for Twilio)."""
    body = await request.read()
    form: dict[str, str] = {}
    if request.content_type == "application/x-www-form-urlencoded":
        posted = await request.post()
        for key, value in posted.items():
            if isinstance(value, str):
                form.setdefault(key, value)
    return ChannelRequest(
        method=request.method,
        url=str(request.url),
        headers=dict(request.headers),
        body=body,
        form=form,
    )


async def run_turns(
    services: Services,
    sender: ReplySender,
    channel: BaseChannel,
    request: ChannelRequest,
    messages: Sequence[InboundMessage],
) -> None:
    """Run the turns of one verified, parsed request and schedule the replies.

    The webhook routes and the Telegram long poller (``bot.telegram_polling``) share it, so a
    message takes the same path however it arrived. Raises what the turn raises (a store that is
    down): nothing is then recorded, and the same request may be run again.
    """
    for inbound in messages:
        screened = screen(inbound)
        result = await services.handle_inbound(screened.message)
        if result.duplicate:
            continue
        effects: list[Effect] = list(result.effects)
        # No effects: the resident opted out (or is rate limited): say nothing, not even this.
        if screened.notice is not None and effects:
            effects.insert(0, Notice(notice_text(screened.notice, result.locale)))
        sender.schedule(channel, channel.render(effects, result.locale, inbound.address))
    if isinstance(channel, TelegramChannel) and channel.may_need_acknowledging(request):
        sender.spawn(channel.acknowledge(request))


def add_routes(app: web.Application, services: Services) -> None:
    """Register the provider webhooks on ``app``; channels without credentials answer 404."""
    settings = services.settings
    for name, channel in build_channels(settings, services.session_factory).items():
        services.channels.setdefault(name, channel)
    # The delivery rows of replies sent at about the same time share one commit.
    deliveries: SqlBatcher[Sequence[tuple[OutboundMessage, Delivery]], None] = SqlBatcher(
        services.engine, write_deliveries, name="deliveries"
    )
    sender = ReplySender(record=deliveries.submit)
    app[REPLY_SENDER_KEY] = sender

    async def handle(
        request: web.Request, name: str, answer: Callable[[], web.Response]
    ) -> web.Response:
        channel = services.channels.get(name)
        if channel is None:
            return json_error(404, f"the {name} channel is not configured")
        creq = await to_channel_request(request)
        try:
            channel.verify(creq)
            messages = channel.parse(creq)
        except ForbiddenRequest as exc:
            log.warning("webhook refused", extra={"channel": name, "reason": str(exc)})
            return json_error(403, str(exc))
        except BadRequest as exc:
            return json_error(400, str(exc))
        try:
            await run_turns(services, sender, channel, creq, messages)
        except unavailable_errors() as exc:
            # Not recorded: the provider's redelivery will be processed, not dropped as a duplicate.
            log.warning("webhook deferred: store unavailable", extra={"error": type(exc).__name__})
            return json_error(503, "the service is briefly unavailable; deliver again")
        return answer()

    def ok() -> web.Response:
        return web.Response(status=200)

    def twiml() -> web.Response:
        return web.Response(text=EMPTY_TWIML, content_type="text/xml")

    async def telegram(request: web.Request) -> web.Response:
        return await handle(request, "telegram", ok)

    async def sms(request: web.Request) -> web.Response:
        return await handle(request, "sms", twiml)

    async def whatsapp(request: web.Request) -> web.Response:
        return await handle(request, "whatsapp", twiml)

    async def status(request: web.Request) -> web.Response:
        if not (settings.twilio_account_sid and settings.twilio_auth_token):
            return json_error(404, "Twilio is not configured")
        creq = await to_channel_request(request)
        try:
            verify_twilio_signature(creq, settings.twilio_auth_token, settings.public_url)
            receipt = parse_receipt(creq)
        except ForbiddenRequest as exc:
            return json_error(403, str(exc))
        except BadRequest as exc:
            return json_error(400, str(exc))
        try:
            await apply_receipt(services.session_factory, receipt)
        except unavailable_errors():
            return json_error(503, "the service is briefly unavailable; deliver again")
        return web.Response(status=204)

    async def drain(app: web.Application) -> None:
        if not await sender.drain(settings.shutdown_timeout):
            log.warning("shutdown: replies still being sent after the timeout")
        await deliveries.close()

    app.on_shutdown.append(drain)
    app.router.add_post("/webhooks/telegram", telegram)
    app.router.add_post("/webhooks/twilio/sms", sms)
    app.router.add_post("/webhooks/twilio/whatsapp", whatsapp)
    app.router.add_post("/webhooks/twilio/status", status)
