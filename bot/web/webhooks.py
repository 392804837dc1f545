"""Provider webhooks: Telegram, Twilio SMS, Twilio WhatsApp, Twilio delivery receipts and USSD.

Each route only translates: the aiohttp request becomes a ``ChannelRequest``; the channel verifies
it (403, nothing stored) and parses it (400 with the reason); each message goes through the turn
loop; the reply is rendered by the channel and sent afterwards (``notifier.replies``).

When the provider is acknowledged (the choice that keeps messages from being lost): only after
the turn is durably recorded. The turn loop commits the dedupe marker, the state and the message
log (and, with Redis, the reply on the reply stream) before ``handle_inbound`` returns, which
takes milliseconds, so the route waits for it and only then answers 200 (Telegram) or an empty
TwiML ``<Response/>`` (Twilio). If the turn fails, the route answers 503/500 and the provider
redelivers the same update_id / MessageSid, which the dedupe marker lets through because it was
never committed; a redelivery of a turn that did commit is answered 200 and processed no
further. Twilio only redelivers when the webhook URL asks for it (``...#rc=3&rt=5000``
connection overrides), so set that on the number.

The channels (built from ``Settings`` by ``bot.bootstrap``) and the reply sender come from
``Services``; the notifier uses the same channels and their pacers.

USSD is answered in the response itself (``text/plain`` ``CON ...``/``END ...``): the route
hands the gateway's request to the dialogue (``bot.ussd``) and returns its screen.

Example::

    add_routes(app, services)   # POST /webhooks/telegram, /webhooks/twilio/{sms,whatsapp,status},
                                # POST /webhooks/ussd/{secret}
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from aiohttp import web

from bot.inbound import run_turn
from bot.services import Services
from bot.web.errors import json_error, unavailable_errors
from channels.base import BadRequest, BaseChannel, ChannelRequest, ForbiddenRequest
from channels.telegram import TelegramChannel
from channels.twilio_common import parse_receipt, verify_twilio_signature
from channels.types import InboundMessage
from notifier.delivery_log import apply_receipt
from notifier.replies import ReplySender

__all__ = ["EMPTY_TWIML", "add_routes", "run_turns", "to_channel_request"]

log = logging.getLogger("citybot.webhooks")

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


async def to_channel_request(request: web.Request) -> ChannelRequest:
    """The aiohttp request as the channels see it (body read; form fields decoded for Twilio).

    ``BadRequest`` when the form cannot be decoded (bytes that are not in its charset, or a
    charset Python does not know): anyone can send that, before any signature is checked.
    """
    body = await request.read()
    form: dict[str, str] = {}
    if request.content_type == "application/x-www-form-urlencoded":
        try:
            posted = await request.post()
        except (ValueError, LookupError) as exc:  # UnicodeDecodeError is a ValueError
            raise BadRequest(f"the form cannot be decoded ({type(exc).__name__})") from None
        for key, value in posted.items():
            if isinstance(value, str):
                form.setdefault(key, value)
    return ChannelRequest(
        method=request.method,
        # The path and query exactly as received (what Twilio signed), without yarl's parse.
        url=f"{request.scheme}://{request.host}{request.raw_path}",
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
    """Run the turns of one verified, parsed request and see that the replies are sent.

    The webhook routes and the Telegram long poller (``bot.telegram_polling``) share it, so a
    message takes the same path however it arrived. Raises what the turn raises (a store that is
    down): nothing is then recorded, and the same request may be run again.
    """
    for inbound in messages:
        await run_turn(services, sender, channel, inbound)
    if isinstance(channel, TelegramChannel) and channel.may_need_acknowledging(request):
        sender.spawn(channel.acknowledge(request))


def add_routes(app: web.Application, services: Services) -> None:
    """Register the provider webhooks on ``app``; channels without credentials answer 404."""
    settings = services.settings
    sender = services.replies.sender

    async def handle(
        request: web.Request, name: str, answer: Callable[[], web.Response]
    ) -> web.Response:
        channel = services.channels.get(name)
        if channel is None:
            return json_error(404, f"the {name} channel is not configured")
        try:
            creq = await to_channel_request(request)
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
        try:
            creq = await to_channel_request(request)
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

    dialogue = services.ussd

    async def ussd(request: web.Request) -> web.Response:
        if dialogue is None:
            return json_error(404, "the ussd channel is not configured")
        try:
            creq = await to_channel_request(request)
            dialogue.channel.verify(creq)
            dialogue.channel.verify_source(request.remote)
            hit = dialogue.channel.parse_hit(creq)
        except ForbiddenRequest as exc:
            log.warning("webhook refused", extra={"channel": "ussd", "reason": str(exc)})
            return json_error(403, str(exc))
        except BadRequest as exc:
            return json_error(400, str(exc))
        try:
            screen = await dialogue.answer(hit)
        except unavailable_errors() as exc:
            log.warning("webhook deferred: store unavailable", extra={"error": type(exc).__name__})
            return json_error(503, "the service is briefly unavailable; dial again")
        return web.Response(text=screen, content_type="text/plain")

    app.router.add_post("/webhooks/telegram", telegram)
    app.router.add_post("/webhooks/twilio/sms", sms)
    app.router.add_post("/webhooks/twilio/whatsapp", whatsapp)
    app.router.add_post("/webhooks/twilio/status", status)
    app.router.add_post("/webhooks/ussd/{secret}", ussd)
