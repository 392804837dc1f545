"""The built-in GeoReport v2 server over HTTP: spec error bodies, filters and format handling."""

from __future__ import annotations

from dataclasses import replace

import aiohttp

from city.open311.client import Open311Backend
from city.open311.formats import parse_errors, parse_requests
from tests.city.open311.conftest import ServerFactory
from tests.city.open311.test_client import POTHOLE


async def test_errors_use_the_spec_array_in_the_asked_format(open311_server: ServerFactory) -> None:
    base = await open311_server(api_key="k")
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/requests.xml", data={"service_code": "ROADS-POTHOLE"}) as r:
            assert r.status == 403
            assert r.content_type == "text/xml"
            [error] = parse_errors(await r.read(), "xml")
            assert error.code == "403" and "api_key" in error.description
        async with http.post(f"{base}/requests.json", data={"api_key": "k"}) as r:
            assert r.status == 400
            assert await r.json() == [{"code": 400, "description": "service_code is required"}]
        async with http.get(f"{base}/requests/abc.json") as r:
            assert r.status == 404
            assert "abc" in (await r.json())[0]["description"]
        async with http.get(f"{base}/requests.json", params={"start_date": "yesterday"}) as r:
            assert r.status == 400 and "start_date" in (await r.json())[0]["description"]
        async with http.get(f"{base}/services.yaml") as r:
            assert r.status == 404


async def test_ids_override_other_filters(open311_server: ServerFactory) -> None:
    base = await open311_server()
    backend = Open311Backend(base)
    try:
        one = (await backend.submit(POTHOLE)).service_request_id
        two = (await backend.submit(POTHOLE)).service_request_id
        async with aiohttp.ClientSession() as http:
            params = {
                "service_request_id": f"{one},{two},not-ours",
                "service_code": "OTHER",
                "status": "closed",
            }
            async with http.get(f"{base}/requests.xml", params=params) as r:
                found = parse_requests(await r.read(), "xml")
        assert [f.service_request_id for f in found] == [one, two]
    finally:
        await backend.close()


async def test_description_longer_than_the_spec_allows_is_refused(
    open311_server: ServerFactory,
) -> None:
    base = await open311_server()
    async with aiohttp.ClientSession() as http:
        data = {"service_code": "GENERAL-ENQUIRY", "description": "x" * 4001}
        async with http.post(f"{base}/requests.json", data=data) as r:
            assert r.status == 400
            assert "4000" in (await r.json())[0]["description"]


async def test_the_public_list_carries_no_free_text_or_photo_link_without_the_key(
    open311_server: ServerFactory,
) -> None:
    private = await open311_server(api_key="k")
    shown = await open311_server(api_key="k", public_details=True)
    for base, details_for_all in ((private, False), (shown, True)):
        backend = Open311Backend(base, api_key="k")
        draft = replace(
            POTHOLE,
            address_string="outside 12 Mthembu Street, Site C",
            media_url="https://citybot.example/media/signed-link",
        )
        try:
            ident = (await backend.submit(draft)).service_request_id
            assert ident
        finally:
            await backend.close()
        async with aiohttp.ClientSession() as http:
            # One request, and the list (both servers share one database: filtered to it).
            for path, only in (
                (f"{base}/requests/{ident}", {}),
                (f"{base}/requests", {"service_request_id": ident}),
            ):
                for fmt in ("json", "xml"):
                    for params, full in (({}, details_for_all), ({"api_key": "k"}, True)):
                        async with http.get(f"{path}.{fmt}", params=params | only) as r:
                            assert r.status == 200
                            body = await r.read()
                            [found] = parse_requests(body, fmt)
                        # The status and place are public either way.
                        assert found.status == "open" and found.lat == POTHOLE.lat
                        for secret in (b"Mthembu", b"signed-link", b"Bigger than a car"):
                            assert (secret in body) is full, (path, fmt, params, secret)
                    async with http.get(f"{path}.{fmt}", params={"api_key": "wrong"} | only) as r:
                        assert (b"Mthembu" in await r.read()) is details_for_all
