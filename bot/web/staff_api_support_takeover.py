"""The admin API's support endpoints for what staff start themselves: finding a resident's
conversations by a report's reference, taking one over although the resident never asked, and
reopening a WhatsApp conversation after its 24-hour window with an approved template.

Thin handlers over ``staff.support_takeover`` and ``staff.support``. What the resident is told
(a person has joined; the template) goes through the notification outbox in the same commit as
the ticket (``bot.support_outbox``): in order, paced, with receipts.

Example::

    GET  /api/v1/support/conversations?reference=CT-7KQ4XM
    POST /api/v1/support/conversations/31/takeover      -> 201 the ticket, held by the caller
    POST /api/v1/support/tickets/12/template {"template": "support_reopen"}
"""

from __future__ import annotations

from typing import Any

from bot.support_outbox import reopening_templates, tell_resident
from bot.web import staff_api_schemas as schemas
from bot.web.staff_api_support import TICKET, ticket_json
from bot.web.staff_api_table import Call, Endpoint, Field
from channels.whatsapp import WhatsAppChannel
from conversations.keys import ConversationKey
from staff import support, support_takeover
from staff.roles import Permission
from storage.models import ResidentAddress
from storage.types import utc_now

__all__ = ["ENDPOINTS", "templates_of"]

_ID = "{id:[^/]{1,40}}"


def templates_of(call: Call) -> list[str]:
    """The approved WhatsApp templates an agent may reopen a conversation with."""
    channel = call.services.channels.get("whatsapp")
    if not isinstance(channel, WhatsAppChannel):
        return []
    return reopening_templates(channel.templates)


def _mask(address: str) -> str:
    bare = address.removeprefix("whatsapp:")
    return "*" * max(0, len(bare) - 4) + bare[-4:]


async def find_conversations(call: Call) -> dict[str, Any]:
    async with call.services.session_factory() as session, session.begin():
        found = await support_takeover.find_conversations(
            session, call.identity, call.query.get("reference") or "", address=call.address
        )
    return {
        "items": [
            {
                "conversation_id": c.address_id,
                "channel": c.channel,
                "address_masked": _mask(c.address),
                "language": c.language,
                "last_inbound_at": c.last_inbound_at,
                "opted_out": c.opted_out,
                "open_ticket_id": c.open_ticket_id,
            }
            for c in found
        ],
        "next_cursor": None,
    }


async def take_over(call: Call) -> dict[str, Any]:
    now = utc_now()
    services = call.services
    # The form the resident is in, if any, is the ticket's topic (what the queue filters by).
    # Read before the transaction: the state store may be the same SQLite file.
    async with services.session_factory() as session:
        reach = await session.get(ResidentAddress, call.path_id())
    topic = None
    if reach is not None:
        key = ConversationKey(reach.channel, reach.address)
        form = ((await services.turn_loop.states.get(key)) or {}).get("form") or {}
        topic = form.get("form")
    async with services.session_factory() as session, session.begin():
        ticket, notice = await support_takeover.take_over(
            session,
            call.identity,
            call.path_id(),
            now=now,
            limit=services.settings.support_agent_limit,
            topic=topic,
            address=call.address,
        )
        await tell_resident(session, ticket, notice, now=now)
        return ticket_json(ticket)


async def send_template(call: Call) -> dict[str, Any]:
    now = utc_now()
    template = str(call.body["template"])
    async with call.services.session_factory() as session, session.begin():
        ticket, text = await support.reopen(
            session,
            call.identity,
            call.path_id(),
            template,
            templates=templates_of(call),
            now=now,
            address=call.address,
        )
        await tell_resident(session, ticket, text, now=now, template=template)
        return ticket_json(ticket)


S, NS, INT, NTIME = schemas.S, schemas.NS, schemas.INT, schemas.NTIME
CONVERSATION = schemas.obj(
    conversation_id=INT,
    channel=S,
    address_masked=S,
    language=S,
    last_inbound_at=NTIME,
    opted_out={"type": "boolean"},
    open_ticket_id={"type": ["integer", "null"]},
)
_P = Permission

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "GET",
        "/support/conversations",
        "findConversations",
        "The conversations (one per channel) of the resident who made a report (audited)",
        find_conversations,
        permission=_P.VIEW_QUEUE,
        scope="ward",
        tag="support",
        answer=schemas.paged(CONVERSATION),
        refusals={404: "no report has that reference"},
        query=(
            Field(
                "reference",
                "string",
                "a report's reference, like CT-7KQ4XM",
                required=True,
                max_length=16,
            ),
        ),
    ),
    Endpoint(
        "POST",
        f"/support/conversations/{_ID}/takeover",
        "takeOverConversation",
        "Take a conversation over although the resident never asked: it is yours at once, the "
        "bot falls silent and the resident is told a person has joined",
        take_over,
        permission=_P.TAKE_OVER,
        scope="ward",
        tag="support",
        answer=TICKET,
        status=201,
        refusals={
            409: "the resident opted out, the conversation is open already, or you hold your "
            "limit of conversations"
        },
    ),
    Endpoint(
        "POST",
        f"/support/tickets/{_ID}/template",
        "sendTemplate",
        "Reopen a WhatsApp conversation after 24 hours with an approved template (yours only)",
        send_template,
        permission=_P.TAKE_OVER,
        scope="ward",
        tag="support",
        answer=TICKET,
        body=(
            Field(
                "template",
                "string",
                "the approved template (its TWILIO_WHATSAPP_TEMPLATES key)",
                required=True,
                max_length=100,
            ),
        ),
    ),
)
