"""The support console's live feed over server-sent events: ``GET /api/v1/support/events``.

A thin translator of ``staff.support_feed`` into ``text/event-stream``. Without ``ticket`` the
stream says ``queue`` whenever the queue (or a conversation in it) changed in the caller's
wards; the page asks ``GET /support/queue`` again. With ``ticket=N`` it sends each new line of
that conversation as a ``message`` (with the SSE id of the line) and the conversation's state.
A page that reconnects (the browser's EventSource does by itself) sends ``Last-Event-ID``, or
``since`` on its first connection, and is sent the lines it missed first.

Every stream starts with ``ready`` (the page reads the queue then: nothing is missed between
its read and the first event), says ``: keepalive`` every 15 s so proxies keep it open, and ends
after 5 minutes: the browser reconnects at once, and the session and account are checked again
as on any call.

Example::

    GET /api/v1/support/events?ticket=12&since=40
    event: ready
    ...
    id: 41
    event: message
    data: {"line": {"id": 41, "direction": "resident", "text": "..."}, "ticket": {...}}
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from bot.web.staff_api_table import Call, Endpoint, Field
from staff.roles import Permission
from staff.support_feed import FeedEvent, Watcher, lines_since, watch_ticket

__all__ = ["ENDPOINTS", "KEEPALIVE_SECONDS", "STREAM_SECONDS"]

KEEPALIVE_SECONDS = 15.0
STREAM_SECONDS = 300.0
# How soon (ms) the browser reconnects after a stream ends.
_RETRY_MS = 1000


def _event(name: str, data: dict[str, Any], event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    body = json.dumps(data, default=str, ensure_ascii=False)
    return f"{head}event: {name}\ndata: {body}\n\n".encode()


def _message(event: FeedEvent) -> bytes:
    line, ticket = event.line, event.ticket
    assert line is not None and ticket is not None
    at = line.at.isoformat().replace("+00:00", "Z")
    return _event(
        "message",
        {
            "line": {
                "id": line.id,
                "direction": line.direction,
                "author_id": line.author_id,
                "text": line.text,
                "at": at,
            },
            "ticket": {
                "id": line.ticket_id,
                "state": ticket.state,
                "agent_id": ticket.agent_id,
                "outcome": ticket.outcome,
            },
        },
        line.id,
    )


def _since(call: Call) -> int:
    since = int(call.query.get("since") or 0)
    header = call.request.headers.get("Last-Event-ID", "")
    if header.isascii() and header.isdigit() and len(header) <= 18:
        since = max(since, int(header))
    return since


async def stream_events(call: Call) -> web.StreamResponse:
    services, identity = call.services, call.identity
    ticket_id: int | None = call.query.get("ticket")
    if ticket_id is not None:
        # The scope is checked on every connection; the look is audited once per page, not on
        # each of the browser's reconnections (they carry Last-Event-ID).
        resumed = "Last-Event-ID" in call.request.headers
        async with services.session_factory() as session, session.begin():
            await watch_ticket(
                session, identity, ticket_id, address=call.address, audited=not resumed
            )
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-store",
            # nginx and the like would hold the events back in a buffer.
            "X-Accel-Buffering": "no",
        }
    )
    async with services.support_feed.watch(identity.wards, ticket_id=ticket_id) as watcher:
        await response.prepare(call.request)
        try:
            await response.write(f"retry: {_RETRY_MS}\n\n".encode())
            sent = _since(call)
            # A page that says where it is (since=0 included) is sent what it missed.
            if ticket_id is not None and (sent or "since" in call.query):
                async with services.session_factory() as session:
                    missed = await lines_since(session, ticket_id, sent)
                for event in missed:
                    await response.write(_message(event))
                    sent = event.line.id if event.line is not None else sent
            await response.write(_event("ready", {}))
            await _relay(response, watcher, sent)
        except ConnectionError:
            pass  # the page was closed: nothing to answer
    return response


async def _relay(response: web.StreamResponse, watcher: Watcher, sent: int) -> None:
    loop = asyncio.get_running_loop()
    ends = loop.time() + STREAM_SECONDS
    while (left := ends - loop.time()) > 0:
        event = await watcher.next(min(KEEPALIVE_SECONDS, left))
        if event is None:
            await response.write(b": keepalive\n\n")
        elif event.kind == "closed":
            return
        elif event.kind == "queue":
            await response.write(_event("queue", {}))
        elif event.line is not None and event.line.id > sent:
            # A line the replay above sent already is not sent twice.
            await response.write(_message(event))
            sent = event.line.id


_P = Permission

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "GET",
        "/support/events",
        "supportEvents",
        "Server-sent events: the queue changed, or a new line of one conversation (ticket=N)",
        stream_events,
        permission=_P.VIEW_QUEUE,
        scope="ward",
        tag="support",
        answer={"type": "string", "description": "text/event-stream"},
        media_types=("text/event-stream",),
        refusals={404: "there is no such ticket"},
        query=(
            Field("ticket", "integer", "the conversation to follow, line by line", minimum=1),
            Field("since", "integer", "the last line the page has (Last-Event-ID wins)", minimum=0),
        ),
    ),
)
