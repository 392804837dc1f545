"""Who a broadcast reaches: its audience as one SQL query, never a list in memory.

A resident is in the audience when they follow one of the target's wards (or, for a city-wide
broadcast, any area), have not opted out and were not erased, and have an address the provider
has not called unreachable on one of the broadcast's channels. Each resident appears once, on
the channel they wrote from last (a resident on SMS and WhatsApp gets one message, where they
are), with their language and the lowest of the target's wards they follow (for the report by
area).

The query is a ``Select`` of (resident_id, channel, locale, ward, last_inbound_at): fan-out
inserts from it in resident-id ranges (``INSERT ... SELECT``, the rows never leave the database),
the preview counts over it.

Example::

    rows = audience(wards=("9", "10"), everyone=False, channels=("sms", "telegram"))
    await session.execute(rows.where(rows.selected_columns.resident_id > 500))
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, func, select

from storage.models import Resident, ResidentAddress, Subscription

__all__ = ["audience", "unreachable"]


def _followers(
    wards: Sequence[str], everyone: bool, ids: tuple[int, int] | None = None
) -> Select[int, str]:
    query = select(
        Subscription.resident_id.label("resident_id"), func.min(Subscription.ward).label("ward")
    ).group_by(Subscription.resident_id)
    if not everyone:
        query = query.where(Subscription.ward.in_(sorted(set(wards))))
    if ids is not None:
        query = query.where(Subscription.resident_id > ids[0], Subscription.resident_id <= ids[1])
    return query


def audience(
    *,
    wards: Sequence[str],
    everyone: bool,
    channels: Sequence[str],
    ids: tuple[int, int] | None = None,
) -> Select[int, str, str, str, datetime | None]:
    """One row per resident to send to: (resident_id, channel, locale, ward, last_inbound_at);
    with ``ids`` (after, up to), only residents in that id range."""
    followers = _followers(wards, everyone, ids).subquery("followers")
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


def unreachable(*, wards: Sequence[str], everyone: bool, channels: Sequence[str]) -> Select[int]:
    """How many followers of the target the broadcast cannot reach: opted out, or with no
    reachable address on its channels (the preview shows it, so nobody is surprised)."""
    followers = _followers(wards, everyone).subquery("followers")
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
