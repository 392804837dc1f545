"""The admin API's support endpoints: the queue, a conversation with its transcript, claim,
reply, internal notes, hand back to the bot, and a supervisor's assignment.

Thin handlers over ``staff.support``. What an agent sends, and the notice that the bot is back,
go to the resident through the notification outbox in the same commit as the transcript line
(``notifier.outbox``): in order, paced per channel, logged with the provider's id for receipts.

Example::

    GET  /api/v1/support/queue?language=zu
    POST /api/v1/support/tickets/12/claim            -> 409 if another agent was quicker
    POST /api/v1/support/tickets/12/messages {"text": "Sawubona, ..."}
    POST /api/v1/support/tickets/12/handback {"outcome": "resolved"}
"""

from __future__ import annotations

from typing import Any

from bot.web import staff_api_schemas as schemas
from bot.web.staff_api_table import Call, Endpoint, Field
from notifier.outbox import enqueue
from notifier.ports import ResidentMessage
from staff import support
from staff.roles import Permission
from storage.models import SupportMessage, SupportTicket
from storage.types import utc_now

__all__ = ["ENDPOINTS"]

_ID = "{id:[^/]{1,40}}"
# The purpose agent messages go out under (WhatsApp's template for it outside 24 hours).
AGENT_PURPOSE = "agent_reply"


def _mask(address: str | None) -> str | None:
    if not address:
        return None
    bare = address.removeprefix("whatsapp:")
    return "*" * max(0, len(bare) - 4) + bare[-4:]


def _ticket(t: SupportTicket) -> dict[str, Any]:
    return {
        "id": t.id,
        "channel": t.channel,
        "address_masked": _mask(t.address),
        "language": t.locale,
        "reason": t.reason,
        "topic": t.topic,
        "ward": t.ward,
        "priority": t.priority,
        "state": t.state,
        "agent_id": t.agent_id,
        "created_at": t.created_at,
        "claimed_at": t.claimed_at,
        "closed_at": t.closed_at,
        "outcome": t.outcome,
    }


def _message(m: SupportMessage) -> dict[str, Any]:
    # The id is where the console's live feed carries on from (``since``).
    return {
        "id": m.id,
        "direction": m.direction,
        "author_id": m.author_id,
        "text": m.text,
        "at": m.at,
    }


async def list_queue(call: Call) -> dict[str, Any]:
    q = call.query
    async with call.services.session_factory() as session:
        rows = await support.queue(
            session,
            call.identity,
            language=q.get("language"),
            channel=q.get("channel"),
            topic=q.get("topic"),
            include_held=q.get("state") == "open",
            limit=call.limit,
        )
    return {"items": [_ticket(t) for t in rows], "next_cursor": None}


async def get_ticket(call: Call) -> dict[str, Any]:
    async with call.services.session_factory() as session, session.begin():
        shown = await support.view(session, call.identity, call.path_id(), address=call.address)
        return {
            "ticket": _ticket(shown.ticket),
            "messages": [_message(m) for m in shown.messages],
            "reports": shown.reports,
        }


async def claim_ticket(call: Call) -> dict[str, Any]:
    async with call.services.session_factory() as session, session.begin():
        ticket = await support.claim(
            session,
            call.identity,
            call.path_id(),
            now=utc_now(),
            limit=call.services.settings.support_agent_limit,
            address=call.address,
        )
        return _ticket(ticket)


def _to_resident(ticket: SupportTicket, text: str) -> ResidentMessage | None:
    if ticket.resident_id is None:
        return None
    return ResidentMessage(
        resident_id=ticket.resident_id,
        channel=ticket.channel,
        locale=ticket.locale,
        text=text,
        purpose=AGENT_PURPOSE,
        reference=f"T{ticket.id}",
    )


async def send_message(call: Call) -> dict[str, Any]:
    now = utc_now()
    async with call.services.session_factory() as session, session.begin():
        ticket = await support.reply(
            session, call.identity, call.path_id(), call.body["text"], now=now, address=call.address
        )
        message = _to_resident(ticket, call.body["text"].strip())
        if message is not None:
            await enqueue(session, message, submission_id=None, now=now)
        return _ticket(ticket)


async def add_note(call: Call) -> dict[str, Any]:
    async with call.services.session_factory() as session, session.begin():
        ticket = await support.note(
            session,
            call.identity,
            call.path_id(),
            call.body["text"],
            now=utc_now(),
            address=call.address,
        )
        return _ticket(ticket)


async def hand_back(call: Call) -> dict[str, Any]:
    now = utc_now()
    async with call.services.session_factory() as session, session.begin():
        ticket, notice = await support.hand_back(
            session,
            call.identity,
            call.path_id(),
            call.body.get("outcome") or "handed_back",
            now=now,
            address=call.address,
        )
        message = _to_resident(ticket, notice)
        if message is not None and ticket.address is not None:
            await enqueue(session, message, submission_id=None, now=now)
        return _ticket(ticket)


async def assign_ticket(call: Call) -> dict[str, Any]:
    async with call.services.session_factory() as session, session.begin():
        ticket = await support.assign(
            session,
            call.identity,
            call.path_id(),
            call.body.get("account_id"),
            now=utc_now(),
            address=call.address,
        )
        return _ticket(ticket)


S, NS, INT, TIME, NTIME = schemas.S, schemas.NS, schemas.INT, schemas.TIME, schemas.NTIME
NINT = {"type": ["integer", "null"]}
TICKET = schemas.obj(
    id=INT,
    channel=S,
    address_masked=NS,
    language=S,
    reason=S,
    topic=NS,
    ward=NS,
    priority=INT,
    state=S,
    agent_id=NINT,
    created_at=TIME,
    claimed_at=NTIME,
    closed_at=NTIME,
    outcome=NS,
)
MESSAGE = schemas.obj(id=INT, direction=S, author_id=NINT, text=NS, at=TIME)
_P = Permission
_TEXT = (Field("text", "string", "what to say", required=True, max_length=support.MAX_TEXT),)

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "GET",
        "/support/queue",
        "listQueue",
        "Conversations waiting for a person: highest priority, then longest wait, first",
        list_queue,
        permission=_P.VIEW_QUEUE,
        scope="ward",
        tag="support",
        answer=schemas.paged(TICKET),
        query=(
            Field("limit", "integer", "at most this many (100)", minimum=1, maximum=200),
            Field("language", "string", "the resident's language", enum=("en", "af", "zu", "xh")),
            Field("channel", "string", "the resident's channel", max_length=32),
            Field("topic", "string", "the form the resident was in", max_length=64),
            Field(
                "state", "string", "waiting (default) or open (held too)", enum=("waiting", "open")
            ),
        ),
    ),
    Endpoint(
        "GET",
        f"/support/tickets/{_ID}",
        "getTicket",
        "A conversation: its transcript, notes and the resident's reports (audited)",
        get_ticket,
        permission=_P.VIEW_QUEUE,
        scope="ward",
        tag="support",
        answer=schemas.obj(
            ticket=TICKET,
            messages={"type": "array", "items": MESSAGE},
            reports={"type": "array", "items": {"type": "object"}},
        ),
    ),
    Endpoint(
        "POST",
        f"/support/tickets/{_ID}/claim",
        "claimTicket",
        "Take a waiting conversation (one agent wins; 409 for the others)",
        claim_ticket,
        permission=_P.TAKE_OVER,
        scope="ward",
        tag="support",
        answer=TICKET,
    ),
    Endpoint(
        "POST",
        f"/support/tickets/{_ID}/messages",
        "sendAgentMessage",
        "Say something to the resident (the conversation must be yours)",
        send_message,
        permission=_P.TAKE_OVER,
        scope="ward",
        tag="support",
        answer=TICKET,
        body=_TEXT,
    ),
    Endpoint(
        "POST",
        f"/support/tickets/{_ID}/notes",
        "addNote",
        "An internal note, never sent",
        add_note,
        permission=_P.TAKE_OVER,
        scope="ward",
        tag="support",
        answer=TICKET,
        body=_TEXT,
    ),
    Endpoint(
        "POST",
        f"/support/tickets/{_ID}/handback",
        "handBack",
        "Close with an outcome and hand the resident back to the bot (told in their language)",
        hand_back,
        permission=_P.TAKE_OVER,
        scope="ward",
        tag="support",
        answer=TICKET,
        body=(Field("outcome", "string", "how it ended (handed_back)", enum=support.OUTCOMES),),
    ),
    Endpoint(
        "POST",
        f"/support/tickets/{_ID}/assign",
        "assignTicket",
        "Give a conversation to an agent, or back to the queue (account_id null)",
        assign_ticket,
        permission=_P.MANAGE_QUEUE,
        scope="ward",
        tag="support",
        answer=TICKET,
        body=(Field("account_id", "integer", "the agent", required=True, nullable=True),),
    ),
)
