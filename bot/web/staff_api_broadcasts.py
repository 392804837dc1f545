"""The admin API's broadcast endpoints: write, preview, send (or ask for approval), approve,
cancel, report (JSON or CSV) and resend to failed recipients.

Thin handlers over ``notifier.broadcasts``; what they add is who may do it:

* a ``broadcaster`` writes and sends within their wards (a ward-scoped account cannot write to
  everyone, nor see another office's broadcasts: those answer 404, as if they did not exist);
* an ``approver`` approves what needs four eyes, never their own;
* places and a point are turned into wards with the gazetteer here, so the target is checked
  against the caller's wards before anything is stored.

A broadcast is answered with its author's and approver's emails beside their ids
(``author_email``, ``approver_email``): four eyes means knowing whose it is.

Every change is audited (``broadcast.create``, ``.send``, ``.approve``, ``.cancel``,
``.resend_failed``, ``.export``) in the same commit as the change.

Example::

    POST /api/v1/broadcasts {"title": "Water off", "text_en": "...", "wards": ["9"]}
    POST /api/v1/broadcasts/7/send          -> {"state": "scheduled"} or "awaiting_approval"
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict
from typing import Any

from aiohttp import web
from sqlalchemy import select

from bot.web import staff_api_schemas as schemas
from bot.web.staff_api_table import PAGING, ApiError, Call, Endpoint, Field, scoped_page
from forms_runtime.gazetteer import Gazetteer
from notifier import broadcasts
from notifier.broadcasts import (
    CHANNELS,
    LOCALES,
    TOPICS,
    URGENCIES,
    Draft,
)
from staff import audit
from staff.identity import StaffIdentity
from staff.roles import Permission
from storage.models import Broadcast, StaffAccount
from storage.types import utc_now

__all__ = ["ENDPOINTS", "text_fields"]

_ID = "{id:[^/]{1,40}}"
MAX_RADIUS_M = 20_000


def _visible(identity: StaffIdentity, broadcast: Broadcast) -> bool:
    if identity.wards is None:
        return True
    wards = broadcasts.wards_of(broadcast)
    return not broadcasts.is_city_wide(broadcast) and set(wards) <= identity.wards


def _json(b: Broadcast) -> dict[str, Any]:
    return {
        "id": b.id,
        "title": b.title,
        "texts": b.texts,
        "wards": list(broadcasts.wards_of(b)),
        "everyone": broadcasts.is_city_wide(b),
        "places": list(b.target.get("places") or ()),
        "point": b.target.get("point"),
        "topic": b.topic,
        "channels": b.channels,
        "urgency": b.urgency,
        "whatsapp_template": b.whatsapp_template,
        "send_at": b.send_at,
        "expires_at": b.expires_at,
        "state": b.state,
        "author_id": b.author_id,
        "approved_by": b.approved_by,
        "approved_at": b.approved_at,
        "cancelled_at": b.cancelled_at,
        "recipients": b.recipients,
        "created_at": b.created_at,
    }


async def _named(session: Any, shown: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Who wrote and who approved each broadcast, by email beside the ids: the approver must
    see whose broadcast it is (four eyes), and the author who approved it."""
    ids = {i for b in shown for i in (b["author_id"], b["approved_by"]) if i is not None}
    emails: dict[int, str] = {}
    if ids:
        found = await session.execute(
            select(StaffAccount.id, StaffAccount.email).where(StaffAccount.id.in_(ids))
        )
        emails = {account_id: email for account_id, email in found.all()}
    for b in shown:
        b["author_email"] = emails.get(b["author_id"])
        b["approver_email"] = None if b["approved_by"] is None else emails.get(b["approved_by"])
    return shown


async def _answer(session: Any, broadcast: Broadcast) -> dict[str, Any]:
    return (await _named(session, [_json(broadcast)]))[0]


async def _broadcast(call: Call, session: Any, *, for_update: bool = False) -> Broadcast:
    found = await broadcasts.get(session, call.path_id(), for_update=for_update)
    if not _visible(call.identity, found):
        raise ApiError(404, "not_found", f"there is no broadcast {found.id}")
    return found


def _gazetteer(call: Call) -> Gazetteer | None:
    return call.services.turn_loop.router.gazetteer


def _target_wards(call: Call) -> tuple[list[str], list[str], dict[str, float] | None]:
    """The wards the body's target reaches (its wards, its places' wards, its point's ward),
    the places by their display names, and the point."""
    body = call.body
    wards = [w.strip() for w in body.get("wards") or () if w.strip()]
    places: list[str] = []
    gazetteer = _gazetteer(call)
    for name in body.get("places") or ():
        place = None if gazetteer is None else gazetteer.match_place(name).best
        if place is None:
            raise ApiError(400, "invalid_input", f"no place called {name[:60]!r}: check the name")
        if not place.wards:
            raise ApiError(
                400, "invalid_input", f"{place.name} cannot be placed in a ward: choose wards"
            )
        places.append(place.name)
        wards.extend(place.wards)
    point = None
    if body.get("latitude") is not None or body.get("longitude") is not None:
        if body.get("latitude") is None or body.get("longitude") is None:
            raise ApiError(400, "invalid_input", "a point needs both latitude and longitude")
        lat, lon = float(body["latitude"]), float(body["longitude"])
        info = None if gazetteer is None else gazetteer.locate(lat, lon)
        if info is None or info.ward is None:
            raise ApiError(400, "invalid_input", "the point is outside the city's wards")
        point = {"lat": lat, "lon": lon, "radius_m": float(body.get("radius_m") or 500)}
        wards.append(info.ward)
    return list(dict.fromkeys(wards)), places, point


def _in_scope(identity: StaffIdentity, wards: list[str], everyone: bool) -> None:
    if identity.wards is None:
        return
    if everyone:
        raise ApiError(403, "forbidden", "Only a city-wide account may broadcast to everyone.")
    outside = sorted(set(wards) - identity.wards)
    if outside:
        raise ApiError(403, "forbidden", f"Ward {outside[0]} is outside your wards.")


# -- handlers ------------------------------------------------------------------------------


async def list_broadcasts(call: Call) -> dict[str, Any]:
    query = select(Broadcast).order_by(Broadcast.id.desc())
    if call.cursor is not None:
        query = query.where(Broadcast.id < call.cursor)
    if call.query.get("state"):
        query = query.where(Broadcast.state == call.query["state"])
    page = await scoped_page(
        call, query, lambda b: _visible(call.identity, b), lambda b: b.id, _json
    )
    async with call.services.session_factory() as session:
        await _named(session, page["items"])
    return page


async def create_broadcast(call: Call) -> dict[str, Any]:
    body, identity = call.body, call.identity
    wards, places, point = _target_wards(call)
    everyone = bool(body.get("everyone"))
    _in_scope(identity, wards, everyone)
    draft = Draft.checked(
        title=body["title"],
        texts={loc: body.get(f"text_{loc}") for loc in LOCALES},
        wards=wards,
        everyone=everyone,
        topic=body.get("topic") or "general",
        channels=body.get("channels") or CHANNELS,
        urgency=body.get("urgency") or "routine",
        places=places,
        point=point,
        whatsapp_template=body.get("whatsapp_template"),
        send_at=body.get("send_at"),
        expires_at=body.get("expires_at"),
    )
    now = utc_now()
    async with call.services.session_factory() as session, session.begin():
        created = await broadcasts.create(session, draft, author_id=identity.account_id, now=now)
        await audit.record(
            session,
            actor=identity.actor,
            action="broadcast.create",
            target=f"broadcast:{created.id}",
            address=call.address,
            details={"wards": wards, "everyone": everyone, "urgency": draft.urgency},
        )
        return await _answer(session, created)


async def get_broadcast(call: Call) -> dict[str, Any]:
    async with call.services.session_factory() as session:
        return await _answer(session, await _broadcast(call, session))


async def preview_broadcast(call: Call) -> dict[str, Any]:
    settings = call.services.settings
    async with call.services.session_factory() as session:
        found = await _broadcast(call, session)
        shown = await broadcasts.preview(
            session,
            found,
            now=utc_now(),
            segment_price=settings.sms_segment_price,
            currency=settings.sms_currency,
            approval_size=settings.broadcast_approval_size,
        )
    return asdict(shown)


async def send_broadcast(call: Call) -> dict[str, Any]:
    async with call.services.session_factory() as session, session.begin():
        found = await _broadcast(call, session, for_update=True)
        state = await broadcasts.request_send(
            session,
            found,
            now=utc_now(),
            approval_size=call.services.settings.broadcast_approval_size,
        )
        await _audit(call, session, found, "broadcast.send", {"state": state})
        return await _answer(session, found)


async def approve_broadcast(call: Call) -> dict[str, Any]:
    async with call.services.session_factory() as session, session.begin():
        found = await _broadcast(call, session, for_update=True)
        await broadcasts.approve(
            session, found, approver_id=call.identity.account_id, now=utc_now()
        )
        await _audit(call, session, found, "broadcast.approve", None)
        return await _answer(session, found)


async def cancel_broadcast(call: Call) -> dict[str, Any]:
    async with call.services.session_factory() as session, session.begin():
        found = await _broadcast(call, session, for_update=True)
        dropped = await broadcasts.cancel(
            session, found, actor_id=call.identity.account_id, now=utc_now()
        )
        await _audit(call, session, found, "broadcast.cancel", {"not_sent": dropped})
        return await _answer(session, found)


async def resend_failed(call: Call) -> dict[str, Any]:
    async with call.services.session_factory() as session, session.begin():
        found = await _broadcast(call, session, for_update=True)
        queued = await broadcasts.resend_failed(session, found, now=utc_now())
        await _audit(call, session, found, "broadcast.resend_failed", {"queued": queued})
        return {"broadcast": await _answer(session, found), "queued": queued}


async def report_broadcast(call: Call) -> dict[str, Any] | web.Response:
    async with call.services.session_factory() as session, session.begin():
        found = await _broadcast(call, session)
        shown = await broadcasts.report(session, found)
        if call.query.get("format") != "csv":
            return asdict(shown)
        await _audit(call, session, found, "broadcast.export", {"format": "csv"})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["broadcast", "dimension", "value", "state", "count"])
    for dimension, value, state, count in shown.rows():
        writer.writerow([found.id, dimension, value, state, count])
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="broadcast-{found.id}.csv"'},
    )


async def _audit(
    call: Call, session: Any, found: Broadcast, action: str, details: dict[str, Any] | None
) -> None:
    await audit.record(
        session,
        actor=call.identity.actor,
        action=action,
        target=f"broadcast:{found.id}",
        address=call.address,
        details=details,
    )


# -- the table -----------------------------------------------------------------------------

S, NS, INT, TIME, NTIME = schemas.S, schemas.NS, schemas.INT, schemas.TIME, schemas.NTIME
COUNTS = {"type": "object", "additionalProperties": INT}
TABLE = {"type": "object", "additionalProperties": COUNTS}
BROADCAST = schemas.obj(
    id=INT,
    title=S,
    texts={"type": "object", "additionalProperties": S},
    wards=schemas.STRINGS,
    everyone={"type": "boolean"},
    places=schemas.STRINGS,
    point={"type": ["object", "null"]},
    topic=S,
    channels=schemas.STRINGS,
    urgency=S,
    whatsapp_template=NS,
    send_at=NTIME,
    expires_at=NTIME,
    state=S,
    author_id=INT,
    author_email=NS,
    approved_by={"type": ["integer", "null"]},
    approver_email=NS,
    approved_at=NTIME,
    cancelled_at=NTIME,
    recipients=INT,
    created_at=TIME,
)
PREVIEW = schemas.obj(
    recipients=INT,
    by_channel=COUNTS,
    by_language=COUNTS,
    missing_translations=COUNTS,
    sms_segments=COUNTS,
    sms_cost=schemas.NUMBER,
    currency=S,
    whatsapp_outside_window=INT,
    whatsapp_template=NS,
    unreachable=INT,
    needs_approval={"type": "boolean"},
    warnings=schemas.STRINGS,
)
REPORT = schemas.obj(
    state=S, recipients=INT, totals=COUNTS, by_channel=TABLE, by_ward=TABLE, by_language=TABLE
)
_P = Permission


def text_fields(*, required: bool) -> tuple[Field, ...]:
    """``text_en`` ... ``text_xh``: what residents are told, per language (English required
    where anything is)."""
    return tuple(
        Field(
            f"text_{loc}",
            "string",
            f"what residents are told, in {loc}"
            + (" (required)" if required and loc == "en" else ""),
            required=required and loc == "en",
            nullable=not (required and loc == "en"),
            max_length=broadcasts.MAX_TEXT,
        )
        for loc in LOCALES
    )


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "GET",
        "/broadcasts",
        "listBroadcasts",
        "Broadcasts, newest first (a ward-scoped account sees its wards' only)",
        list_broadcasts,
        permission=_P.CREATE_BROADCASTS,
        scope="ward",
        tag="broadcasts",
        answer=schemas.paged(BROADCAST),
        query=(
            *PAGING,
            Field("state", "string", "only broadcasts in this state", max_length=24),
        ),
    ),
    Endpoint(
        "POST",
        "/broadcasts",
        "createBroadcast",
        "Write a broadcast (a draft): texts per language, target, topic, channels, urgency",
        create_broadcast,
        permission=_P.CREATE_BROADCASTS,
        scope="ward",
        tag="broadcasts",
        status=201,
        answer=BROADCAST,
        body=(
            Field("title", "string", "what staff see it as", required=True, max_length=120),
            *text_fields(required=True),
            Field("wards", "strings", "target wards", max_length=8),
            Field("places", "strings", "target suburbs or settlements (gazetteer names)"),
            Field("latitude", "number", "a target point", minimum=-90, maximum=90),
            Field("longitude", "number", "a target point", minimum=-180, maximum=180),
            Field("radius_m", "number", "around the point (500)", minimum=1, maximum=MAX_RADIUS_M),
            Field("everyone", "boolean", "everyone subscribed to city news (four eyes)"),
            Field("topic", "string", "what it is about", enum=TOPICS),
            Field("channels", "strings", "channels to send on (all)", enum=CHANNELS),
            Field("urgency", "string", "emergency goes out in quiet hours", enum=URGENCIES),
            Field(
                "whatsapp_template",
                "string",
                "the approved template (its TWILIO_WHATSAPP_TEMPLATES key) for residents outside "
                "WhatsApp's 24-hour window",
                nullable=True,
                max_length=100,
            ),
            Field("send_at", "datetime", "when to send (now)", nullable=True),
            Field("expires_at", "datetime", "when it stops mattering", nullable=True),
        ),
    ),
    Endpoint(
        "GET",
        f"/broadcasts/{_ID}",
        "getBroadcast",
        "One broadcast",
        get_broadcast,
        permission=_P.CREATE_BROADCASTS,
        scope="ward",
        tag="broadcasts",
        answer=BROADCAST,
    ),
    Endpoint(
        "GET",
        f"/broadcasts/{_ID}/preview",
        "previewBroadcast",
        "Recipients by channel and language, SMS segments and cost, WhatsApp's window, "
        "unreachable residents, and whether it needs approval",
        preview_broadcast,
        permission=_P.CREATE_BROADCASTS,
        scope="ward",
        tag="broadcasts",
        answer=PREVIEW,
    ),
    Endpoint(
        "POST",
        f"/broadcasts/{_ID}/send",
        "sendBroadcast",
        "Send a draft (at its send_at): scheduled, or awaiting an approver",
        send_broadcast,
        permission=_P.CREATE_BROADCASTS,
        scope="ward",
        tag="broadcasts",
        answer=BROADCAST,
    ),
    Endpoint(
        "POST",
        f"/broadcasts/{_ID}/approve",
        "approveBroadcast",
        "Approve a broadcast that needs four eyes (not one's own)",
        approve_broadcast,
        permission=_P.APPROVE_BROADCASTS,
        scope="ward",
        tag="broadcasts",
        answer=BROADCAST,
    ),
    Endpoint(
        "POST",
        f"/broadcasts/{_ID}/cancel",
        "cancelBroadcast",
        "Cancel: nothing more is sent (senders see it within a second)",
        cancel_broadcast,
        permission=_P.CREATE_BROADCASTS,
        scope="ward",
        tag="broadcasts",
        answer=BROADCAST,
    ),
    Endpoint(
        "POST",
        f"/broadcasts/{_ID}/resend-failed",
        "resendFailed",
        "Queue again the messages the provider refused (never those that went)",
        resend_failed,
        permission=_P.CREATE_BROADCASTS,
        scope="ward",
        tag="broadcasts",
        answer=schemas.obj(broadcast=BROADCAST, queued=INT),
    ),
    Endpoint(
        "GET",
        f"/broadcasts/{_ID}/report",
        "reportBroadcast",
        "Queued, sent, delivered, failed, unreachable: by channel, ward and language (CSV too)",
        report_broadcast,
        permission=_P.CREATE_BROADCASTS,
        scope="ward",
        tag="broadcasts",
        answer=REPORT,
        media_types=("application/json", "text/csv"),
        query=(Field("format", "string", "json (default) or csv", enum=("json", "csv")),),
    ),
)
