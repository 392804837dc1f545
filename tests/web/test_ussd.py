"""USSD over HTTP: the fake gateway drives whole sessions through the real app; the SMS that
follow go through the real Africa's Talking SDK to a fake Africa's Talking that records them."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from bot.app import SERVICES_KEY, create_app
from bot.config import Settings
from bot.ussd import UssdDialogue
from channels.ussd_screens import MAX_SCREEN
from conversations.erasure import erase_resident
from conversations.ussd_sessions import UssdSessions
from storage.models import MessageLog, Resident, ResidentAddress, Submission, UssdSession
from storage.types import utc_now
from tests.fakes.africastalking_api import (
    API_HOST,
    API_KEY,
    USERNAME,
    FakeAfricasTalking,
    UssdPhone,
)

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
        elif any(line.startswith("1 ") for line in lines):
            screen = await phone.type("1")
        elif lines[-2:-1] == ["00 More"] or lines[-1] == "00 More":
            screen = await phone.type("00")
        else:
            screen = await phone.type("Water runs in the street near the clinic")
    raise AssertionError(f"the session never ended: {screen}")


def _assert_fits(screen: str) -> None:
    assert screen.startswith(("CON ", "END ")), screen
    assert len(screen[4:]) <= MAX_SCREEN, screen


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
    from ipaddress import ip_network

    only = replace(ussd_settings, ussd_allowed_ips=(ip_network("192.0.2.0/24"),))
    client = await aiohttp_client(await create_app(only, workers=False))
    phone = UssdPhone(client, PATH, "+27831234567")
    await phone.dial()
    assert phone.last_status == 403


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
