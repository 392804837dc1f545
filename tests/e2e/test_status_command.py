""" "status CT-XXXXXX" and "status <city number>" answer from the city's back end once filed."""

from __future__ import annotations

from pathlib import Path

from forms_runtime.effects import Notice
from notifier.status_notices import status_message
from storage.models import Open311Request
from tests.city.test_operator_backend import TRANSPORT, open311_server
from tests.e2e.city import City, SmsResident, eventually, running_city
from tests.fakes.twilio_api import FakeTwilio

NOTES = "A crew is booked for Thursday."


async def answer_to(city: City, resident: SmsResident, text: str) -> str:
    await resident.say(("text", text, 0))
    _, result = city.results[-1]
    [notice] = result.effects
    assert isinstance(notice, Notice)
    return notice.message


async def test_status_answers_with_what_the_city_says_now(tmp_path: Path) -> None:
    async with FakeTwilio() as twilio, running_city(tmp_path, twilio=twilio) as city:
        resident = SmsResident(city)
        reference = await resident.report("pothole", "af")
        filed = await eventually(lambda: city.filed(reference))
        number = filed.service_request_id
        # Only the city knows the notes: the bot's own table has no column for them.
        await city.staff_sets_status(number, "open", NOTES)
        expected = status_message("af", reference, number, "open", NOTES, None)

        assert await answer_to(city, resident, f"status {reference}") == expected
        assert await answer_to(city, resident, f"stand {number}") == expected


async def test_status_of_another_residents_city_number_is_not_found(tmp_path: Path) -> None:
    async with FakeTwilio() as twilio, running_city(tmp_path, twilio=twilio) as city:
        owner, other = SmsResident(city), SmsResident(city, phone="+27830000001")
        reference = await owner.report("pothole", "en")
        filed = await eventually(lambda: city.filed(reference))
        await other.say(("text", "hello", 0))
        said = await answer_to(city, other, f"status {filed.service_request_id}")
        assert "cannot find" in said


async def test_status_falls_back_to_the_local_answer_when_the_city_is_down(
    tmp_path: Path,
) -> None:
    async with FakeTwilio() as twilio, running_city(tmp_path, twilio=twilio) as city:
        resident = SmsResident(city)
        reference = await resident.report("pothole", "en")
        filed = await eventually(lambda: city.filed(reference))
        # The back end now points nowhere: the resident still gets the bot's own answer.
        loop = city.services.turn_loop
        assert loop.city_status is not None

        async def city_down(
            reference: str, number: str, service_code: str, locale: str
        ) -> str | None:
            return None

        loop.city_status = city_down
        said = await answer_to(city, resident, f"status {reference}")
        assert reference in said and str(filed.service_request_id) in said


async def test_status_of_a_report_filed_with_the_operator_is_asked_of_the_operator(
    tmp_path: Path,
) -> None:
    # Issue 18: bus reports go to the operator's own GeoReport v2 server. Both servers number
    # their requests from 1, so asking the city about the bus report's number would answer with
    # the status and notes of the neighbour's pothole.
    async with (
        open311_server(tmp_path / "operator", "operator-key") as (operator_url, operator_db),
        FakeTwilio() as twilio,
        running_city(
            tmp_path,
            twilio=twilio,
            env={
                "OPEN311_SERVICE_ENDPOINTS": f"{TRANSPORT}={operator_url}",
                "OPEN311_SERVICE_API_KEYS": f"{TRANSPORT}=operator-key",
            },
        ) as city,
    ):
        neighbour, resident = SmsResident(city), SmsResident(city, phone="+27830000001")
        pothole = await neighbour.report("pothole", "en")
        at_city = await eventually(lambda: city.filed(pothole))
        await city.staff_sets_status(at_city.service_request_id, "open", NOTES)
        bus = await resident.report("transport_reliability", "en")
        at_operator = await eventually(lambda: city.filed(bus))
        assert at_operator.service_request_id == at_city.service_request_id
        async with operator_db() as session, session.begin():
            row = await session.get(Open311Request, int(at_operator.service_request_id))
            assert row is not None
            row.status, row.status_notes = "closed", "Bus T01 ran 25 minutes late that day."
        expected = status_message(
            "en", bus, at_operator.service_request_id, "closed", row.status_notes, None
        )

        said = await answer_to(city, resident, f"status {bus}")
        assert said == expected and NOTES not in said

        # Staff: the bus report is the operator's to change, never the built-in server's
        # request of the same number (the neighbour's pothole), and is not listed with its status.
        headers = {"Authorization": f"Bearer {city.staff_token}"}
        async with city.http.patch(
            f"{city.url}/api/v1/requests/{bus}",
            json={"status": "closed", "status_notes": "Done."},
            headers=headers,
        ) as response:
            assert response.status == 409, await response.text()
        async with city.http.get(f"{city.url}/api/v1/requests", headers=headers) as response:
            listed = {r["reference"]: r for r in (await response.json())["items"]}
        assert listed[pothole]["status"] == "open" and listed[pothole]["status_notes"] == NOTES
        assert listed[bus]["status_notes"] != NOTES and listed[bus]["status"] != "open"
