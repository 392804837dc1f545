"""The admin API's support endpoints: the queue, a conversation with its transcript, claim,
reply, internal notes, transfer to an agent or a team, hand back to the bot, a supervisor's
assignment, and the queue's figures.

Thin handlers over ``staff.support`` and ``staff.support_stats``. What an agent sends, and the
notices that the bot is back or that someone else carries on, go to the resident through the
notification outbox in the same commit as the transcript line (``bot.support_outbox``): in
order, paced per channel, logged with the provider's id for receipts.

Example::

    GET  /api/v1/support/queue?language=zu
    POST /api/v1/support/tickets/12/claim            -> 409 if another agent was quicker
    POST /api/v1/support/tickets/12/messages {"text": "Sawubona, ..."}
    POST /api/v1/support/tickets/12/transfer {"team": "electricity"}
    POST /api/v1/support/tickets/12/handback {"outcome": "resolved"}
    GET  /api/v1/support/stats?hours=24
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.support_outbox import AGENT_PURPOSE, tell_resident
from bot.web import staff_api_schemas as schemas
from bot.web.staff_api_table import Call, Endpoint, Field
from staff import support
from staff.roles import Permission
from staff.support_stats import Percentiles, SupportStats, support_stats
from storage.models import SupportMessage, SupportTicket
from storage.types import utc_now

# AGENT_PURPOSE: the console asks whether WhatsApp has a template for it (support-console).
__all__ = ["AGENT_PURPOSE", "ENDPOINTS", "TICKET", "stats_json", "ticket_json"]

_ID = "{id:[^/]{1,40}}"


def _mask(address: str | None) -> str | None:
    if not address:
        return None
    bare = address.removeprefix("whatsapp:")
    return "*" * max(0, len(bare) - 4) + bare[-4:]


def ticket_json(t: SupportTicket) -> dict[str, Any]:
    return {
        "id": t.id,
        "channel": t.channel,
        "address_masked": _mask(t.address),
        "language": t.locale,
        "reason": t.reason,
        "topic": t.topic,
        "team": t.team,
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
            team=q.get("team"),
            include_held=q.get("state") == "open",
            limit=call.limit,
        )
    return {"items": [ticket_json(t) for t in rows], "next_cursor": None}


async def get_ticket(call: Call) -> dict[str, Any]:
    async with call.services.session_factory() as session, session.begin():
        shown = await support.view(session, call.identity, call.path_id(), address=call.address)
        return {
            "ticket": ticket_json(shown.ticket),
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
        return ticket_json(ticket)


async def send_message(call: Call) -> dict[str, Any]:
    now = utc_now()
    async with call.services.session_factory() as session, session.begin():
        ticket = await support.reply(
            session, call.identity, call.path_id(), call.body["text"], now=now, address=call.address
        )
        await tell_resident(session, ticket, call.body["text"].strip(), now=now)
        return ticket_json(ticket)


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
        return ticket_json(ticket)


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
        await tell_resident(session, ticket, notice, now=now)
        return ticket_json(ticket)


async def assign_ticket(call: Call) -> dict[str, Any]:
    async with call.services.session_factory() as session, session.begin():
        ticket = await support.assign(
            session,
            call.identity,
            call.path_id(),
            call.body.get("account_id"),
            now=utc_now(),
            limit=call.services.settings.support_agent_limit,
            address=call.address,
        )
        return ticket_json(ticket)


async def transfer_ticket(call: Call) -> dict[str, Any]:
    now = utc_now()
    settings = call.services.settings
    async with call.services.session_factory() as session, session.begin():
        ticket, notice = await support.transfer(
            session,
            call.identity,
            call.path_id(),
            agent_id=call.body.get("account_id"),
            team=call.body.get("team"),
            now=now,
            limit=settings.support_agent_limit,
            teams=settings.support_teams,
            note=call.body.get("note"),
            address=call.address,
        )
        await tell_resident(session, ticket, notice, now=now)
        return ticket_json(ticket)


def _percentiles(p: Percentiles) -> dict[str, Any]:
    return {"count": p.count, "p50_seconds": p.p50, "p90_seconds": p.p90}


def stats_json(stats: SupportStats) -> dict[str, Any]:
    return {
        "window_hours": stats.window_hours,
        "waiting": stats.waiting,
        "waiting_by_team": stats.waiting_by_team,
        "held": stats.held,
        "oldest_wait_seconds": stats.oldest_wait_seconds,
        "wait": _percentiles(stats.wait),
        "first_response": _percentiles(stats.first_response),
        "handle": _percentiles(stats.handle),
        "agents": [{"agent_id": a.agent_id, "name": a.name, "held": a.held} for a in stats.agents],
        "agent_limit": None,
        "outcomes": stats.outcomes,
    }


async def get_stats(call: Call) -> dict[str, Any]:
    hours = int(call.query.get("hours") or 24)
    async with call.services.session_factory() as session:
        stats = await support_stats(
            session, now=utc_now(), window=timedelta(hours=hours), wards=call.identity.wards
        )
    shown = stats_json(stats)
    shown["agent_limit"] = call.services.settings.support_agent_limit
    return shown


S, NS, INT, TIME, NTIME = schemas.S, schemas.NS, schemas.INT, schemas.TIME, schemas.NTIME
NINT = {"type": ["integer", "null"]}
TICKET = schemas.obj(
    id=INT,
    channel=S,
    address_masked=NS,
    language=S,
    reason=S,
    topic=NS,
    team=NS,
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
NNUM = {"type": ["number", "null"]}
PERCENTILES = schemas.obj(count=INT, p50_seconds=NNUM, p90_seconds=NNUM)
STATS = schemas.obj(
    window_hours={"type": "number"},
    waiting=INT,
    waiting_by_team={"type": "object", "additionalProperties": INT},
    held=INT,
    oldest_wait_seconds={"type": "number"},
    wait=PERCENTILES,
    first_response=PERCENTILES,
    handle=PERCENTILES,
    agents={"type": "array", "items": schemas.obj(agent_id=INT, name=S, held=INT)},
    agent_limit=INT,
    outcomes={"type": "object", "additionalProperties": INT},
)
_P = Permission
_TEXT = (Field("text", "string", "what to say", required=True, max_length=support.MAX_TEXT),)

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "GET",
        "/support/queue",
        "listQueue",
        "Conversations waiting for a person: those in the caller's languages, then highest "
        "priority, then longest wait, first",
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
            Field("team", "string", "the team it is for (a language or department)", max_length=32),
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
        f"/support/tickets/{_ID}/transfer",
        "transferTicket",
        "Pass a conversation to another agent, or to a team's queue (its holder or a supervisor)",
        transfer_ticket,
        permission=_P.TAKE_OVER,
        scope="ward",
        tag="support",
        answer=TICKET,
        body=(
            Field("account_id", "integer", "the agent who carries on", nullable=True),
            Field("team", "string", "the team it is for (a language or department)", max_length=32),
            Field(
                "note",
                "string",
                "an internal note for whoever carries on (never sent)",
                max_length=support.MAX_TEXT,
            ),
        ),
    ),
    Endpoint(
        "GET",
        "/support/stats",
        "getSupportStats",
        "The queue now (waiting, held, per-agent load) and over the last hours (wait, first "
        "response and handle times p50/p90, outcomes)",
        get_stats,
        permission=_P.MANAGE_QUEUE,
        scope="ward",
        tag="support",
        answer=STATS,
        query=(
            Field(
                "hours", "integer", "the window, in whole hours (24)", minimum=1, maximum=24 * 90
            ),
        ),
    ),
    Endpoint(
        "POST",
        f"/support/tickets/{_ID}/assign",
        "assignTicket",
        "Give a conversation to an agent (active, covering the resident's ward, within their "
        "limit), or back to the queue (account_id null)",
        assign_ticket,
        permission=_P.MANAGE_QUEUE,
        scope="ward",
        tag="support",
        answer=TICKET,
        body=(Field("account_id", "integer", "the agent", required=True, nullable=True),),
    ),
)
