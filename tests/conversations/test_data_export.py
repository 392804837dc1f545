"""EXPORT MY DATA in the conversation: the summary in the resident's language, the link on web
chat only, audited; nothing of another resident; nothing personal after an erasure."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.bootstrap import turn_loop_on
from channels.types import InboundMessage
from conversations.commands import CommandKind, parse_command
from conversations.data_export import DataExport, mask_address
from conversations.export_links import ExportLinks
from conversations.keywords import HELP_TEXT
from conversations.turn import TurnResult
from forms_runtime.effects import Ask, Notice
from forms_runtime.i18n import tr
from storage.models import AuditLog, MessageLog, Resident
from storage.resident_data import resident_record
from tests.conversations.conftest import Harness
from tests.conversations.stores import redis_client
from tests.conversations.test_turn import _answer
from tests.storage.databases import postgres_database, redis_url_or_skip

PUBLIC_URL = "https://bot.city.example"


@pytest.fixture
def h(harness: Harness) -> Harness:
    # The app's turn loop signs links; the harness's is built without, so give it the same.
    harness.loop.router.data_export = DataExport(
        links=ExportLinks("test", PUBLIC_URL), message_retention_days=30
    )
    return harness


async def _report(h: Harness, *, phone: str = "083 123 4567") -> str:
    """A pothole report with the resident's phone number (a personal answer)."""
    await h.say("pothole")
    await h.say("1")
    result = await h.say("yes")  # consent
    rng = random.Random(7)
    while result.reference is None:
        last = result.effects[-1]
        if isinstance(last, Ask) and last.kind == "yes_no":
            result = await h.say("yes")
        elif isinstance(last, Ask) and last.kind == "phone":
            result = await h.say(phone)
        else:
            result = await _answer(h, result, rng)
    return result.reference


def _notices(result: TurnResult) -> list[str]:
    return [e.message for e in result.effects if isinstance(e, Notice)]


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("EXPORT MY DATA", "en"),
        ("my data", "en"),
        ("Voer my data uit", "af"),
        ("idatha yami", "zu"),
        ("thumela imininingwane yami", "zu"),
        ("iinkcukacha zam", "xh"),
    ],
)
def test_export_my_data_is_a_command_in_every_language(text: str, locale: str) -> None:
    command = parse_command(text)
    assert command is not None and command.kind is CommandKind.EXPORT_DATA, locale


@pytest.mark.parametrize(
    ("locale", "words"),
    [
        ("en", "EXPORT MY DATA"),
        ("af", "VOER MY DATA UIT"),
        ("zu", "IDATHA YAMI"),
        ("xh", "IDATHA YAM"),
    ],
)
def test_help_names_the_export_words_of_each_language(locale: str, words: str) -> None:
    assert words in tr(locale, HELP_TEXT)
    command = parse_command(words)
    assert command is not None and command.kind is CommandKind.EXPORT_DATA


async def test_export_my_data_on_web_chat_summarises_and_links_and_is_audited(h: Harness) -> None:
    reference = await _report(h)
    await h.say("subscribe")  # the wards of the latest report
    result = await h.say("export my data")
    summary, link = _notices(result)
    assert summary.startswith("What we hold about you:")
    assert f"Reports (1): {reference} (received and waiting to be sent to the city)." in summary
    assert "News for wards: 94." in summary
    assert "You agreed to share your contact details with the city on 2026-03-02." in summary
    assert "We delete the words of each message after 30 days." in summary
    # The address they write from, in full: it is this chat.
    assert "web chat resident-1 (this chat)" in summary
    assert link.startswith("Download everything we hold about you")
    token = link.rsplit("/my-data/", 1)[1]
    links = ExportLinks("test", PUBLIC_URL)
    async with h.sessionmaker() as session:
        resident = (await session.execute(select(Resident))).scalar_one()
        audit = (await session.execute(select(AuditLog).where(AuditLog.action == "export"))).all()
    assert links.read(token, now=h.clock.now) == resident.id
    assert len(audit) == 1
    row = audit[0][0]
    assert row.actor == row.subject == f"resident:{resident.id}"
    assert row.details == {"via": "chat", "link": True}


async def test_export_my_data_in_isizulu_over_sms_has_no_link_and_masks_nothing_of_its_own(
    h: Harness,
) -> None:
    h.channel, h.address = "sms", "+27831234567"
    await h.say("isiZulu")
    result = await h.say("idatha yami")
    (summary,) = _notices(result)
    assert summary.splitlines()[0] == tr("zu", "What we hold about you:") == "Esinakho ngawe:"
    assert tr("zu", "Reports: none.") in summary
    assert "i-SMS +27831234567 (le ngxoxo)" in summary
    assert "/my-data/" not in summary


def test_other_addresses_are_masked() -> None:
    assert mask_address("+27831234567") == "+*********67"
    assert mask_address("123456789") == "*******89"
    assert mask_address("abc") == "***"


async def test_the_export_holds_nothing_of_another_resident(h: Harness) -> None:
    theirs = await _report(h, phone="082 555 0101")
    h.address = "resident-2"
    mine = await _report(h, phone="083 999 0202")
    await h.say("export my data")
    async with h.sessionmaker() as session:
        ids = (await session.execute(select(Resident.id).order_by(Resident.id))).scalars().all()
        record = await resident_record(session, ids[1])
    assert record is not None
    dumped = repr(record)
    assert mine in dumped and "083 999 0202" in dumped and "resident-2" in dumped
    assert theirs not in dumped and "082 555 0101" not in dumped and "resident-1" not in dumped
    assert f"resident:{ids[0]}" not in dumped


async def test_after_erasure_the_export_shows_nothing_personal(h: Harness) -> None:
    reference = await _report(h)
    await h.say("subscribe")
    async with h.sessionmaker() as session:
        resident_id = (await session.execute(select(Resident.id))).scalar_one()
    await h.say("delete my data")
    erased = await h.say("yes")
    h.clock.advance(timedelta(minutes=1))
    async with h.sessionmaker() as session:
        record = await resident_record(session, resident_id)
    assert record is not None
    assert record["addresses"] == [] and record["subscriptions"] == []
    assert record["resident"]["consent_given_at"] is None
    assert record["resident"]["erased_at"] is not None
    # Only the erasure's own exchange keeps its words ("yes", "Your personal data is deleted").
    kept = [m["text"] for m in record["messages"] if m["text"] is not None]
    assert kept == ["yes", erased.effects[-1].message]  # type: ignore[union-attr]
    (report,) = record["reports"]
    assert report["reference"] == reference and "phone" not in report["answers"]
    assert "083 123 4567" not in repr(record) and "resident-1" not in repr(record)
    # Nor does the message log keep where any of their messages came from, the erasure's too.
    async with h.sessionmaker() as session:
        addresses = (
            await session.execute(
                select(MessageLog.address).where(MessageLog.resident_id == resident_id)
            )
        ).scalars()
        assert set(addresses) == {None}


async def test_export_and_erasure_on_postgresql_with_redis_leave_no_address_behind() -> None:
    """The turn loop of a deployment: state in Redis, the message log written behind the turns
    (the erasure's own rows are queued after its scrub)."""
    async with postgres_database() as url, redis_client() as (_client, prefix):
        loop = turn_loop_on(
            url,
            redis_url_or_skip(),
            rate_burst=100,
            redis_prefix=prefix,
            data_export=DataExport(links=ExportLinks("test", PUBLIC_URL)),
        )
        try:
            address = uuid.uuid4().hex

            async def say(text: str) -> TurnResult:
                return await loop.handle(
                    InboundMessage("webchat", address, uuid.uuid4().hex, text=text)
                )

            await say("isiZulu")
            summary, link = _notices(await say("idatha yami"))
            assert summary.startswith("Esinakho ngawe:") and "/my-data/" in link
            await say("delete my data")
            await say("yes")
            await loop.flush()
            async with loop.sessionmaker() as session:
                resident_id = (await session.execute(select(Resident.id))).scalar_one()
                record = await resident_record(session, resident_id)
                addresses = set(
                    (
                        await session.execute(
                            select(MessageLog.address).where(MessageLog.resident_id == resident_id)
                        )
                    ).scalars()
                )
                audited = (
                    await session.execute(select(AuditLog.action).order_by(AuditLog.id))
                ).scalars()
                assert list(audited) == ["export", "erase"]
        finally:
            await loop.close()
    assert record is not None and record["addresses"] == []
    assert addresses == {None}
    assert address not in repr(record)
