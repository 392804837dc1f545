"""Official broadcasts: written, previewed, approved by a second person where it matters,
scheduled, cancelled, resent to those it failed, and reported.

Each function works in the caller's transaction, so the caller (the admin API) writes the audit
row in the same commit. Who may do what (roles, ward scope) is the caller's check; the rules
that belong to a broadcast itself are here:

* **Four eyes.** An emergency, a city-wide broadcast, or one reaching more than
  ``approval_size`` residents waits for an approver who is not its author.
* **Once sent, settled.** Only a draft is edited or sent; a broadcast that is sending can be
  cancelled (senders see it on their next claim, well within a second) but not changed.
* **Resend to failed only.** Rows the provider refused go back in the queue; a resident who got
  it (or may have: ``unknown``) never gets it twice.

The states are described in ``storage.models.broadcasts``.

Example::

    draft = Draft.checked(title="Water off", texts={"en": "..."}, wards=["9"], topic="water",
                          channels=["sms"], urgency="routine")
    broadcast = await create(session, draft, author_id=3, now=now)
    state = await request_send(session, broadcast, actor_id=3, now=now, approval_size=10_000)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from forms_runtime.i18n import N_, tr
from forms_runtime.sms import segments, to_gsm7
from notifier.broadcast_audience import audience, unreachable
from storage.models import Broadcast, BroadcastDelivery, MessageLog

__all__ = [
    "CHANNELS",
    "LOCALES",
    "TOPICS",
    "URGENCIES",
    "BroadcastConflict",
    "BroadcastNotFound",
    "Draft",
    "InvalidBroadcast",
    "Preview",
    "Report",
    "approve",
    "cancel",
    "create",
    "digest_footer",
    "footer",
    "get",
    "preview",
    "report",
    "request_send",
    "resend_failed",
    "summary_document",
]

LOCALES = ("en", "af", "zu", "xh")
TOPICS = ("general", "water", "electricity", "roads", "refuse")
URGENCIES = ("routine", "emergency")
CHANNELS = ("sms", "whatsapp", "telegram")
MAX_TEXT = 1000
WHATSAPP_WINDOW = timedelta(hours=24)
# States in which a broadcast is still the author's to change or send.
_OPEN = ("draft",)
_LIVE = ("awaiting_approval", "scheduled", "sending")


_WARD_NEWS = N_("(Ward {ward} news. MY ALERTS to change, STOP to end all.)")
_CITY_NEWS = N_("(City news. MY ALERTS to change, STOP to end all.)")
_DAILY_REPORTS = N_("(Daily reports for {place}. MY ALERTS to change, STOP to end all.)")
# What one message may cost on SMS before the channel splits it into several.
SMS_BUDGET = 3


def footer(locale: str, ward: str | None) -> str:
    """Why the resident gets this and how to stop it, short enough for an SMS budget."""
    if ward:
        return tr(locale, _WARD_NEWS, ward=ward)
    return tr(locale, _CITY_NEWS)


def digest_footer(locale: str, place: str) -> str:
    """The same line for the daily digest of reports (``notifier.digests``) of ``place``."""
    return tr(locale, _DAILY_REPORTS, place=place)


class InvalidBroadcast(ValueError):
    """What the official wrote cannot be sent as it is (the message says what to fix)."""


class BroadcastConflict(Exception):
    """The broadcast is not in a state that allows this (sent already, approving one's own)."""


class BroadcastNotFound(LookupError):
    """No such broadcast."""


@dataclass(frozen=True, slots=True)
class Draft:
    title: str
    texts: dict[str, str]
    wards: tuple[str, ...]
    everyone: bool
    topic: str
    channels: tuple[str, ...]
    urgency: str
    places: tuple[str, ...] = ()
    point: dict[str, float] | None = None
    whatsapp_template: str | None = None
    send_at: datetime | None = None
    expires_at: datetime | None = None

    @classmethod
    def checked(
        cls,
        *,
        title: str,
        texts: Mapping[str, str | None],
        wards: Sequence[str] = (),
        everyone: bool = False,
        topic: str = "general",
        channels: Sequence[str] = CHANNELS,
        urgency: str = "routine",
        places: Sequence[str] = (),
        point: dict[str, float] | None = None,
        whatsapp_template: str | None = None,
        send_at: datetime | None = None,
        expires_at: datetime | None = None,
    ) -> Draft:
        title = title.strip()
        if not title:
            raise InvalidBroadcast("give the broadcast a title (staff see it, residents do not)")
        cleaned = {k: v.strip() for k, v in texts.items() if v and v.strip()}
        if "en" not in cleaned:
            raise InvalidBroadcast("the English text is required (it stands in for the others)")
        for locale, text in cleaned.items():
            if locale not in LOCALES:
                raise InvalidBroadcast(f"no language {locale!r} (languages: {', '.join(LOCALES)})")
            if len(text) > MAX_TEXT:
                raise InvalidBroadcast(f"the {locale} text is longer than {MAX_TEXT} characters")
        wards = tuple(dict.fromkeys(w.strip() for w in wards if w.strip()))
        if not everyone and not wards:
            raise InvalidBroadcast("choose the areas (wards, places, a point) or everyone")
        if everyone and wards:
            raise InvalidBroadcast("a broadcast goes to everyone or to areas, not both")
        if topic not in TOPICS:
            raise InvalidBroadcast(f"topic is one of {', '.join(TOPICS)}")
        if urgency not in URGENCIES:
            raise InvalidBroadcast(f"urgency is one of {', '.join(URGENCIES)}")
        chosen = tuple(dict.fromkeys(channels))
        if not chosen or any(c not in CHANNELS for c in chosen):
            raise InvalidBroadcast(f"channels are some of {', '.join(CHANNELS)}")
        if send_at and expires_at and expires_at <= send_at:
            raise InvalidBroadcast("it would expire before it is sent")
        return cls(
            title=title[:120],
            texts=cleaned,
            wards=wards,
            everyone=everyone,
            topic=topic,
            channels=chosen,
            urgency=urgency,
            places=tuple(places),
            point=point,
            whatsapp_template=(whatsapp_template or "").strip() or None,
            send_at=send_at,
            expires_at=expires_at,
        )


async def create(
    session: AsyncSession, draft: Draft, *, author_id: int, now: datetime
) -> Broadcast:
    target: dict[str, Any] = {"wards": list(draft.wards), "everyone": draft.everyone}
    if draft.places:
        target["places"] = list(draft.places)
    if draft.point:
        target["point"] = draft.point
    broadcast = Broadcast(
        author_id=author_id,
        title=draft.title,
        texts=draft.texts,
        target=target,
        topic=draft.topic,
        channels=list(draft.channels),
        urgency=draft.urgency,
        whatsapp_template=draft.whatsapp_template,
        send_at=draft.send_at,
        expires_at=draft.expires_at,
        state="draft",
        created_at=now,
        updated_at=now,
    )
    session.add(broadcast)
    await session.flush()
    return broadcast


async def get(session: AsyncSession, broadcast_id: int, *, for_update: bool = False) -> Broadcast:
    query = select(Broadcast).where(Broadcast.id == broadcast_id)
    if for_update:
        query = query.with_for_update()
    found = await session.scalar(query)
    if found is None:
        raise BroadcastNotFound(f"there is no broadcast {broadcast_id}")
    return found


def wards_of(broadcast: Broadcast) -> tuple[str, ...]:
    return tuple(broadcast.target.get("wards") or ())


def is_city_wide(broadcast: Broadcast) -> bool:
    return bool(broadcast.target.get("everyone"))


def point_of(broadcast: Broadcast) -> dict[str, Any] | None:
    point = broadcast.target.get("point")
    return dict(point) if isinstance(point, dict) else None


def audience_of(broadcast: Broadcast, ids: tuple[int, int] | None = None) -> Any:
    return audience(
        wards=wards_of(broadcast),
        everyone=is_city_wide(broadcast),
        channels=broadcast.channels,
        ids=ids,
        topic=broadcast.topic,
        point=point_of(broadcast),
    )


@dataclass(frozen=True, slots=True)
class Preview:
    recipients: int
    by_channel: dict[str, int]
    by_language: dict[str, int]
    # Residents whose language has no text of its own: they get the English one.
    missing_translations: dict[str, int]
    sms_segments: dict[str, int]
    sms_cost: float
    currency: str
    # WhatsApp residents outside the 24-hour window: only an approved template reaches them.
    whatsapp_outside_window: int
    whatsapp_template: str | None
    unreachable: int
    needs_approval: bool
    warnings: list[str] = field(default_factory=list)


async def preview(
    session: AsyncSession,
    broadcast: Broadcast,
    *,
    now: datetime,
    segment_price: float,
    currency: str,
    approval_size: int,
) -> Preview:
    rows = audience_of(broadcast).subquery("audience")
    counted = (
        await session.execute(
            select(
                rows.c.channel,
                rows.c.locale,
                (rows.c.last_inbound_at < now - WHATSAPP_WINDOW).label("outside"),
                func.count(),
            ).group_by(rows.c.channel, rows.c.locale, "outside")
        )
    ).all()
    by_channel: Counter[str] = Counter()
    by_language: Counter[str] = Counter()
    sms_by_language: Counter[str] = Counter()
    outside = 0
    for channel, locale, stale, count in counted:
        by_channel[channel] += count
        by_language[locale] += count
        if channel == "sms":
            sms_by_language[locale] += count
        if channel == "whatsapp" and stale is not False:
            outside += count  # never written from (None) counts as outside, too
    texts = broadcast.texts
    missing = {loc: n for loc, n in sorted(by_language.items()) if loc not in texts}
    # As sent: the text and the footer, in the longest form the footer takes (a ward number).
    sms_segments = {
        loc: segments(to_gsm7(f"{text} {footer(loc, '116')}"))
        for loc, text in sorted(texts.items())
    }
    cost = sum(n * sms_segments.get(loc, sms_segments["en"]) for loc, n in sms_by_language.items())
    lost = int(
        await session.scalar(
            unreachable(
                wards=wards_of(broadcast),
                everyone=is_city_wide(broadcast),
                channels=broadcast.channels,
                topic=broadcast.topic,
                point=point_of(broadcast),
            )
        )
        or 0
    )
    total = sum(by_channel.values())
    warnings = [
        f"no {loc} text: {n} resident{'s' if n != 1 else ''} will get the English one"
        for loc, n in missing.items()
    ]
    warnings.extend(
        f"the {loc} text takes {n} SMS segments: it goes as more than one message"
        for loc, n in sms_segments.items()
        if n > SMS_BUDGET
    )
    if outside and not broadcast.whatsapp_template:
        warnings.append(
            f"{outside} WhatsApp residents are outside the 24-hour window: choose an approved "
            "template or they are skipped"
        )
    return Preview(
        recipients=total,
        by_channel=dict(sorted(by_channel.items())),
        by_language=dict(sorted(by_language.items())),
        missing_translations=missing,
        sms_segments=sms_segments,
        sms_cost=round(cost * segment_price, 2),
        currency=currency,
        whatsapp_outside_window=outside,
        whatsapp_template=broadcast.whatsapp_template,
        unreachable=lost,
        needs_approval=_needs_approval(broadcast, total, approval_size),
        warnings=warnings,
    )


def _needs_approval(broadcast: Broadcast, recipients: int, approval_size: int) -> bool:
    return broadcast.urgency == "emergency" or is_city_wide(broadcast) or recipients > approval_size


async def _count(session: AsyncSession, broadcast: Broadcast) -> int:
    rows = audience_of(broadcast).subquery("audience")
    return int(await session.scalar(select(func.count()).select_from(rows)) or 0)


async def request_send(
    session: AsyncSession,
    broadcast: Broadcast,
    *,
    now: datetime,
    approval_size: int,
) -> str:
    """Send (at ``send_at``, or now): straight to ``scheduled``, or to ``awaiting_approval``
    where four eyes are needed. Returns the new state."""
    if broadcast.state not in _OPEN:
        raise BroadcastConflict(f"broadcast {broadcast.id} is {broadcast.state}, not a draft")
    if broadcast.expires_at is not None and broadcast.expires_at <= now:
        raise BroadcastConflict(f"broadcast {broadcast.id} has already expired")
    size = await _count(session, broadcast)
    broadcast.state = (
        "awaiting_approval" if _needs_approval(broadcast, size, approval_size) else "scheduled"
    )
    broadcast.updated_at = now
    return broadcast.state


async def approve(
    session: AsyncSession, broadcast: Broadcast, *, approver_id: int, now: datetime
) -> None:
    if broadcast.state != "awaiting_approval":
        raise BroadcastConflict(
            f"broadcast {broadcast.id} is {broadcast.state}: nothing to approve"
        )
    if broadcast.author_id == approver_id:
        raise BroadcastConflict("a broadcast is approved by someone other than its author")
    broadcast.state = "scheduled"
    broadcast.approved_by, broadcast.approved_at, broadcast.updated_at = approver_id, now, now


async def cancel(
    session: AsyncSession, broadcast: Broadcast, *, actor_id: int, now: datetime
) -> int:
    """Stop it: nothing more is claimed from now on. Returns how many queued rows were dropped."""
    if broadcast.state not in (*_OPEN, *_LIVE):
        raise BroadcastConflict(f"broadcast {broadcast.id} is {broadcast.state} already")
    broadcast.state = "cancelled"
    broadcast.cancelled_by, broadcast.cancelled_at, broadcast.updated_at = actor_id, now, now
    dropped = await session.execute(
        update(BroadcastDelivery)
        .where(*_rows_of(broadcast), BroadcastDelivery.state == "queued")
        .values(state="skipped", error="cancelled", updated_at=now)
    )
    return int(getattr(dropped, "rowcount", 0) or 0)


async def resend_failed(session: AsyncSession, broadcast: Broadcast, *, now: datetime) -> int:
    """Queue again the rows the provider refused; returns how many. Never those sent (or
    perhaps sent: ``unknown``), unreachable or skipped."""
    if broadcast.state not in ("sending", "sent"):
        raise BroadcastConflict(f"broadcast {broadcast.id} is {broadcast.state}: nothing to resend")
    if broadcast.expires_at is not None and broadcast.expires_at <= now:
        raise BroadcastConflict(f"broadcast {broadcast.id} has expired")
    queued = await session.execute(
        update(BroadcastDelivery)
        .where(*_rows_of(broadcast), BroadcastDelivery.state == "failed")
        .values(
            state="queued",
            error=None,
            resends=BroadcastDelivery.resends + 1,
            updated_at=now,
        )
    )
    count = int(getattr(queued, "rowcount", 0) or 0)
    if count:
        broadcast.state, broadcast.updated_at = "sending", now
    return count


@dataclass(frozen=True, slots=True)
class Report:
    state: str
    recipients: int
    # state -> count, and per channel, ward and language: state -> count
    totals: dict[str, int]
    by_channel: dict[str, dict[str, int]]
    by_ward: dict[str, dict[str, int]]
    by_language: dict[str, dict[str, int]]

    def rows(self) -> list[tuple[str, str, str, int]]:
        """(dimension, value, state, count) rows: the CSV export."""
        out: list[tuple[str, str, str, int]] = []
        for dimension, table in (
            ("channel", self.by_channel),
            ("ward", self.by_ward),
            ("language", self.by_language),
        ):
            for value, states in table.items():
                out.extend((dimension, value, s, n) for s, n in states.items())
        return out


def _rows_of(broadcast: Broadcast) -> tuple[ColumnElement[bool], ...]:
    """A broadcast's delivery rows. Its ``deliveries_at`` is their ``created_at`` (the partition
    key on PostgreSQL), so naming it reads one month's partition instead of every one; before
    its fan-out it has none."""
    if broadcast.deliveries_at is None:
        return (BroadcastDelivery.broadcast_id == broadcast.id,)
    return (
        BroadcastDelivery.broadcast_id == broadcast.id,
        BroadcastDelivery.created_at == broadcast.deliveries_at,
    )


def summary_document(report: Report) -> dict[str, Any]:
    """What ``Broadcast.report_summary`` keeps: counts only, nobody's identity."""
    return {
        "totals": report.totals,
        "by_channel": report.by_channel,
        "by_ward": report.by_ward,
        "by_language": report.by_language,
    }


async def report(session: AsyncSession, broadcast: Broadcast) -> Report:
    """Where each delivery stands. ``delivered`` and ``undelivered`` come from the providers'
    receipts (Twilio status callbacks update the message log the send wrote). Once retention
    has dropped the month of its rows, the counts kept on the broadcast as they were then."""
    kept = broadcast.report_summary
    if kept is not None:
        return Report(
            state=broadcast.state,
            recipients=sum(kept["totals"].values()),
            totals=dict(kept["totals"]),
            by_channel=dict(kept["by_channel"]),
            by_ward=dict(kept["by_ward"]),
            by_language=dict(kept["by_language"]),
        )
    receipt = (
        select(MessageLog.status)
        .where(MessageLog.provider_message_id == BroadcastDelivery.provider_message_id)
        .limit(1)
        .scalar_subquery()
    )
    rows = (
        await session.execute(
            select(
                BroadcastDelivery.channel,
                BroadcastDelivery.ward,
                BroadcastDelivery.locale,
                BroadcastDelivery.state,
                receipt,
                func.count(),
            )
            .where(*_rows_of(broadcast))
            .group_by(
                BroadcastDelivery.channel,
                BroadcastDelivery.ward,
                BroadcastDelivery.locale,
                BroadcastDelivery.state,
                receipt,
            )
        )
    ).all()
    totals: Counter[str] = Counter()
    tables: dict[str, dict[str, Counter[str]]] = {"channel": {}, "ward": {}, "language": {}}
    for channel, ward, locale, state, status, count in rows:
        shown = _shown_state(state, status)
        totals[shown] += count
        for dimension, value in (("channel", channel), ("ward", ward), ("language", locale)):
            tables[dimension].setdefault(value or "unknown", Counter())[shown] += count
    return Report(
        state=broadcast.state,
        recipients=sum(totals.values()),
        totals=dict(sorted(totals.items())),
        by_channel={k: dict(sorted(v.items())) for k, v in sorted(tables["channel"].items())},
        by_ward={k: dict(sorted(v.items())) for k, v in sorted(tables["ward"].items())},
        by_language={k: dict(sorted(v.items())) for k, v in sorted(tables["language"].items())},
    )


def _shown_state(state: str, receipt: str | None) -> str:
    if state == "sent" and receipt in ("delivered", "read"):
        return "delivered"
    if state == "sent" and receipt in ("undelivered", "failed"):
        return "failed"
    return state
