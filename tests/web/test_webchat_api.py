"""The web chat JSON API over HTTP: sessions, replies, duplicates and every kind of bad input."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import func, select
from yarl import URL

from bot.app import create_app
from bot.config import Settings
from bot.services import Services
from channels.webchat import COOKIE_NAME
from storage.models import MessageLog
from tests.web.webchat_residents import WebResident


async def test_the_page_and_its_files_are_served(client: TestClient[Any, Any]) -> None:
    page = await client.get("/")
    assert page.status == 200 and page.content_type == "text/html"
    html = await page.text()
    assert '<html lang="en">' in html and "/static/chat.js" in html
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    for name, kind in (("chat.js", "javascript"), ("chat.css", "text/css")):
        response = await client.get(f"/static/{name}")
        assert response.status == 200 and kind in response.content_type


async def test_ui_texts_come_in_every_locale(client: TestClient[Any, Any]) -> None:
    texts = await (await client.get("/webchat/texts")).json()
    assert set(texts) == {"en", "af", "zu", "xh"}
    assert texts["en"]["question_of"] == "Question {position} of {total}"
    assert all(set(table) == set(texts["en"]) for table in texts.values())


async def test_a_first_message_gets_a_signed_http_only_cookie(client: TestClient[Any, Any]) -> None:
    response = await client.post(
        "/webchat/messages", json={"client_message_id": "m-1", "text": "pothole"}
    )
    assert response.status == 200
    cookie = response.cookies[COOKIE_NAME]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
    payload = await response.json()
    assert payload["locale"] == "en" and payload["duplicate"] is False
    assert any(m["type"] == "ask" and m["step_id"] == "service" for m in payload["messages"])
    # The next post carries the cookie (the client keeps it): no new cookie is set.
    again = await client.post(
        "/webchat/messages", json={"client_message_id": "m-2", "text": "menu"}
    )
    assert COOKIE_NAME not in again.cookies


async def test_a_forged_cookie_starts_a_new_session(client: TestClient[Any, Any]) -> None:
    client.session.cookie_jar.update_cookies({COOKIE_NAME: "someone-else.AAAAAAAAAAAAAAAAAAAAAAAA"})
    response = await client.post(
        "/webchat/messages", json={"client_message_id": "m-1", "text": "hello"}
    )
    assert response.status == 200
    assert not response.cookies[COOKIE_NAME].value.startswith("someone-else.")


async def test_a_retried_message_is_processed_once(
    resident_factory: Callable[..., WebResident], services: Services
) -> None:
    resident = resident_factory()
    first = await resident.say(text="pothole", client_message_id="same")
    again = await resident.say(text="pothole", client_message_id="same")
    assert first["messages"] and not first["duplicate"]
    assert again == {"locale": "en", "messages": [], "duplicate": True, "rate_limited": False}
    async with services.session_factory() as db:
        inbound = await db.scalar(
            select(func.count()).select_from(MessageLog).where(MessageLog.direction == "in")
        )
    assert inbound == 1


async def test_two_residents_may_use_the_same_client_id(
    resident_factory: Callable[..., WebResident],
) -> None:
    a, b = resident_factory(), resident_factory()
    assert not (await a.say(text="pothole", client_message_id="1"))["duplicate"]
    assert not (await b.say(text="pothole", client_message_id="1"))["duplicate"]


async def test_history_returns_this_sessions_messages(
    resident_factory: Callable[..., WebResident],
) -> None:
    resident, other = resident_factory(), resident_factory()
    assert await resident.get("/webchat/history") == {"messages": []}
    await resident.say(text="pothole")
    await other.say(text="streetlight")
    history = (await resident.get("/webchat/history"))["messages"]
    assert [m["direction"] for m in history] == ["in", "out"]
    assert history[0]["text"] == "pothole"


async def test_malformed_json_is_a_400_with_a_reason(client: TestClient[Any, Any]) -> None:
    response = await client.post(
        "/webchat/messages", data=b"{oops", headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert "not valid JSON" in (await response.json())["error"]


async def test_missing_and_conflicting_fields_are_400(client: TestClient[Any, Any]) -> None:
    for body, reason in (
        ({"text": "hi"}, "client_message_id"),
        ({"client_message_id": "m"}, "exactly one"),
        ({"client_message_id": "m", "text": "a", "option_id": "b"}, "exactly one"),
        ({"client_message_id": "m", "location": {"lat": "x", "lon": 1}}, "location.lat"),
    ):
        response = await client.post("/webchat/messages", json=body)
        assert response.status == 400, body
        assert reason in (await response.json())["error"]


async def test_unknown_fields_are_ignored(client: TestClient[Any, Any]) -> None:
    response = await client.post(
        "/webchat/messages",
        json={"client_message_id": "m", "text": "pothole", "theme": "dark", "v": 2},
    )
    assert response.status == 200


async def test_a_big_body_is_413_and_nothing_is_stored(
    client: TestClient[Any, Any], services: Services
) -> None:
    big = b'{"client_message_id": "m", "text": "' + b"a" * (1024 * 1024) + b'"}'
    response = await client.post(
        "/webchat/messages", data=big, headers={"Content-Type": "application/json"}
    )
    assert response.status == 413
    assert "64" in (await response.json())["error"] or "over" in (await response.json())["error"]

    async def chunks() -> Any:
        for _ in range(20):
            yield b"a" * 4096  # 80 KB, sent chunked: no Content-Length to refuse up front

    chunked = await client.post("/webchat/messages", data=chunks())
    assert chunked.status == 413
    async with services.session_factory() as db:
        assert await db.scalar(select(func.count()).select_from(MessageLog)) == 0


async def test_a_flood_from_one_resident_is_limited_politely_and_others_are_not(
    aiohttp_client: Callable[..., Any], tmp_path: Path
) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/db.sqlite3",
        session_secret="x",
        # Slow refill: on a busy machine the flood may take seconds, and a refilled bucket
        # would rightly warn again; this is about the flood, not the refill.
        rate_limit_per_second=0.05,
        rate_limit_burst=12,
    )
    client = await aiohttp_client(await create_app(settings, workers=False))
    flooder, other = WebResident(client), WebResident(client)
    await flooder.say(text="hello")  # the session cookie first, so the flood is one resident
    replies = await asyncio.gather(*(flooder.say(text=f"spam {i}") for i in range(100)))
    limited = [r for r in replies if r["rate_limited"]]
    assert len(limited) >= 80
    told = [r for r in limited if r["messages"]]
    assert len(told) == 1, "the resident is told once, politely, then ignored until it calms"
    assert "faster than I can answer" in told[0]["messages"][0]["text"]
    calm = await other.say(text="pothole")
    assert not calm["rate_limited"] and calm["messages"]
    await flooder.close()
    await other.close()


async def test_a_post_that_is_not_json_is_415_and_nothing_is_stored(
    client: TestClient[Any, Any], services: Services
) -> None:
    # What a cross-site HTML form can send: a form body, or plain text that happens to be JSON.
    for content_type in ("application/x-www-form-urlencoded", "text/plain"):
        response = await client.post(
            "/webchat/messages",
            data=b'{"client_message_id": "m", "text": "pothole"}',
            headers={"Content-Type": content_type},
        )
        assert response.status == 415, content_type
        assert "application/json" in (await response.json())["error"]
    async with services.session_factory() as db:
        assert await db.scalar(select(func.count()).select_from(MessageLog)) == 0


async def test_a_post_from_another_site_is_403_and_ours_is_taken(
    client: TestClient[Any, Any], services: Services
) -> None:
    body = {"client_message_id": "m-1", "text": "pothole"}
    for origin in ("https://evil.example", "null", "http://localhost:8080.evil.example"):
        response = await client.post("/webchat/messages", json=body, headers={"Origin": origin})
        assert response.status == 403, origin
        assert "chat page" in (await response.json())["error"]
    async with services.session_factory() as db:
        assert await db.scalar(select(func.count()).select_from(MessageLog)) == 0
    # The public URL's origin, and the address the request came to, are both this site.
    public = str(URL(services.settings.public_url).origin())
    own = f"http://{client.server.host}:{client.server.port}"
    for n, origin in enumerate((public, own)):
        response = await client.post(
            "/webchat/messages",
            json={"client_message_id": f"ok-{n}", "text": "pothole"},
            headers={"Origin": origin},
        )
        assert response.status == 200, origin


async def test_every_answer_carries_the_browser_safety_headers(
    client: TestClient[Any, Any],
) -> None:
    for method, path in (
        ("GET", "/"),
        ("GET", "/no-such-page"),  # aiohttp's own 404, turned into JSON by the error middleware
        ("PUT", "/webchat/messages"),  # its 405
        ("POST", "/webchat/messages"),  # our own 415
        ("GET", "/healthz"),
    ):
        response = await client.request(method, path)
        headers = response.headers
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["Referrer-Policy"] == "same-origin", path
        assert headers["X-Frame-Options"] == "DENY", path
        assert "geolocation=(self)" in headers["Permissions-Policy"], path
        # The public URL here is http: a browser would ignore HSTS, and a test host must not get it.
        assert "Strict-Transport-Security" not in headers, path


async def test_an_https_site_tells_browsers_to_stay_on_https(
    aiohttp_client: Callable[..., Any], tmp_path: Path
) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/db.sqlite3",
        session_secret="x",
        public_url="https://chat.city.example",
    )
    client = await aiohttp_client(await create_app(settings, workers=False))
    for path in ("/", "/no-such-page"):
        response = await client.get(path)
        assert response.headers["Strict-Transport-Security"] == "max-age=31536000", path
    # Behind the TLS proxy the chat page's posts name the public origin.
    response = await client.post(
        "/webchat/messages",
        json={"client_message_id": "m", "text": "pothole"},
        headers={"Origin": "https://chat.city.example"},
    )
    assert response.status == 200
