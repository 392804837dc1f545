"""The staff page: signed-in staff change a request's status; nobody else can."""

from __future__ import annotations

import aiohttp
from yarl import URL

from city.open311.client import Open311Backend
from city.open311.staff import STAFF_PATH
from tests.city.open311.conftest import ServerFactory
from tests.city.open311.test_client import POTHOLE


def _root(base: str) -> str:
    return str(URL(base).with_path(""))


async def test_staff_close_a_request_and_the_client_sees_it(open311_server: ServerFactory) -> None:
    base = await open311_server(staff_token="staff-secret")
    backend = Open311Backend(base)
    root = _root(base)
    try:
        request_id = (await backend.submit(POTHOLE)).service_request_id
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.get(root + STAFF_PATH) as r:
                assert r.status == 401 and "Sign in" in await r.text()
            async with http.post(root + STAFF_PATH + "/login", data={"token": "wrong"}) as r:
                assert r.status == 403
            async with http.post(root + STAFF_PATH + "/login", data={"token": "staff-secret"}) as r:
                assert r.status == 200  # followed the redirect to the list
                page = await r.text()
            assert "Pothole or road damage" in page and "CT-7K2M9Q" in page
            csrf = page.split("name='csrf' value='")[1].split("'")[0]
            update = {
                "status": "closed",
                "status_notes": "Filled on Tuesday",
                "expected_date": "2025-03-20",
            }
            async with http.post(f"{root}{STAFF_PATH}/requests/{request_id}", data=update) as r:
                assert r.status == 403  # a cookie alone is not enough: CSRF field missing
            async with http.post(
                f"{root}{STAFF_PATH}/requests/{request_id}", data={**update, "csrf": csrf}
            ) as r:
                assert r.status == 200
        [after] = await backend.status([request_id or ""])
        assert (after.status, after.status_notes) == ("closed", "Filled on Tuesday")
        assert (
            after.expected_datetime is not None
            and after.expected_datetime.date().isoformat() == "2025-03-20"
        )
        assert after.updated_datetime is not None and after.requested_datetime is not None
        assert after.updated_datetime >= after.requested_datetime
    finally:
        await backend.close()


async def test_bearer_token_and_bad_input(open311_server: ServerFactory) -> None:
    base = await open311_server(staff_token="staff-secret")
    root = _root(base)
    backend = Open311Backend(base)
    try:
        request_id = (await backend.submit(POTHOLE)).service_request_id
        async with aiohttp.ClientSession() as http:
            good = {"Authorization": "Bearer staff-secret"}
            url = f"{root}{STAFF_PATH}/requests/{request_id}"
            async with http.post(
                url, data={"status": "closed"}, headers={"Authorization": "Bearer nope"}
            ) as r:
                assert r.status == 403
            async with http.post(url, data={"status": "exploded"}, headers=good) as r:
                assert r.status == 400
            async with http.post(
                url, data={"status": "closed", "expected_date": "soon"}, headers=good
            ) as r:
                assert r.status == 400
            async with http.post(
                f"{root}{STAFF_PATH}/requests/999", data={"status": "closed"}, headers=good
            ) as r:
                assert r.status == 404
            async with http.get(root + STAFF_PATH + "?status=open", headers=good) as r:
                assert r.status == 200 and f"<td>{request_id}</td>" in await r.text()
    finally:
        await backend.close()


async def test_staff_page_is_off_without_a_token(open311_server: ServerFactory) -> None:
    root = _root(await open311_server(staff_token=""))
    async with (
        aiohttp.ClientSession() as http,
        http.get(root + STAFF_PATH, headers={"Authorization": "Bearer "}) as r,
    ):
        assert r.status == 404 and "CITYBOT_STAFF_TOKEN" in await r.text()
