"""What staff start themselves, end to end on a running city with the fake providers: an agent
takes over a Telegram conversation the resident never asked about (the resident told in their
language, the bot silent until the handback), and reopens a WhatsApp conversation after its
24-hour window with an approved template, which the real Twilio SDK sends as a ContentSid."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from conversations.support import SupportDesk
from forms_runtime.i18n import tr
from staff.support import REOPEN_TEXT
from staff.support_takeover import JOINED_NOTICE
from storage.models import AuditLog, MessageLog, ResidentAddress
from storage.types import utc_now
from tests.e2e.city import City, TelegramResident, WhatsAppResident, eventually, running_city
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import FakeTwilio
from tests.notifier.test_broadcasts import official

TEMPLATES = {"support_reopen": "HXreopen0123", "status_update": "HXstatus0123"}


async def _holds(check: Callable[[], bool]) -> bool:
    # ``eventually`` awaits its check; these look at what the fakes recorded.
    return check()


@pytest.fixture
async def city(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[City]:
    # The channels read their templates from the process environment (bot.channel_setup).
    monkeypatch.setenv("TWILIO_WHATSAPP_TEMPLATES", json.dumps(TEMPLATES))
    env = {"CITYBOT_OFFICE_HOURS": "always"}
    async with (
        FakeTelegram() as telegram,
        FakeTwilio() as twilio,
        running_city(tmp_path, telegram=telegram, twilio=twilio, env=env) as c,
    ):
        yield c


async def test_an_agent_takes_over_a_conversation_the_resident_never_asked_about(
    city: City,
) -> None:
    resident = TelegramResident(city, 5557001)
    reference = await resident.report("pothole", "xh")
    agent = await official(city, "thandi@city.gov", ["agent"])
    status, found = await agent.call("GET", f"/api/v1/support/conversations?reference={reference}")
    assert status == 200, found
    (conversation,) = found["items"]
    assert (conversation["channel"], conversation["language"]) == ("telegram", "xh")

    status, ticket = await agent.call(
        "POST", f"/api/v1/support/conversations/{conversation['conversation_id']}/takeover"
    )
    assert (status, ticket["state"], ticket["agent_id"]) == (201, "held", agent.account_id)
    joined = tr("xh", JOINED_NOTICE)
    assert joined != tr("en", JOINED_NOTICE)
    await eventually(lambda: _holds(lambda: joined in resident.received()))

    # The bot is silent: what the resident says is the agent's to read. Each process reads which
    # conversations a person holds at most once a second (conversations.support): a message
    # within that second of the takeover may still be the bot's, so the resident speaks after it.
    await asyncio.sleep(SupportDesk().refresh.total_seconds() + 0.2)
    before = len(resident.received())
    await resident.say(("text", "menu", 0))
    path = f"/api/v1/support/tickets/{ticket['id']}"

    async def in_transcript() -> bool:
        _, shown = await agent.call("GET", path)
        return any(m["direction"] == "resident" and m["text"] == "menu" for m in shown["messages"])

    await eventually(in_transcript)
    assert len(resident.received()) == before
    status, _ = await agent.call("POST", path + "/handback", {"outcome": "resolved"})
    assert status == 200
    await eventually(lambda: _holds(lambda: len(resident.received()) > before))


async def test_a_closed_whatsapp_window_is_reopened_with_an_approved_template(city: City) -> None:
    resident = WhatsAppResident(city, "+27821119999")
    await resident.say(("text", "taal af", 0))
    await resident.say(("text", "agent", 0))
    agent = await official(city, "sipho@city.gov", ["agent"])
    status, queue = await agent.call("GET", "/api/v1/support/queue")
    (waiting,) = queue["items"]
    path = f"/api/v1/support/tickets/{waiting['id']}"
    assert (await agent.call("POST", path + "/claim"))[0] == 200
    async with city.services.session_factory() as session, session.begin():
        await session.execute(
            update(ResidentAddress).values(last_inbound_at=utc_now() - timedelta(hours=25))
        )

    status, context = await agent.call("GET", path + "/context")
    assert status == 200, context
    window = context["channel"]
    assert window["window_open"] is False
    # The templates a broadcast may choose, less the notifier's own (reference, status).
    assert window["templates"] == ["support_reopen"]
    status, refused = await agent.call("POST", path + "/template", {"template": "status_update"})
    assert status == 400 and "support_reopen" in refused["error"]["message"]
    assert (await agent.call("POST", path + "/template", {"template": "nope"}))[0] == 400

    status, sent = await agent.call("POST", path + "/template", {"template": "support_reopen"})
    assert status == 200, sent
    text = tr("af", REOPEN_TEXT)
    assert text != tr("en", REOPEN_TEXT)

    async def template_sent() -> bool:
        return any(m.get("ContentSid") == "HXreopen0123" for m in resident.sent())

    await eventually(template_sent)
    (form,) = [m for m in resident.sent() if m.get("ContentSid")]
    assert json.loads(form["ContentVariables"]) == {"1": text}
    assert "Body" not in form
    # Logged with the provider's id, so Twilio's receipts find it.
    async with city.services.session_factory() as session:
        logged = (
            await session.scalars(
                select(MessageLog.provider_message_id).where(
                    MessageLog.direction == "out", MessageLog.text == text
                )
            )
        ).all()
    assert len(logged) == 1 and logged[0]
    _, shown = await agent.call("GET", path)
    assert shown["messages"][-1]["text"] == f"[support_reopen] {text}"
    async with city.services.session_factory() as session:
        audited = (
            await session.scalars(
                select(AuditLog.action).where(AuditLog.subject == f"ticket:{waiting['id']}")
            )
        ).all()
    assert audited.count("support.template") == 1 and "support.context" in audited
    # Another agent's conversation is not theirs to reopen.
    other = await official(city, "naledi@city.gov", ["agent"])
    assert (await other.call("POST", path + "/template", {"template": "support_reopen"}))[0] == 409
