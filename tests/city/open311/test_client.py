"""Open311Backend over real HTTP: against the built-in server (JSON and XML) and faulty servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from city.open311.client import Open311Backend, compose_description, reference_marker
from city.open311.errors import (
    ApiKeyRefused,
    BackendRejected,
    BackendUnavailable,
    InvalidResponse,
    RequestNotFound,
)
from city.open311.mapping import draft_from_answers
from city.open311.types import ServiceRequestDraft
from tests.city.open311.conftest import FIXTURES, ServerFactory

POTHOLE = ServiceRequestDraft(
    service_code="ROADS-POTHOLE",
    description="Pothole\nSize: Bigger than a car tyre",
    lat=-34.0363,
    long=18.6776,
    attributes={"kind": "pothole", "size": "large", "danger": "yes", "callback": "no"},
    reference="CT-7K2M9Q",
)


async def test_services_and_definitions(backend: Open311Backend, forms) -> None:
    services = await backend.services()
    assert {s.service_code for s in services} == {f.service_code for f in forms.values()}
    pothole = next(s for s in services if s.service_code == "ROADS-POTHOLE")
    assert pothole.service_name == "Pothole or road damage" and "pothole" in pothole.keywords
    definition = await backend.service_definition("ROADS-POTHOLE")
    codes = [a.code for a in definition.attributes]
    assert codes == ["kind", "size", "danger", "callback"]
    size = definition.attributes[1]
    assert size.datatype == "singlevaluelist" and not size.required  # asked only for potholes
    assert [v.key for v in size.values] == ["small", "medium", "large"]
    with pytest.raises(RequestNotFound):
        await backend.service_definition("NO-SUCH")


async def test_submit_then_status(backend: Open311Backend) -> None:
    result = await backend.submit(POTHOLE)
    assert result.service_request_id and result.token is None
    [found] = await backend.status([result.service_request_id])
    assert found.status == "open" and found.service_code == "ROADS-POTHOLE"
    assert found.description is not None and found.description.endswith(
        reference_marker("CT-7K2M9Q")
    )
    assert found.requested_datetime is not None and found.requested_datetime.tzinfo is not None
    assert await backend.request(result.service_request_id) == found
    assert await backend.request("999999") is None


async def test_multivaluelist_and_personal_fields(
    backend: Open311Backend, forms, sessionmaker
) -> None:
    from storage.models import Open311Request

    answers = {
        "location": {
            "lat": -34.0,
            "lon": 18.6,
            "place": "Khayelitsha",
            "ward": "99",
            "source": "place",
        },
        "waste": ["rubble", "household"],
        "amount": "bakkie",
        "callback": True,
        "phone": "+27831234567",
    }
    form = forms["illegal_dumping"]
    valid_waste = [o.id for o in form.step("waste").options][:2]
    valid_amount = form.step("amount").options[0].id
    answers["waste"], answers["amount"] = valid_waste, valid_amount
    result = await backend.submit(draft_from_answers(form, answers, reference="CT-AAAAAA"))
    async with sessionmaker() as session:
        row = await session.get(Open311Request, int(result.service_request_id or 0))
    assert row is not None
    assert row.attributes["waste"] == valid_waste
    assert row.attributes["callback"] == "yes"
    assert row.phone == "+27831234567" and row.email is None and row.first_name is None
    assert row.address_string == "Khayelitsha" and row.lat == -34.0


async def test_status_is_batched(open311_server: ServerFactory) -> None:
    backend = Open311Backend(await open311_server(), max_ids_per_call=3)
    try:
        ids = [(await backend.submit(POTHOLE)).service_request_id for _ in range(7)]
        backend.calls = 0
        found = await backend.status([i for i in ids if i] + ["424242"])
        assert sorted(r.service_request_id for r in found) == sorted(i for i in ids if i)
        assert backend.calls == 3  # 8 ids, 3 per call
    finally:
        await backend.close()


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_batch_service_answers_with_a_token(open311_server: ServerFactory, fmt) -> None:
    backend = Open311Backend(await open311_server(answer_with="token"), format=fmt)
    try:
        result = await backend.submit(POTHOLE)
        assert result.service_request_id is None and result.token
        request_id = await backend.request_id_from_token(result.token)
        assert request_id is not None and (await backend.request(request_id)) is not None
        assert await backend.request_id_from_token("unknown-token") is None
    finally:
        await backend.close()


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_wrong_api_key_is_said_plainly(open311_server: ServerFactory, fmt) -> None:
    url = await open311_server(api_key="right-key")
    wrong = Open311Backend(url, api_key="wrong-key", format=fmt)
    right = Open311Backend(url, api_key="right-key", format=fmt)
    try:
        with pytest.raises(ApiKeyRefused, match="the API key was refused"):
            await wrong.submit(POTHOLE)
        assert (await right.submit(POTHOLE)).service_request_id
    finally:
        await wrong.close()
        await right.close()


async def test_refusals_carry_the_citys_descriptions(backend: Open311Backend) -> None:
    with pytest.raises(BackendRejected) as refused:
        await backend.submit(
            ServiceRequestDraft(service_code="ROADS-POTHOLE", lat=-34.0, long=18.6)
        )
    assert refused.value.status == 400
    assert any("attribute[kind] is required" in d for d in refused.value.descriptions)
    with pytest.raises(BackendRejected, match="must be one of"):
        await backend.submit(
            ServiceRequestDraft(
                service_code="ROADS-POTHOLE",
                lat=-34.0,
                long=18.6,
                attributes={"kind": "volcano", "danger": "no", "callback": "no"},
            )
        )
    with pytest.raises(BackendRejected, match="a location is required"):
        await backend.submit(
            ServiceRequestDraft(service_code="ROADS-POTHOLE", attributes=POTHOLE.attributes)
        )


async def test_search_filters(backend: Open311Backend) -> None:
    from datetime import UTC, datetime, timedelta

    first = await backend.submit(POTHOLE)
    await backend.submit(
        ServiceRequestDraft(
            service_code="ELEC-STREETLIGHT",
            address_string="Main Rd, Muizenberg",
            attributes={"fault": "dark", "count": "2", "callback": "no"},
        )
    )
    everything = await backend.search()
    assert len(everything) == 2
    potholes = await backend.search(service_code="ROADS-POTHOLE")
    assert [r.service_request_id for r in potholes] == [first.service_request_id]
    assert await backend.search(status="closed") == []
    future = datetime.now(UTC) + timedelta(days=1)
    assert await backend.search(start_date=future) == []
    found = await backend.find_by_reference(
        "CT-7K2M9Q", "ROADS-POTHOLE", datetime.now(UTC) - timedelta(hours=1)
    )
    assert found is not None and found.service_request_id == first.service_request_id
    assert (
        await backend.find_by_reference(
            "CT-NOPE00", "ROADS-POTHOLE", datetime.now(UTC) - timedelta(hours=1)
        )
        is None
    )


def test_description_is_cut_cleanly_and_keeps_the_marker() -> None:
    text = ("word " * 2000).strip()
    cut = compose_description(text, "CT-7K2M9Q")
    assert len(cut) <= 4000
    assert cut.endswith("…\n\n[ref CT-7K2M9Q]")
    assert cut.split("…")[0].endswith("word")
    assert compose_description("short", None) == "short"
    assert len(compose_description("x" * 5000, None)) == 4000


# -- a server that misbehaves -----------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def faulty() -> AsyncIterator[Callable[[Handler], Awaitable[Open311Backend]]]:
    servers: list[TestServer] = []
    clients: list[Open311Backend] = []

    async def start(handler: Handler) -> Open311Backend:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        client = Open311Backend(str(server.make_url("/v2")), timeout=0.5)
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()
    for server in servers:
        await server.close()


async def test_500_is_retryable(faulty) -> None:
    async def fail(request: web.Request) -> web.Response:
        return web.Response(status=503, text="maintenance")

    backend = await faulty(fail)
    with pytest.raises(BackendUnavailable) as error:
        await backend.submit(POTHOLE)
    assert error.value.status == 503 and not isinstance(error.value, BackendRejected)


async def test_invalid_json_is_retryable(faulty) -> None:
    async def garbage(request: web.Request) -> web.Response:
        return web.Response(text='[{"service_request_id": ', content_type="application/json")

    backend = await faulty(garbage)
    with pytest.raises(InvalidResponse):
        await backend.submit(POTHOLE)
    with pytest.raises(BackendUnavailable):
        await backend.status(["1"])


async def test_timeout_is_retryable(faulty) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.Response(text="[]")

    backend = await faulty(slow)
    with pytest.raises(BackendUnavailable, match="did not answer in time"):
        await backend.services()


async def test_unreachable_server_is_retryable() -> None:
    backend = Open311Backend("http://127.0.0.1:9/open311/v2", timeout=1)
    try:
        with pytest.raises(BackendUnavailable, match="could not be reached"):
            await backend.services()
    finally:
        await backend.close()


async def test_post_answered_with_neither_token_nor_id(faulty) -> None:
    async def vague(request: web.Request) -> web.Response:
        return web.json_response([{"service_notice": "Thanks", "account_id": None}])

    result = await (await faulty(vague)).submit(POTHOLE)
    assert result.service_request_id is None and result.token is None
    assert result.service_notice == "Thanks"


async def test_error_array_with_http_200(faulty) -> None:
    async def refuse(request: web.Request) -> web.Response:
        return web.json_response(
            [{"code": 400, "description": "Service not available in this area"}]
        )

    with pytest.raises(BackendRejected, match="Service not available in this area"):
        await (await faulty(refuse)).submit(POTHOLE)


async def test_codeforamerica_403_response(faulty) -> None:
    raw = (FIXTURES / "codeforamerica_open311/403.xml").read_bytes()

    async def forbidden(request: web.Request) -> web.Response:
        return web.Response(status=403, body=raw.split(b"\n\n", 1)[1], content_type="text/xml")

    backend = await faulty(forbidden)
    backend.format = "xml"
    with pytest.raises(ApiKeyRefused, match="Invalid api_key received"):
        await backend.submit(POTHOLE)


async def test_post_is_form_encoded_as_the_spec_says(faulty) -> None:
    seen: list[list[tuple[str, str]]] = []

    async def record(request: web.Request) -> web.Response:
        post = await request.post()
        seen.append([(k, str(v)) for k, v in post.items()])
        return web.json_response([{"service_request_id": "00042"}])

    backend = await faulty(record)
    backend.api_key, backend.jurisdiction_id = "k", "cct"
    draft = ServiceRequestDraft(
        service_code="X",
        address_string="1 Long St",
        attributes={"kind": "a", "damage": ["window", "tyre"]},
        email="resident@example.org",
        reference="CT-1",
    )
    result = await backend.submit(draft)
    assert result.service_request_id == "00042"  # leading zeros kept
    fields = seen[0]
    assert ("attribute[kind]", "a") in fields
    assert [v for k, v in fields if k == "attribute[damage][]"] == ["window", "tyre"]
    assert ("api_key", "k") in fields and ("jurisdiction_id", "cct") in fields
    assert ("email", "resident@example.org") in fields
    names = {k for k, _ in fields}
    assert not names & {"first_name", "last_name", "phone", "lat", "long", "media_url"}
    assert dict(fields)["description"] == "[ref CT-1]"
