"""USSD residents against the running app: what happens after the session has closed.

USSD cannot message first, so everything citybot says later goes by SMS: the reference, the
city's number once the report is filed, every status update, and an agent's answer to a
call-back request. The app runs with its workers (filer, status poller, notifier) on loopback;
the gateway's posts come over real HTTP and the SMS go through the real Africa's Talking SDK to
the fake (``tests.fakes.africastalking_api``), which is all the resident ever sees.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from channels.ussd_screens import MAX_SCREEN
from forms_runtime.effects import Review
from forms_runtime.i18n import LOCALES, N_, tr
from storage.models import SupportMessage, SupportTicket
from tests.e2e.city import City, ProviderResident, choose, eventually, running_city
from tests.e2e.test_report_loop import close_the_loop
from tests.fakes.africastalking_api import API_KEY, USERNAME, FakeAfricasTalking, UssdPhone
from tests.notifier.test_broadcasts import official

SECRET = "ussd-secret-for-e2e-00001"


class UssdResident(ProviderResident):
    """A feature phone: dials, reads each screen, types numbers and words; reads its SMS."""

    channel = "ussd"

    def __init__(self, city: City, at: FakeAfricasTalking, phone: str = "+27831239001") -> None:
        super().__init__(city, phone)
        self.at = at
        self.handset = UssdPhone(city.http, f"{city.url}/webhooks/ussd/{SECRET}", phone)
        self.screens: list[str] = []

    async def dial(self) -> str:
        return self._read(await self.handset.dial())

    async def type(self, entry: str) -> str:
        return self._read(await self.handset.type(entry))

    def _read(self, screen: str) -> str:
        assert self.handset.last_status == 200, screen
        assert screen.startswith(("CON ", "END ")) and len(screen) - 4 <= MAX_SCREEN, screen
        self.screens.append(screen)
        return screen

    async def report(self, form_id: str, locale: str) -> str:
        await self.dial()
        await self.type(str(LOCALES.index(locale) + 1))
        await self.type("1")  # Report a problem
        for _ in range(40):
            done = [r.reference for r in self._my_results() if r.reference]
            if done:
                return done[-1]
            question = self.last_question()
            kind, value, number = choose(question, self.rng, form_id)
            if isinstance(question, Review):
                number = [o.id for o in question.options].index("send") + 1
            if kind == "option":
                await self.type(str(number))
            elif kind == "location":
                # No pins on USSD: the first letters of the suburb, then its number.
                await self.type("khayel")
                await self.type("1")
            else:
                await self.type(str(value))
        raise AssertionError(f"{form_id} did not finish on USSD")

    def received(self) -> list[str]:
        return [r.form["message"] for r in self.at.sms() if r.form["to"] == self.address]


@pytest.fixture
async def ussd_city(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[City, FakeAfricasTalking]]:
    async with FakeAfricasTalking(tmp_path) as at:
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        for name, value in at.environ().items():
            monkeypatch.setenv(name, value)
        env = {
            "USSD_SERVICE_CODE": "*120*311#",
            "USSD_WEBHOOK_SECRET": SECRET,
            "AFRICASTALKING_USERNAME": USERNAME,
            "AFRICASTALKING_API_KEY": API_KEY,
        }
        async with running_city(tmp_path, env=env) as city:
            yield city, at


@pytest.mark.parametrize("locale", ["en", "xh"])
async def test_a_ussd_resident_is_told_the_reference_filed_and_closed_by_sms(
    ussd_city: tuple[City, FakeAfricasTalking], locale: str
) -> None:
    city, at = ussd_city
    resident = UssdResident(city, at)
    await close_the_loop(city, resident, locale)
    # The reference came by SMS the moment the report was stored, before the filing's notice.
    [reference] = [r.reference for r in resident._my_results() if r.reference]
    assert reference in resident.received()[0]
    assert any(reference in screen for screen in resident.screens)


async def test_talk_to_a_person_is_a_call_back_request_answered_by_sms(
    ussd_city: tuple[City, FakeAfricasTalking],
) -> None:
    city, at = ussd_city
    resident = UssdResident(city, at)
    await resident.dial()
    await resident.type("1")  # English
    end = await resident.type("5")  # Talk to a person
    queued = tr(
        "en", N_("A person will contact you by SMS. You are number {position} in the queue.")
    )
    assert end.startswith("END ") and queued.format(position=1) in end, end
    assert "00 More" not in end and "answer you here" not in end

    agent = await official(city, "thandi@city.gov", ["agent"])
    status, queue = await agent.call("GET", "/api/v1/support/queue")
    assert status == 200, queue
    (ticket,) = queue["items"]
    assert (ticket["channel"], ticket["reason"]) == ("ussd", "callback")
    async with city.services.session_factory() as db:
        row = await db.get(SupportTicket, ticket["id"])
        assert row is not None and row.address == resident.address
        notes = (
            await db.scalars(
                select(SupportMessage.text).where(
                    SupportMessage.ticket_id == ticket["id"], SupportMessage.direction == "system"
                )
            )
        ).all()
    assert any("Call-back request from a USSD session" in note for note in notes), notes

    status, _ = await agent.call("POST", f"/api/v1/support/tickets/{ticket['id']}/claim")
    assert status == 200
    status, sent = await agent.call(
        "POST",
        f"/api/v1/support/tickets/{ticket['id']}/messages",
        {"text": "Hello, this is Thandi from the city. Which street has no water?"},
    )
    assert status == 200, sent

    async def answered() -> bool:
        return any("Which street has no water?" in text for text in resident.received())

    await eventually(answered)


async def test_a_status_answer_too_long_for_the_last_screen_comes_whole_by_sms(
    ussd_city: tuple[City, FakeAfricasTalking],
) -> None:
    """The city's notes make the answer longer than a screen; after END nobody can type "00",
    so the screen shows what fits and the whole answer follows by SMS."""
    city, at = ussd_city
    resident = UssdResident(city, at)
    reference = await resident.report("pothole", "en")
    filed = await eventually(lambda: city.filed(reference))
    notes = (
        "The crew filled the hole on Tuesday and rolled it twice; the road markings will be "
        "painted again next week when the weather is dry, and the kerb beside it is booked "
        "for repair by the roads depot in Bellville at the end of the month."
    )
    await city.staff_sets_status(filed.service_request_id, "closed", notes)

    async def closed() -> bool:
        return (await city.submission(reference)).status == "closed"

    await eventually(closed)
    before = len(resident.received())
    await resident.dial()
    await resident.type("2")  # Check a request
    end = await resident.type(reference)
    assert end.startswith("END ") and reference in end and "\n00 " not in end, end
    assert "bellville at the end of the month" not in end.lower()

    async def texted() -> list[str]:
        return [t for t in resident.received()[before:] if "end of the month" in t]

    [whole] = await eventually(texted)
    assert reference in whole and "The crew filled the hole" in whole
