"""USSD over HTTP: the fake gateway drives whole sessions through the real app; the SMS that
follow go through the real Africa's Talking SDK to a fake Africa's Talking that records them."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import datetime
from ipaddress import ip_network
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, make_url, select

from bot.app import SERVICES_KEY, create_app
from bot.config import Settings
from bot.ussd import TIME_BUDGET, UssdDialogue
from channels.types import InboundMessage
from channels.ussd import UssdHit
from channels.ussd_screens import MAX_SCREEN
from conversations.erasure import erase_resident
from conversations.office_hours import OfficeHours
from conversations.turn import TurnResult
from conversations.ussd_sessions import UssdSessions
from forms_runtime.i18n import LOCALES, N_, tr
from forms_runtime.sms import GSM7_EXTENDED, is_gsm7
from storage.models import (
    MessageLog,
    Resident,
    ResidentAddress,
    Submission,
    Subscription,
    SupportMessage,
    SupportTicket,
    UssdSession,
)
from storage.types import utc_now
from tests.fakes.africastalking_api import (
    API_HOST,
    API_KEY,
    USERNAME,
    FakeAfricasTalking,
    UssdPhone,
)
from tests.storage.databases import postgres_database

SECRET = "ussd-secret-for-tests-0001"
PATH = "/webhooks/ussd/" + SECRET


@pytest.fixture
async def at(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeAfricasTalking]:
    """The fake, reached by the unchanged SDK through requests' proxy and CA settings."""
    async with FakeAfricasTalking(tmp_path) as fake:
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        for name, value in fake.environ().items():
            monkeypatch.setenv(name, value)
        yield fake


@pytest.fixture
def ussd_settings(settings: Settings, at: FakeAfricasTalking) -> Settings:
    return replace(
        settings,
        ussd_service_code="*120*311#",
        ussd_webhook_secret=SECRET,
        africastalking_username=USERNAME,
        africastalking_api_key=API_KEY,
    )


@pytest.fixture
async def ussd_client(
    aiohttp_client: Callable[..., Any], ussd_settings: Settings
) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = await aiohttp_client(
        await create_app(ussd_settings, workers=False)
    )
    return client


def _phone(client: TestClient[Any, Any], number: str = "+27831234567") -> UssdPhone:
    return UssdPhone(client, PATH, number)


async def _wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def _report(phone: UssdPhone) -> str:
    """A general enquiry from the menu to its end, answering whatever each screen asks."""
    screen = await phone.dial()
    screen = await phone.type("1")  # English
    screen = await phone.type("1")  # Report a problem
    for _ in range(5):
        if "General enquiry" in screen:
            break
        screen = await phone.type("00")
    number = next(
        line.split(" ", 1)[0] for line in screen.splitlines() if line.endswith("General enquiry")
    )
    screen = await phone.type(number)
    seen = []
    for _ in range(30):
        _assert_fits(screen)
        seen.append(screen)
        if screen.startswith("END"):
            return "\n".join(seen)
        lines = screen.splitlines()
        if "suburb or settlement" in screen:
            screen = await phone.type("khayel")
            screen = await phone.type("1")
            assert "Which street or landmark in Khayelitsha?" in screen, screen
        elif any(line.startswith("1 ") for line in lines):
            screen = await phone.type("1")
        elif lines[-2:-1] == ["00 More"] or lines[-1] == "00 More":
            screen = await phone.type("00")
        else:
            # What residents type: an emoji, a brace, a euro sign (shown, not sent, as GSM-7).
            screen = await phone.type("Water runs {daily} near the clinic \U0001f4a7 \u20ac")
    raise AssertionError(f"the session never ended: {screen}")


def _assert_fits(screen: str) -> None:
    assert screen.startswith(("CON ", "END ")), screen
    assert len(screen[4:]) <= MAX_SCREEN, screen
    # 182 characters on the handset: GSM-7, and none of its two-septet extension characters.
    assert is_gsm7(screen) and not set(screen) & GSM7_EXTENDED, screen
    # USSD has no location pins: no screen offers one.
    assert not re.search(r"\bpins?\b", screen), screen


async def test_a_whole_report_is_filed_and_its_reference_sent_by_sms(
    ussd_client: TestClient[Any, Any], at: FakeAfricasTalking
) -> None:
    phone = _phone(ussd_client)
    first = await phone.dial()
    assert first.startswith("CON ") and "1 English" in first and "4 isiXhosa" in first
    end = await _report(_phone(ussd_client, "+27831234500"))
    assert "CT-" in end
    reference = end[end.index("CT-") : end.index("CT-") + 9]
    services = ussd_client.app[SERVICES_KEY]
    async with services.session_factory() as db:
        assert await db.scalar(select(func.count()).select_from(Submission)) == 1
    await _wait_for(lambda: len(at.sms()) == 1)
    sent = at.sms()[0]
    # What the real SDK built: the account, the number, the reference; sent to Africa's
    # Talking's own host (through the proxy, over TLS it verified).
    assert sent.form["username"] == USERNAME and sent.headers["apiKey"] == API_KEY
    assert sent.form["to"] == "+27831234500" and reference in sent.form["message"]
    assert sent.headers["Host"] == API_HOST
    assert at.proxy.tunnels == [(API_HOST, 443)]


async def test_a_gateway_retry_gets_the_same_screen_and_nothing_doubles(
    ussd_client: TestClient[Any, Any],
) -> None:
    phone = _phone(ussd_client)
    await phone.dial()
    await phone.type("1")
    menu = await phone.type("1")
    again = await phone.post()  # the same text again, as a gateway that timed out resends
    assert again == menu
    services = ussd_client.app[SERVICES_KEY]
    async with services.session_factory() as db:
        inbound = await db.scalar(
            select(func.count()).select_from(MessageLog).where(MessageLog.direction == "in")
        )
    assert inbound == 2  # "language en" and "menu": the retry ran no turn


async def test_the_whole_text_becomes_the_latest_input_with_free_text(
    ussd_client: TestClient[Any, Any],
) -> None:
    phone = _phone(ussd_client)
    await phone.dial()
    await phone.type("1")
    await phone.type("2")  # check a request
    screen = await phone.type("CT7KQ4XM")
    assert phone.parts == ["1", "2", "CT7KQ4XM"]
    assert screen.startswith("END ") and "CT-7KQ4XM" in screen


async def test_a_dropped_session_is_resumed_within_ten_minutes(
    ussd_client: TestClient[Any, Any],
) -> None:
    phone = _phone(ussd_client)
    await phone.dial()
    await phone.type("1")
    await phone.type("1")
    services_screen = await phone.type("00")
    # Cut off: the network ends the session. Dialling again offers to continue.
    offer = await phone.dial()
    assert offer.startswith("CON ") and "1 Continue" in offer and "2 Start again" in offer
    back = await phone.type("1")
    assert back == services_screen
    # Longer than ten minutes later: the menu, not the offer.
    services = ussd_client.app[SERVICES_KEY]
    async with services.session_factory.begin() as db:
        row = await db.get(UssdSession, "+27831234567")
        assert row is not None
        row.updated_at = row.updated_at.replace(year=2020)
    menu = await phone.dial()
    assert "1 Report a problem" in menu and "Continue" not in menu


async def test_a_wrong_secret_is_refused_and_nothing_stored(
    ussd_client: TestClient[Any, Any],
) -> None:
    phone = UssdPhone(ussd_client, "/webhooks/ussd/not-the-secret", "+27831234567")
    await phone.dial()
    assert phone.last_status == 403
    services = ussd_client.app[SERVICES_KEY]
    assert await UssdSessions(services.session_factory).get("+27831234567") is None
    async with services.session_factory() as db:
        assert await db.scalar(select(func.count()).select_from(MessageLog)) == 0


async def test_an_address_outside_the_allow_list_is_refused(
    aiohttp_client: Callable[..., Any], ussd_settings: Settings
) -> None:
    only = replace(ussd_settings, ussd_allowed_ips=(ip_network("192.0.2.0/24"),))
    client = await aiohttp_client(await create_app(only, workers=False))
    phone = UssdPhone(client, PATH, "+27831234567")
    await phone.dial()
    assert phone.last_status == 403
    services = client.app[SERVICES_KEY]
    assert await UssdSessions(services.session_factory).get("+27831234567") is None
    async with services.session_factory() as db:
        assert await db.scalar(select(func.count()).select_from(MessageLog)) == 0


async def test_the_gateway_inside_the_allow_list_is_answered(
    aiohttp_client: Callable[..., Any], ussd_settings: Settings
) -> None:
    # The test client posts from loopback: the gateway's network here.
    listed = (ip_network("192.0.2.0/24"), ip_network("127.0.0.0/8"), ip_network("::1/128"))
    client = await aiohttp_client(
        await create_app(replace(ussd_settings, ussd_allowed_ips=listed), workers=False)
    )
    phone = UssdPhone(client, PATH, "+27831234567")
    screen = await phone.dial()
    assert phone.last_status == 200 and screen.startswith("CON Language")


@pytest.mark.parametrize(
    ("form", "reason"),
    [
        ({"sessionId": "", "phoneNumber": "+27831234567", "text": ""}, "sessionId"),
        ({"sessionId": "s1", "phoneNumber": "not a phone", "text": ""}, "phoneNumber"),
        ({"sessionId": "s1", "phoneNumber": "+27831234567", "text": "1" * 2000}, "text"),
        (
            {"sessionId": "s1", "phoneNumber": "+27831234567", "serviceCode": "*1#"},
            "serviceCode",
        ),
    ],
)
async def test_bad_gateway_posts_get_a_400_with_the_reason(
    ussd_client: TestClient[Any, Any], form: dict[str, str], reason: str
) -> None:
    response = await ussd_client.post(PATH, data=form)
    assert response.status == 400
    assert reason in (await response.json())["error"]


async def test_every_language_keeps_screens_within_182_characters(
    ussd_client: TestClient[Any, Any],
) -> None:
    for number, name in enumerate(["en", "af", "zu", "xh"], 1):
        phone = _phone(ussd_client, f"+2783123450{number}")
        await phone.dial()
        menu = await phone.type(str(number))
        _assert_fits(menu)
        screen = await phone.type("1")
        for _ in range(4):
            _assert_fits(screen)
            screen = await phone.type("00")
        assert name  # each locale's menu and service pages all fit


async def test_many_sessions_at_once_are_answered_within_two_seconds(
    ussd_client: TestClient[Any, Any],
) -> None:
    """The gateway gives up after a few seconds: under load every answer comes within two."""
    phones = [_phone(ussd_client, f"+2782{n:07d}") for n in range(40)]

    async def session(phone: UssdPhone) -> list[float]:
        took = []
        for entry in (None, "1", "1", "00"):
            started = time.monotonic()
            screen = await (phone.dial() if entry is None else phone.type(entry))
            took.append(time.monotonic() - started)
            assert phone.last_status == 200 and screen.startswith(("CON ", "END "))
        return took

    timings = await asyncio.gather(*(session(p) for p in phones))
    assert max(max(t) for t in timings) < 2.0


async def test_the_dialogue_is_built_by_the_composition_root_with_the_other_services(
    ussd_client: TestClient[Any, Any], aiohttp_client: Callable[..., Any], settings: Settings
) -> None:
    services = ussd_client.app[SERVICES_KEY]
    assert isinstance(services.ussd, UssdDialogue)
    assert services.ussd.channel is services.channels["ussd"]
    # USSD off: no dialogue, and the route says the channel is not configured.
    off = await aiohttp_client(await create_app(settings, workers=False))
    assert off.app[SERVICES_KEY].ussd is None
    response = await off.post(PATH, data={"sessionId": "s1", "phoneNumber": "+27831234567"})
    assert response.status == 404
    # Both variables or none: a service code without the secret leaves the channel off.
    half = replace(settings, ussd_service_code="*120*311#")
    half_app = await aiohttp_client(await create_app(half, workers=False))
    assert half_app.app[SERVICES_KEY].ussd is None


async def test_delete_my_data_from_the_menu_erases_and_forgets_where_the_phone_stood(
    ussd_client: TestClient[Any, Any],
) -> None:
    phone = _phone(ussd_client)
    await phone.dial()
    await phone.type("1")
    question = await phone.type("delete my data")
    assert "delete your data" in question and "1 Yes" in question, question
    done = await phone.type("1")
    assert done.startswith("END ") and "personal data is deleted" in done, done
    services = ussd_client.app[SERVICES_KEY]
    async with services.session_factory() as db:
        assert await db.get(UssdSession, "+27831234567") is None
        assert await db.scalar(select(Resident.erased_at)) is not None
    # Dialling again is a new resident's first screen, not an offer to continue.
    again = await phone.dial()
    assert "1 English" in again and "Continue" not in again


async def test_an_erasure_outside_the_dialogue_deletes_the_phones_ussd_session(
    ussd_client: TestClient[Any, Any],
) -> None:
    """An admin's erasure (staff.residents) shares storage.resident_data with the resident's."""
    phone = _phone(ussd_client)
    await phone.dial()
    await phone.type("1")
    await phone.type("1")
    services = ussd_client.app[SERVICES_KEY]
    async with services.session_factory() as db, db.begin():
        resident_id = await db.scalar(
            select(ResidentAddress.resident_id).where(ResidentAddress.channel == "ussd")
        )
        assert resident_id is not None
        await erase_resident(db, services.turn_loop.forms, resident_id=resident_id, now=utc_now())
    async with services.session_factory() as db:
        assert await db.get(UssdSession, "+27831234567") is None


@pytest.mark.redis
async def test_a_whole_session_with_conversation_state_in_redis(
    aiohttp_client: Callable[..., Any],
    ussd_settings: Settings,
    redis_url: str,
    at: FakeAfricasTalking,
) -> None:
    """As with several processes: turn state, locks and dedupe in Redis; the dialogue's own row
    in SQL. A retry is answered once, a report filed once and its reference sent by SMS."""
    client = await aiohttp_client(
        await create_app(replace(ussd_settings, redis_url=redis_url), workers=False)
    )
    services = client.app[SERVICES_KEY]
    assert services.redis is not None
    # Its own conversation keys in the shared Redis database.
    number = f"+2784{uuid.uuid4().int % 10**7:07d}"
    end = await _report(_phone(client, number))
    assert "CT-" in end
    reference = end[end.index("CT-") : end.index("CT-") + 9]
    async with services.session_factory() as db:
        assert await db.scalar(select(func.count()).select_from(Submission)) == 1
    await _wait_for(lambda: len(at.sms()) == 1)
    assert at.sms()[0].form["to"] == number and reference in at.sms()[0].form["message"]
    # The next session starts at the menu (the language is known); a retry runs no turn again.
    phone = _phone(client, number)
    assert "1 Report a problem" in await phone.dial()
    services_screen = await phone.type("1")
    assert await phone.post() == services_screen


async def test_back_goes_a_page_a_question_and_from_the_services_to_the_menu(
    ussd_client: TestClient[Any, Any],
) -> None:
    phone = _phone(ussd_client)
    await phone.dial()
    menu = await phone.type("1")
    services_page = await phone.type("1")
    assert "00 More" in services_page and "0 Back" in services_page
    await phone.type("00")
    assert await phone.type("0") == services_page  # the previous page
    # "0 Back" on the first question (which service) is the menu it came from.
    assert await phone.type("0") == menu
    # In a form, "0" goes back a question: from the first question of a form to the services.
    await phone.type("1")
    number = _numbered(services_page, "Electricity outage")
    question = await phone.type(number)
    assert question != services_page
    assert await phone.type("0") == services_page


async def test_a_place_is_found_by_ward_number_and_by_first_letters_or_said_not_found(
    ussd_client: TestClient[Any, Any],
) -> None:
    phone = _phone(ussd_client)
    await phone.dial()
    await phone.type("1")
    search = await phone.type("3")  # area alerts: a place search
    assert "first letters" in search and "ward number" in search
    by_ward = await phone.type("95")
    assert by_ward.startswith("CON Choose the place:") and "Zwelitsha" in by_ward
    again = await phone.type("0")
    assert "first letters" in again
    nothing = await phone.type("qqx")
    assert "No place starts with that" in nothing
    found = await phone.type("khayel")
    assert _numbered(found, "Khayelitsha") == "1"
    done = await phone.type("1")
    assert done.startswith("END ") and "Khayelitsha" in done
    services = ussd_client.app[SERVICES_KEY]
    async with services.session_factory() as db:
        subscribed = (
            await db.execute(
                select(Subscription.label, Subscription.ward)
                .join(ResidentAddress, ResidentAddress.resident_id == Subscription.resident_id)
                .where(ResidentAddress.channel == "ussd")
            )
        ).all()
    # One alert, for every ward of the place.
    assert {label for label, _ in subscribed} == {"Khayelitsha"}
    assert "95" in {ward for _, ward in subscribed}


async def test_the_language_menu_changes_every_later_screen(
    ussd_client: TestClient[Any, Any],
) -> None:
    phone = _phone(ussd_client)
    await phone.dial()
    await phone.type("1")
    languages = await phone.type("4")
    assert "3 isiZulu" in languages and "0 Back" in languages
    menu = await phone.type("3")
    assert "1 Bika inkinga" in menu, menu
    # The next session remembers it: the menu in isiZulu, no language screen first.
    assert "1 Bika inkinga" in await phone.dial()


async def test_talk_to_a_person_out_of_hours_ends_in_one_screen_in_every_language(
    aiohttp_client: Callable[..., Any], ussd_settings: Settings
) -> None:
    """A call-back request: the closing screen fits whole (nobody can type "00" after END)."""
    today = datetime.now(ZoneInfo("Africa/Johannesburg")).date()
    closed = OfficeHours.parse("mon-sun 08:00-16:30", holidays=today.isoformat())
    client = await aiohttp_client(
        await create_app(replace(ussd_settings, office_hours=closed), workers=False)
    )
    for number, locale in enumerate(LOCALES, 1):
        phone = UssdPhone(client, PATH, f"+2783100200{number}")
        await phone.dial()
        await phone.type(str(number))
        end = await phone.type("5")
        _assert_fits(end)
        assert end.startswith("END ") and "\n00 " not in end, end
        queued = tr(
            locale, N_("A person will contact you by SMS. You are number {position} in the queue.")
        )
        assert queued.format(position=number) in end, end
    services = client.app[SERVICES_KEY]
    async with services.session_factory() as db:
        reasons = (await db.scalars(select(SupportTicket.reason))).all()
    assert reasons == ["callback"] * 4


async def test_an_answer_over_the_time_budget_comes_in_time_and_the_step_is_kept(
    ussd_client: TestClient[Any, Any],
) -> None:
    """A turn slower than the gateway waits (a database under strain): the gateway still gets
    an answer within the budget; the turn completes, and dialling again continues after it."""
    services = ussd_client.app[SERVICES_KEY]
    assert services.ussd is not None

    async def slow(message: InboundMessage) -> TurnResult:
        await asyncio.sleep(TIME_BUDGET + 0.5)
        return await services.handle_inbound(message)

    dialogue = UssdDialogue(
        services.ussd.channel, services.ussd.sessions, turns=slow, sender=services.replies.sender
    )
    phone = "+27831234599"

    async def answer(session_id: str, text: str) -> tuple[str, float]:
        started = time.monotonic()
        hit = UssdHit(
            session_id, phone, "*120*311#", "65501", tuple(text.split("*")) if text else ()
        )
        return await dialogue.answer(hit), time.monotonic() - started

    await answer("s1", "")
    for text in ("1", "1*1"):  # English, then report a problem: each turn over the budget
        screen, took = await answer("s1", text)
        assert took < 2.0 and screen.startswith("END ") and "dial again" in screen, screen
        await _wait_for(lambda: not dialogue._late)
    saved = await dialogue.sessions.get(phone)
    assert saved is not None and saved.consumed == 2 and saved.screen["mode"] == "form"
    offer, _ = await answer("s2", "")
    assert "1 Continue" in offer
    services_page, _ = await answer("s2", "1")
    assert "Electricity outage" in services_page


def _numbered(screen: str, label: str) -> str:
    """The number a screen gives ``label``."""
    return next(line.split(" ", 1)[0] for line in screen.splitlines() if line.endswith(label))


async def _gateway_asks_twice_at_once(client: TestClient[Any, Any], number: str) -> list[str]:
    """A gateway that times out sends the same first request again while the first is still
    being answered: both get the same first screen, neither a 500."""
    session_id = f"ATUid_twice_{uuid.uuid4().hex}"
    phones = [_phone(client, number) for _ in range(8)]
    for phone in phones:
        phone.session_id = session_id
    screens = await asyncio.gather(*(phone.post() for phone in phones))
    assert [phone.last_status for phone in phones] == [200] * len(phones), screens
    return screens


async def test_a_first_request_sent_twice_at_once_is_answered_twice(
    ussd_client: TestClient[Any, Any],
) -> None:
    screens = await _gateway_asks_twice_at_once(ussd_client, "+27831234577")
    assert all(s.startswith("CON Language") for s in screens), screens


@pytest.mark.postgres
async def test_whole_sessions_on_postgresql(
    aiohttp_client: Callable[..., Any], ussd_settings: Settings, at: FakeAfricasTalking
) -> None:
    """The production store: a report filed once with its reference by SMS, a retry answered
    from the saved screen, a dropped session resumed, and two requests for one phone at once."""
    async with postgres_database() as database_url:
        client = await aiohttp_client(
            await create_app(replace(ussd_settings, database_url=database_url), workers=False)
        )
        end = await _report(_phone(client, "+27831234511"))
        reference = end[end.index("CT-") : end.index("CT-") + 9]
        services = client.app[SERVICES_KEY]
        async with services.session_factory() as db:
            assert await db.scalar(select(func.count()).select_from(Submission)) == 1
        await _wait_for(lambda: len(at.sms()) == 1)
        assert reference in at.sms()[0].form["message"]

        phone = _phone(client, "+27831234512")
        await phone.dial()
        await phone.type("1")
        services_page = await phone.type("1")
        assert await phone.post() == services_page
        assert "1 Continue" in await phone.dial()
        assert await phone.type("1") == services_page

        screens = await _gateway_asks_twice_at_once(client, "+27831234513")
        assert all(s.startswith("CON Language") for s in screens), screens


async def test_the_same_consent_question_is_asked_and_a_no_is_kept(
    ussd_client: TestClient[Any, Any],
) -> None:
    """A form that collects contact details asks the channel-wide consent first, paged."""
    phone = _phone(ussd_client)
    await phone.dial()
    await phone.type("1")
    services_page = await phone.type("1")
    purpose = await phone.type(_numbered(services_page, "Electricity outage"))
    assert "name or phone number" in purpose and purpose.endswith("00 More\n0 Back"), purpose
    question = await phone.type("00")
    assert "Do you agree to share your contact details" in question
    assert _numbered(question, "Yes") == "1" and _numbered(question, "No") == "2"
    declined = await phone.type("2")
    assert "I will not ask for your name" in declined, declined
    services = ussd_client.app[SERVICES_KEY]
    async with services.session_factory() as db:
        resident = await db.scalar(
            select(Resident)
            .join(ResidentAddress, ResidentAddress.resident_id == Resident.id)
            .where(ResidentAddress.channel == "ussd")
        )
    assert resident is not None
    assert resident.consent_declined_at is not None and resident.consent_at is None


async def test_the_menus_keep_working_while_a_call_back_waits(
    ussd_client: TestClient[Any, Any],
) -> None:
    """Waiting for a call-back is no conversation with a person: dialling again, the resident
    can still check a request or ask again, and no menu number lands in the agent's transcript."""
    phone = _phone(ussd_client)
    await phone.dial()
    await phone.type("1")
    assert "contact you by SMS" in await phone.type("5")
    assert "1 Report a problem" in await phone.dial()
    await phone.type("2")
    unknown = await phone.type("CT7KQ4XM")
    assert "cannot find a report" in unknown, unknown
    await phone.dial()
    again = await phone.type("5")
    assert "number 1 in the queue" in again, again
    services = ussd_client.app[SERVICES_KEY]
    async with services.session_factory() as db:
        assert await db.scalar(select(func.count()).select_from(SupportTicket)) == 1
        from_resident = await db.scalar(
            select(func.count())
            .select_from(SupportMessage)
            .where(SupportMessage.direction == "resident")
        )
    assert from_resident == 0


@pytest.mark.postgres
async def test_the_gateway_is_answered_in_time_while_the_database_stalls(
    aiohttp_client: Callable[..., Any], ussd_settings: Settings
) -> None:
    """The answer that replaces a late one must not wait for the database either: with the
    sessions table locked (a migration, a vacuum), the gateway still hears within 2 s."""
    async with postgres_database() as database_url:
        client = await aiohttp_client(
            await create_app(replace(ussd_settings, database_url=database_url), workers=False)
        )
        phone = _phone(client, "+27831234521")
        await phone.dial()
        dsn = make_url(database_url).set(drivername="postgresql")
        locker = await asyncpg.connect(dsn.render_as_string(hide_password=False))
        try:
            locked = locker.transaction()
            await locked.start()
            await locker.execute("LOCK TABLE ussd_sessions IN ACCESS EXCLUSIVE MODE")
            # The stall ends after 3 s whatever happens: a late answer is measured, not hung.

            async def stall() -> None:
                await asyncio.sleep(3.0)
                await locked.rollback()

            stalled = asyncio.ensure_future(stall())
            started = time.monotonic()
            screen = await phone.type("1")
            took = time.monotonic() - started
            await stalled
        finally:
            await locker.close()
        assert took < 2.0 and phone.last_status == 200, (took, screen)
        assert screen.startswith("END ") and "dial again" in screen, screen
        # The step finished once the lock went: dialling again is the menu, in English.
        services = client.app[SERVICES_KEY]
        assert services.ussd is not None
        dialogue = services.ussd
        await _wait_for(lambda: not dialogue._late)
        assert "1 Report a problem" in await phone.dial()


async def test_a_number_that_is_not_on_the_screen_is_asked_again(
    ussd_client: TestClient[Any, Any],
) -> None:
    phone = _phone(ussd_client)
    languages = await phone.dial()
    again = await phone.type("7")
    assert again == "CON Choose one of the numbers.\n" + languages[4:]
    menu = await phone.type("1")
    assert await phone.type("9") == "CON Choose one of the numbers.\n" + menu[4:]
    # "00" on a screen with no next page shows that screen again.
    past = await phone.type("00")
    assert past.startswith("CON ") and past.endswith(menu[menu.index("1 Report") :]), past
