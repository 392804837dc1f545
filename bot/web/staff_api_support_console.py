"""The admin API's support endpoints that the console's pages stand on, beside the takeover
itself (``staff_api_support``): a conversation's context (the resident's messages on every
channel, the open form's answers, what the channel allows), the SMS cost of a draft reply,
canned responses per language, and each agent's load for supervisors.

Thin handlers over ``staff.support_context`` and ``staff.canned_responses``.

Example::

    GET  /api/v1/support/tickets/12/context
    POST /api/v1/support/sms-count {"text": "Molo, ..."}   -> {"segments": 1, "encoding": "GSM-7"}
    GET  /api/v1/support/canned-responses?offer=zu
    POST /api/v1/support/canned-responses {"name": "greeting", "language": "zu", "text": "..."}
    GET  /api/v1/support/agents
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from bot.support_outbox import reopening_templates
from bot.web import staff_api_schemas as schemas
from bot.web.staff_api_support import AGENT_PURPOSE
from bot.web.staff_api_table import Call, Endpoint, Field
from channels.sms_render import split_for_sms
from channels.whatsapp import SESSION_WINDOW, WhatsAppChannel
from conversations.keys import ConversationKey
from forms_runtime.sms import encoding, segments
from staff import audit, canned_responses, support_context
from staff.roles import Permission
from storage.models import CannedResponse, ResidentAddress, SupportTicket
from storage.types import utc_now

__all__ = ["ENDPOINTS"]

_ID = "{id:[^/]{1,40}}"
# The segments an SMS message may take before the channel splits it (channels.twilio_sms).
_SMS_SEGMENTS = 3


async def _channel(call: Call, ticket: SupportTicket, now: datetime) -> dict[str, Any]:
    """What the resident's channel allows an agent: length, SMS segments, WhatsApp's window."""
    channel = call.services.channels.get(ticket.channel)
    caps = channel.capabilities if channel is not None else None
    shown: dict[str, Any] = {
        "name": ticket.channel,
        "configured": channel is not None,
        "max_length": caps.max_length if caps else None,
        "sms_segments": (caps.sms_segments or None) if caps else None,
        "window_open": None,
        "window_closes_at": None,
        "template_available": None,
        "templates": [],
    }
    if isinstance(channel, WhatsAppChannel) and ticket.resident_id is not None:
        async with call.services.session_factory() as session:
            last = await session.scalar(
                select(ResidentAddress.last_inbound_at).where(
                    ResidentAddress.resident_id == ticket.resident_id,
                    ResidentAddress.channel == ticket.channel,
                )
            )
        closes = last + SESSION_WINDOW if last is not None else None
        shown["window_open"] = closes is not None and now < closes
        shown["window_closes_at"] = closes
        shown["template_available"] = AGENT_PURPOSE in channel.templates
        # What the agent may reopen a closed window with (as a broadcast chooses its template).
        shown["templates"] = reopening_templates(channel.templates)
    return shown


async def get_context(call: Call) -> dict[str, Any]:
    now = utc_now()
    async with call.services.session_factory() as session, session.begin():
        ticket = await support_context.visible_ticket(session, call.identity, call.path_id())
        lines = await support_context.history(session, ticket)
        await audit.record(
            session,
            actor=call.identity.actor,
            action="support.context",
            target=f"ticket:{ticket.id}",
            address=call.address,
        )
    envelope = None
    if ticket.address:
        key = ConversationKey(ticket.channel, ticket.address)
        envelope = await call.services.turn_loop.states.get(key)
    form = support_context.form_answers(call.services.turn_loop.forms, envelope)
    return {
        "history": lines,
        "form": None
        if form is None
        else {"id": form.form, "title": form.title, "answers": form.answers},
        "channel": await _channel(call, ticket, now),
    }


async def count_sms(call: Call) -> dict[str, Any]:
    # What the SMS channel will send: typographic characters made GSM-7 where they can be,
    # then split into messages of at most a few segments each.
    text = str(call.body["text"]).strip()
    if not text:
        return {"characters": 0, "encoding": "GSM-7", "segments": 0, "messages": 0}
    messages = split_for_sms(text, max_segments=_SMS_SEGMENTS)
    sent = "".join(messages)
    return {
        "characters": len(sent),
        "encoding": encoding(sent),
        "segments": sum(segments(m) for m in messages),
        "messages": len(messages),
    }


def _canned(row: CannedResponse) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "language": row.locale,
        "text": row.text,
        "updated_at": row.updated_at,
        "updated_by": row.updated_by,
    }


async def list_canned(call: Call) -> dict[str, Any]:
    async with call.services.session_factory() as session:
        offer = call.query.get("offer")
        if offer:
            rows = await canned_responses.for_language(session, offer)
        else:
            rows = await canned_responses.listed(session, language=call.query.get("language"))
    return {"items": [_canned(r) for r in rows], "next_cursor": None}


async def create_canned(call: Call) -> dict[str, Any]:
    b = call.body
    async with call.services.session_factory() as session, session.begin():
        row = await canned_responses.create(
            session, call.identity, b["name"], b["language"], b["text"], address=call.address
        )
        return _canned(row)


async def change_canned(call: Call) -> dict[str, Any]:
    async with call.services.session_factory() as session, session.begin():
        row = await canned_responses.update(
            session, call.identity, call.path_id(), call.body["text"], address=call.address
        )
        return _canned(row)


async def delete_canned(call: Call) -> dict[str, Any]:
    async with call.services.session_factory() as session, session.begin():
        row = await canned_responses.delete(
            session, call.identity, call.path_id(), address=call.address
        )
        return _canned(row)


async def list_agents(call: Call) -> dict[str, Any]:
    async with call.services.session_factory() as session:
        loads = await support_context.agent_loads(session, call.identity)
    return {
        "items": [
            {
                "account_id": a.account_id,
                "name": a.name,
                "email": a.email,
                "roles": a.roles,
                "languages": a.languages,
                "held": a.held,
                "last_claim": a.last_claim,
            }
            for a in loads
        ],
        "next_cursor": None,
    }


S, NS, INT, TIME, NTIME = schemas.S, schemas.NS, schemas.INT, schemas.TIME, schemas.NTIME
NINT: dict[str, Any] = {"type": ["integer", "null"]}
NBOOL: dict[str, Any] = {"type": ["boolean", "null"]}
CANNED = schemas.obj(id=INT, name=S, language=S, text=S, updated_at=TIME, updated_by=S)
AGENT = schemas.obj(
    account_id=INT,
    name=S,
    email=S,
    roles=schemas.STRINGS,
    languages=schemas.STRINGS,
    held=INT,
    last_claim=NTIME,
)
CONTEXT = schemas.obj(
    history={
        "type": "array",
        "items": schemas.obj(channel=S, direction=S, kind=S, text=NS, status=NS, at=TIME),
    },
    form={
        "type": ["object", "null"],
        "properties": {"id": S, "title": S, "answers": {"type": "array"}},
    },
    channel=schemas.obj(
        name=S,
        configured={"type": "boolean"},
        max_length=NINT,
        sms_segments=NINT,
        window_open=NBOOL,
        window_closes_at=NTIME,
        template_available=NBOOL,
        templates=schemas.STRINGS,
    ),
)
_LANGUAGES = canned_responses.LANGUAGES
_P = Permission

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "GET",
        f"/support/tickets/{_ID}/context",
        "getTicketContext",
        "A conversation's context: the resident's messages on every channel, the open form's "
        "answers, what the channel allows (audited)",
        get_context,
        permission=_P.VIEW_QUEUE,
        scope="ward",
        tag="support",
        answer=CONTEXT,
    ),
    Endpoint(
        "POST",
        "/support/sms-count",
        "countSms",
        "What a reply costs by SMS: characters, GSM-7 or UCS-2, segments, messages",
        count_sms,
        permission=_P.TAKE_OVER,
        scope="ward",
        tag="support",
        answer=schemas.obj(characters=INT, encoding=S, segments=INT, messages=INT),
        body=(
            Field(
                "text", "string", "the draft", required=True, max_length=canned_responses.MAX_TEXT
            ),
        ),
    ),
    Endpoint(
        "GET",
        "/support/canned-responses",
        "listCannedResponses",
        "Canned responses: all, one language's, or one per name offered for a conversation",
        list_canned,
        permission=_P.VIEW_QUEUE,
        scope="ward",
        tag="support",
        answer=schemas.paged(CANNED),
        query=(
            Field("language", "string", "only this language", enum=_LANGUAGES),
            Field(
                "offer",
                "string",
                "one per name in this language, else in English (the reply box)",
                enum=_LANGUAGES,
            ),
        ),
    ),
    Endpoint(
        "POST",
        "/support/canned-responses",
        "createCannedResponse",
        "Write a canned response in one language",
        create_canned,
        permission=_P.MANAGE_QUEUE,
        scope="city",
        tag="support",
        answer=CANNED,
        status=201,
        body=(
            Field(
                "name",
                "string",
                "what agents pick it by, like water_outage",
                required=True,
                max_length=64,
            ),
            Field("language", "string", "its language", required=True, enum=_LANGUAGES),
            Field(
                "text", "string", "the text", required=True, max_length=canned_responses.MAX_TEXT
            ),
        ),
    ),
    Endpoint(
        "PATCH",
        f"/support/canned-responses/{_ID}",
        "changeCannedResponse",
        "Change a canned response's text",
        change_canned,
        permission=_P.MANAGE_QUEUE,
        scope="city",
        tag="support",
        answer=CANNED,
        body=(
            Field(
                "text",
                "string",
                "the new text",
                required=True,
                max_length=canned_responses.MAX_TEXT,
            ),
        ),
    ),
    Endpoint(
        "DELETE",
        f"/support/canned-responses/{_ID}",
        "deleteCannedResponse",
        "Delete a canned response",
        delete_canned,
        permission=_P.MANAGE_QUEUE,
        scope="city",
        tag="support",
        answer=CANNED,
    ),
    Endpoint(
        "GET",
        "/support/agents",
        "listAgents",
        "Agents and supervisors with the conversations each holds now (their load)",
        list_agents,
        permission=_P.MANAGE_QUEUE,
        scope="ward",
        tag="support",
        answer=schemas.paged(AGENT),
    ),
)
