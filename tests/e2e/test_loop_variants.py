"""The loop in other shapes: a separate city server, WhatsApp after 24 hours, an opted-out
resident, and web chat sessions that must not see each other's messages."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from notifier.status_notices import status_message
from storage.models import Open311Request, RequestStatusChange, ResidentAddress
from storage.types import utc_now
from tests.e2e.city import (
    SmsResident,
    WebChatResident,
    WhatsAppResident,
    eventually,
    running_city,
)
from tests.e2e.test_report_loop import close_the_loop
from tests.fakes.twilio_api import FakeTwilio


async def test_open311_endpoint_on_a_separate_server(tmp_path: Path) -> None:
    # The "city": another citybot app on another port, whose built-in server is the back end.
    key = {"OPEN311_API_KEY": "the-city-key"}
    async with running_city(tmp_path, workers=False, env=key) as backend:
        endpoint = backend.url + "/open311/v2"
        async with (
            FakeTwilio() as twilio,
            running_city(tmp_path, twilio=twilio, env={"OPEN311_ENDPOINT": endpoint} | key) as city,
        ):
            async with city.http.get(city.url + "/open311/v2/services.json") as response:
                assert response.status == 404  # no built-in server where a city endpoint is set
            resident = SmsResident(city)
            reference = await resident.report("pothole", "zu")
            filed = await eventually(lambda: city.filed(reference))
            async with backend.services.session_factory() as db:
                [request] = (await db.scalars(select(Open311Request))).all()
            assert str(request.id) == filed.service_request_id
            assert f"[ref {reference}]" in request.description

            # The city's staff close it in the city's own system (here, that server's row).
            async with backend.services.session_factory() as db, db.begin():
                row = await db.get(Open311Request, request.id)
                assert row is not None
                row.status, row.status_notes = "closed", "Fixed."
                row.updated_datetime = utc_now()
            told = status_message("zu", reference, str(request.id), "closed", "Fixed.", None)
            await eventually(lambda: _has(resident.received(), told))


async def test_whatsapp_after_24_hours_is_told_through_the_template(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "TWILIO_WHATSAPP_TEMPLATES",
        json.dumps({"status_update": "HXstatus0001", "report_filed": "HXfiled0001"}),
    )
    async with FakeTwilio() as twilio, running_city(tmp_path, twilio=twilio) as city:
        resident = WhatsAppResident(city)
        reference = await resident.report("pothole", "en")
        filed = await eventually(lambda: city.filed(reference))
        # Within the window the "filed" message went as text.
        await eventually(lambda: _has(resident.received(), "city's number for it is"))
        async with city.services.session_factory() as db, db.begin():
            await db.execute(
                update(ResidentAddress)
                .where(ResidentAddress.channel == "whatsapp")
                .values(last_inbound_at=utc_now() - timedelta(hours=25))
            )
        await city.staff_sets_status(filed.service_request_id, "closed", "Done.")

        async def templated() -> list[dict[str, str]]:
            return [m for m in resident.sent() if m.get("ContentSid") == "HXstatus0001"]

        [sent] = await eventually(templated)
        assert "Body" not in sent
        assert json.loads(sent["ContentVariables"]) == {"1": reference, "2": "closed"}
        await asyncio.sleep(city.settings.status_poll_seconds * 5)
        assert len(await templated()) == 1


async def test_an_opted_out_resident_is_not_told(tmp_path: Path) -> None:
    async with FakeTwilio() as twilio, running_city(tmp_path, twilio=twilio) as city:
        resident = SmsResident(city)
        reference = await resident.report("pothole", "en")
        filed = await eventually(lambda: city.filed(reference))
        await eventually(lambda: _has(resident.received(), "city's number for it is"))
        await resident.say(("text", "STOP", 0))
        before = len(resident.received())
        await city.staff_sets_status(filed.service_request_id, "closed", "Done.")

        async def settled() -> list[str]:
            async with city.services.session_factory() as db:
                states = await db.scalars(select(RequestStatusChange.notify_state))
                return [s for s in states if s == "opted_out"]

        await eventually(settled)
        await asyncio.sleep(city.settings.status_poll_seconds * 3)
        assert len(resident.received()) == before


async def test_web_chat_sessions_see_only_their_own_messages(tmp_path: Path) -> None:
    async with running_city(tmp_path) as city:
        reporter, neighbour = WebChatResident(city), WebChatResident(city)
        try:
            await neighbour.say(text="hello")
            await close_the_loop(city, reporter, "en")
            assert await neighbour.poll() == []
            # The cursor: asking again from the last id returns nothing new.
            seen = len(await reporter.poll())
            assert seen == 2 and len(await reporter.poll()) == 2
            async with reporter.http.get(
                city.url + "/webchat/messages", params={"after": "x"}
            ) as response:
                assert response.status == 400
            async with city.services.session_factory() as db:
                rows = await db.scalar(select(func.count()).select_from(Open311Request))
            assert rows == 1
        finally:
            await reporter.close()
            await neighbour.close()


async def _has(said: list[str], text: str) -> bool:
    return any(text in s for s in said)
