"""EXPORT MY DATA: a resident's access request (POPIA section 23), answered in the conversation.

The answer is a short summary in the resident's language: their reports with references and
statuses, the wards they follow, when they agreed to (or declined) sharing their details, how
many messages are kept and for how long, and how the city reaches them on each channel (masked,
except the address they are writing from: whoever holds this phone or chat already knows it).
On the web chat, where a link can be opened, a signed link to the whole export as JSON follows
(``conversations.export_links``; served by ``bot.web.resident_export``). Both are audited as
``export`` by ``resident:N``; what is exported is ``storage.resident_data.resident_record``, the
same record an admin exports for a resident.

Example::

    data_export = DataExport(links=ExportLinks(secret, public_url), message_retention_days=90)
    await data_export.answer(turn)     # a Notice with the summary, and on web chat the link
    record = await data_export.download(sessionmaker, token, now=now)   # the route's work
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from conversations.export_links import ExportLinks
from conversations.status_lookup import STATUS_TEXTS
from conversations.turn_context import Turn
from forms_runtime.effects import Notice
from forms_runtime.i18n import N_, tr
from storage.models import AuditLog
from storage.resident_data import resident_record

__all__ = ["DataExport", "UnknownResident", "mask_address", "summary"]

# The only channel whose replies can carry a link a resident opens in the same place.
LINK_CHANNEL = "webchat"

_CHANNEL_NAMES = {
    "sms": N_("SMS"),
    "whatsapp": N_("WhatsApp"),
    "telegram": N_("Telegram"),
    "webchat": N_("web chat"),
}

_AUDIT = insert(cast(Table, AuditLog.__table__))


class UnknownResident(Exception):
    """A genuine link to a resident who is not in the database (a database restored from an
    older backup, say)."""


@dataclass(frozen=True, slots=True)
class DataExport:
    # None where no link can be signed (tests, and turn loops built without the app).
    links: ExportLinks | None = None
    message_retention_days: int = 90

    async def answer(self, turn: Turn) -> None:
        """The summary, the link on web chat, and the audit row, all with the turn."""
        record = await resident_record(await turn.sql(), turn.resident_id)
        if record is None:  # the turn loop made the resident; only a race with a purge gets here
            return
        locale = turn.locale
        message = turn.message
        turn.say(
            Notice(
                summary(
                    record,
                    locale,
                    here=(message.channel, message.address),
                    retention_days=self.message_retention_days,
                )
            )
        )
        link = self.links is not None and message.channel == LINK_CHANNEL
        if link and self.links is not None:
            url = self.links.url_for(turn.resident_id, now=turn.now)
            until = (turn.now + self.links.lifetime).strftime("%H:%M")
            text = N_(
                "Download everything we hold about you (the link works until {time} UTC): {url}"
            )
            turn.say(Notice(tr(locale, text, time=until, url=url)))
        await turn.audit("export", {"via": "chat", "link": link})

    async def download(
        self, sessions: async_sessionmaker[AsyncSession], token: str, *, now: datetime
    ) -> dict[str, Any]:
        """The export a link stands for, audited; ``ForgedExportLink``, ``ExpiredExportLink``
        (from ``export_links``) or ``UnknownResident`` when there is none to give."""
        if self.links is None:
            raise UnknownResident("no export links are signed here")
        resident_id = self.links.read(token, now=now)
        async with sessions() as session, session.begin():
            record = await resident_record(session, resident_id)
            if record is None:
                raise UnknownResident(f"no resident {resident_id}")
            subject = f"resident:{resident_id}"
            await session.execute(
                _AUDIT,
                {
                    "at": now,
                    "actor": subject,
                    "action": "export",
                    "subject": subject,
                    "details": {"via": "link"},
                },
            )
        return record


def summary(
    record: dict[str, Any], locale: str, *, here: tuple[str, str], retention_days: int
) -> str:
    """The export in a few lines of the resident's language."""
    lines = [tr(locale, N_("What we hold about you:"))]
    reports = record["reports"]
    if reports:
        listed = "; ".join(f"{r['reference']} ({_status(locale, r['status'])})" for r in reports)
        lines.append(
            tr(locale, N_("Reports ({count}): {reports}."), count=len(reports), reports=listed)
        )
    else:
        lines.append(tr(locale, N_("Reports: none.")))
    wards = ", ".join(s["ward"] for s in record["subscriptions"])
    if wards:
        lines.append(tr(locale, N_("News for wards: {wards}."), wards=wards))
    else:
        lines.append(tr(locale, N_("News for wards: none.")))
    lines.append(_consent(record["resident"], locale))
    kept = sum(1 for m in record["messages"] if m["text"] is not None)
    text = N_("Messages kept: {count}. We delete the words of each message after {days} days.")
    lines.append(tr(locale, text, count=kept, days=retention_days))
    reached = ", ".join(_address(a, locale, here) for a in record["addresses"])
    if reached:
        lines.append(tr(locale, N_("How we reach you: {addresses}."), addresses=reached))
    return "\n".join(lines)


def mask_address(address: str) -> str:
    """All but the last two characters hidden (and a phone number's ``+``): enough for the
    resident to recognise their number, too little for anyone else to use it."""
    shown = address[-2:] if len(address) > 4 else ""
    lead = "+" if address.startswith("+") else ""
    return lead + "*" * (len(address) - len(shown) - len(lead)) + shown


def _status(locale: str, status: str) -> str:
    return tr(locale, STATUS_TEXTS[status]) if status in STATUS_TEXTS else status


def _consent(resident: dict[str, Any], locale: str) -> str:
    given, declined = resident["consent_given_at"], resident["consent_declined_at"]
    if given is not None:
        text = N_("You agreed to share your contact details with the city on {date}.")
        return tr(locale, text, date=given[:10])
    if declined is not None:
        text = N_("You declined to share your contact details with the city on {date}.")
        return tr(locale, text, date=declined[:10])
    return tr(locale, N_("You have not been asked to share your contact details."))


def _address(address: dict[str, Any], locale: str, here: tuple[str, str]) -> str:
    channel, value = address["channel"], address["address"]
    name = tr(locale, _CHANNEL_NAMES[channel]) if channel in _CHANNEL_NAMES else channel
    if (channel, value) == here:
        return tr(locale, N_("{channel} {address} (this chat)"), channel=name, address=value)
    return f"{name} {mask_address(value)}"
