"""Who a broadcast reaches: its audience as one SQL query, never a list in memory.

A resident is in the audience when they follow one of the target's wards (or, for a city-wide
broadcast, any area) with an alert for the broadcast's topic or for everything, have not opted out and were not erased, and have an address the provider
has not called unreachable on one of the broadcast's channels. Each resident appears once, on
the channel they wrote from last (a resident on SMS and WhatsApp gets one message, where they
are), with their language and the lowest of the target's wards they follow (for the report by
area).

A broadcast around a point (``target["point"]``: lat, lon, radius_m) also reaches every pin
alert whose circle touches its circle, whatever ward the pin is in; a pin alert's rows already
name every ward its circle reaches (``conversations.subscriptions``), so a broadcast to wards,
places or settlements (turned into their wards) reaches a pin inside them or within its radius
of them with the same indexed join as any alert. Distances are the gazetteer's flat-map metres
(``forms_runtime.gazetteer.geometry``), written as arithmetic both databases run, behind a
bounding box on the pin's latitude.

The query is a ``Select`` of (resident_id, channel, locale, ward, last_inbound_at): fan-out
inserts from it in resident-id ranges (``INSERT ... SELECT``, the rows never leave the database),
the preview counts over it.

Example::

    rows = audience(wards=("9", "10"), everyone=False, channels=("sms", "telegram"))
    await session.execute(rows.where(rows.selected_columns.resident_id > 500))
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select

from forms_runtime.gazetteer.geometry import METRES_PER_DEGREE
from storage.models import Resident, ResidentAddress, Subscription

__all__ = ["MAX_PIN_RADIUS_M", "audience", "near_point", "unreachable"]

# The largest radius a pin alert may have: the bounding box around a point is this much wider
# than the point's own radius, so that no pin whose circle touches it is left outside the box.
MAX_PIN_RADIUS_M = 5_000


def near_point(point: Mapping[str, Any]) -> ColumnElement[bool]:
    """Pin alerts whose circle touches the circle ``point`` (lat, lon, radius_m) describes."""
    lat, lon = float(point["lat"]), float(point["lon"])
    radius = float(point.get("radius_m") or 0)
    scale_x = math.cos(math.radians(lat)) * METRES_PER_DEGREE
    reach = radius + MAX_PIN_RADIUS_M
    dx = (Subscription.longitude - lon) * scale_x
    dy = (Subscription.latitude - lat) * METRES_PER_DEGREE
    touching = radius + Subscription.radius_m
    return and_(
        Subscription.radius_m.is_not(None),
        Subscription.latitude.between(
            lat - reach / METRES_PER_DEGREE, lat + reach / METRES_PER_DEGREE
        ),
        Subscription.longitude.between(lon - reach / scale_x, lon + reach / scale_x),
        dx * dx + dy * dy <= touching * touching,
    )


def _followers(
    wards: Sequence[str],
    everyone: bool,
    ids: tuple[int, int] | None = None,
    topic: str | None = None,
    point: Mapping[str, Any] | None = None,
) -> Select[int, str]:
    query = select(
        Subscription.resident_id.label("resident_id"), func.min(Subscription.ward).label("ward")
    ).group_by(Subscription.resident_id)
    if not everyone:
        in_wards = Subscription.ward.in_(sorted(set(wards)))
        query = query.where(or_(in_wards, near_point(point)) if point else in_wards)
    if topic and topic != "general":
        # An alert for everything, or for this topic (topics are stored as ",water,roads,").
        query = query.where(
            or_(Subscription.topics.like("%,all,%"), Subscription.topics.like(f"%,{topic},%"))
        )
    if ids is not None:
        query = query.where(Subscription.resident_id > ids[0], Subscription.resident_id <= ids[1])
    return query


def audience(
    *,
    wards: Sequence[str],
    everyone: bool,
    channels: Sequence[str],
    ids: tuple[int, int] | None = None,
    topic: str | None = None,
    point: Mapping[str, Any] | None = None,
) -> Select[int, str, str, str, datetime | None]:
    """One row per resident to send to: (resident_id, channel, locale, ward, last_inbound_at);
    with ``ids`` (after, up to), only residents in that id range; with ``topic``, only alerts
    for it or for everything ("general" news reaches every alert); with ``point``, also the pin
    alerts near it."""
    followers = _followers(wards, everyone, ids, topic, point).subquery("followers")
    query = (
        select(
            followers.c.resident_id,
            ResidentAddress.channel,
            Resident.locale,
            followers.c.ward,
            ResidentAddress.last_inbound_at,
            func.row_number()
            .over(
                partition_by=followers.c.resident_id,
                order_by=(
                    ResidentAddress.last_inbound_at.desc().nulls_last(),
                    ResidentAddress.id.desc(),
                ),
            )
            .label("rank"),
        )
        .join(Resident, Resident.id == followers.c.resident_id)
        .join(ResidentAddress, ResidentAddress.resident_id == followers.c.resident_id)
        .where(
            Resident.opted_out_at.is_(None),
            Resident.erased_at.is_(None),
            ResidentAddress.unreachable_at.is_(None),
            ResidentAddress.channel.in_(sorted(set(channels))),
        )
    )
    if ids is not None:
        # Said of each table: the planner does not carry a range across the subquery's join,
        # and without it each range of a fan-out would read every resident.
        query = query.where(
            Resident.id > ids[0],
            Resident.id <= ids[1],
            ResidentAddress.resident_id > ids[0],
            ResidentAddress.resident_id <= ids[1],
        )
    ranked = query.subquery("ranked")
    return select(
        ranked.c.resident_id,
        ranked.c.channel,
        ranked.c.locale,
        ranked.c.ward,
        ranked.c.last_inbound_at,
    ).where(ranked.c.rank == 1)


def unreachable(
    *,
    wards: Sequence[str],
    everyone: bool,
    channels: Sequence[str],
    topic: str | None = None,
    point: Mapping[str, Any] | None = None,
) -> Select[int]:
    """How many followers of the target the broadcast cannot reach: opted out, or with no
    reachable address on its channels (the preview shows it, so nobody is surprised)."""
    followers = _followers(wards, everyone, topic=topic, point=point).subquery("followers")
    reachable = (
        select(ResidentAddress.id)
        .where(
            ResidentAddress.resident_id == followers.c.resident_id,
            ResidentAddress.unreachable_at.is_(None),
            ResidentAddress.channel.in_(sorted(set(channels))),
        )
        .exists()
    )
    return (
        select(func.count())
        .select_from(followers)
        .join(Resident, Resident.id == followers.c.resident_id)
        .where(Resident.erased_at.is_(None))
        .where((Resident.opted_out_at.is_not(None)) | ~reachable)
    )
