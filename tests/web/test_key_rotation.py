"""Rotating the session secret and the link key (issue 16): the two are separate keys, and what
an old key signed keeps working while it is listed in ``*_OLD``, through the real app and real
HTTP: the web chat cookie, the staff session cookie (aiohttp-session), the photo links."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiohttp_session import get_session
from aiohttp_session import setup as setup_sessions

from bot.app import SERVICES_KEY, create_app
from bot.config import ConfigError, Settings
from bot.web.staff_sessions import COOKIE_NAME as STAFF_COOKIE
from bot.web.staff_sessions import session_storage
from bot.web.webchat import COOKIE_NAME as WEBCHAT_COOKIE
from city.media_links import ForgedLink, MediaLinks
from conversations.export_links import ExportLinks, ForgedExportLink

OLD_SECRET = "old-session-secret-" + "o" * 20
NEW_SECRET = "new-session-secret-" + "n" * 20
OLD_LINK_KEY = "old-link-key-" + "l" * 20
NEW_LINK_KEY = "new-link-key-" + "k" * 20
PUBLIC_URL = "https://bot.city.example"


def test_the_keys_and_their_old_ones_are_read_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "CITYBOT_SESSION_SECRET": NEW_SECRET,
            "CITYBOT_SESSION_SECRET_OLD": f" {OLD_SECRET} ,older-one",
            "CITYBOT_MEDIA_LINK_KEY": NEW_LINK_KEY,
            "CITYBOT_MEDIA_LINK_KEY_OLD": OLD_LINK_KEY,
        }
    )
    assert settings.session_secrets == (NEW_SECRET, OLD_SECRET, "older-one")
    assert settings.link_keys == (NEW_LINK_KEY, OLD_LINK_KEY)
    # Without a link key of its own, the session secrets sign links, as before the key existed.
    unset = Settings.from_env({"CITYBOT_SESSION_SECRET": NEW_SECRET})
    assert unset.media_link_key is None and unset.link_keys == (NEW_SECRET,)
    # Secrets never show in a repr (they end up in tracebacks and debug output).
    assert NEW_LINK_KEY not in repr(settings) and OLD_SECRET not in repr(settings)


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"CITYBOT_MEDIA_LINK_KEY": "short"}, "at least 16 characters"),
        (
            {"CITYBOT_SESSION_SECRET": NEW_SECRET, "CITYBOT_MEDIA_LINK_KEY": NEW_SECRET},
            "must differ from CITYBOT_SESSION_SECRET",
        ),
        (
            {"CITYBOT_SESSION_SECRET": NEW_SECRET, "CITYBOT_SESSION_SECRET_OLD": NEW_SECRET},
            "CITYBOT_SESSION_SECRET_OLD holds the current CITYBOT_SESSION_SECRET",
        ),
    ],
)
def test_a_key_that_defeats_its_purpose_is_refused(env: dict[str, str], said: str) -> None:
    with pytest.raises(ConfigError, match=said):
        Settings.from_env({"CITYBOT_SESSION_SECRET": "x", **env})


def _settings(tmp_path: Path, **keys: Any) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/citybot.sqlite3",
        public_url=PUBLIC_URL,
        **keys,
    )


async def test_links_are_signed_with_the_link_key_and_old_links_keep_working(
    tmp_path: Path,
) -> None:
    settings = _settings(
        tmp_path,
        session_secret=NEW_SECRET,
        media_link_key=NEW_LINK_KEY,
        media_link_keys_old=(OLD_LINK_KEY,),
    )
    app = await create_app(settings, workers=False)
    async with TestClient(TestServer(app)) as client:
        services = app[SERVICES_KEY]
        # A photo link filed before the rotation still verifies; new ones use the new key.
        old_link = MediaLinks(OLD_LINK_KEY, PUBLIC_URL).token_for(5, "photo")
        assert services.media_links.read(old_link).submission_id == 5
        made = services.media_links.token_for(6, "photo")
        assert MediaLinks(NEW_LINK_KEY, PUBLIC_URL).read(made).submission_id == 6
        with pytest.raises(ForgedLink):
            MediaLinks(OLD_LINK_KEY, PUBLIC_URL).read(made)
        # The session secret is a separate key: a link it signed is forged, over HTTP too.
        by_session_secret = MediaLinks(NEW_SECRET, PUBLIC_URL).token_for(5, "photo")
        assert (await client.get(f"/media/{by_session_secret}")).status == 403
        assert (await client.get(f"/media/{old_link}")).status == 404  # genuine; no such report

        now = datetime.now(UTC)
        export = ExportLinks(OLD_LINK_KEY, PUBLIC_URL).token_for(3, now=now)
        assert services.data_export.links.read(export, now=now) == 3
        with pytest.raises(ForgedExportLink):
            services.data_export.links.read(
                ExportLinks(NEW_SECRET, PUBLIC_URL).token_for(3, now=now), now=now
            )


async def test_rotating_the_session_secret_does_not_end_the_photo_links(tmp_path: Path) -> None:
    before = _settings(tmp_path, session_secret=OLD_SECRET, media_link_key=NEW_LINK_KEY)
    after = _settings(
        tmp_path,
        session_secret=NEW_SECRET,
        session_secrets_old=(OLD_SECRET,),
        media_link_key=NEW_LINK_KEY,
    )
    token = MediaLinks(before.link_keys, PUBLIC_URL).token_for(9, "photo")
    assert MediaLinks(after.link_keys, PUBLIC_URL).read(token).submission_id == 9


async def _webchat_cookie(client: TestClient[Any, Any]) -> str:
    body = {"client_message_id": "m-1", "text": "menu"}
    response = await client.post("/webchat/messages", json=body)
    assert response.status == 200
    return response.cookies[WEBCHAT_COOKIE].value


async def test_a_web_chat_cookie_outlives_a_session_secret_rotation(tmp_path: Path) -> None:
    old_app = await create_app(_settings(tmp_path, session_secret=OLD_SECRET), workers=False)
    async with TestClient(TestServer(old_app)) as client:
        cookie = await _webchat_cookie(client)

    rotated = _settings(tmp_path, session_secret=NEW_SECRET, session_secrets_old=(OLD_SECRET,))
    async with TestClient(TestServer(await create_app(rotated, workers=False))) as client:
        # The resident keeps their conversation, and their cookie is signed again with the new
        # secret, so it outlasts the grace period.
        body = {"client_message_id": "m-2", "text": "menu"}
        response = await client.post(
            "/webchat/messages", json=body, cookies={WEBCHAT_COOKIE: cookie}
        )
        assert response.status == 200
        fresh = response.cookies[WEBCHAT_COOKIE].value
        assert fresh != cookie and fresh.split(".")[0] == cookie.split(".")[0]
        again = await client.post(
            "/webchat/messages",
            json={"client_message_id": "m-3", "text": "menu"},
            cookies={WEBCHAT_COOKIE: fresh},
        )
        assert again.status == 200 and WEBCHAT_COOKIE not in again.cookies

    # New cookies are signed with the new secret: they survive the old one being dropped.
    new_only = _settings(tmp_path, session_secret=NEW_SECRET)
    async with TestClient(TestServer(await create_app(new_only, workers=False))) as client:
        webchat = client.app[SERVICES_KEY].channels["webchat"]
        assert webchat.session_of(fresh) is not None  # type: ignore[attr-defined]
        assert webchat.session_of(cookie) is None  # type: ignore[attr-defined]


def _staff_app(settings: Settings) -> web.Application:
    """aiohttp-session with citybot's staff cookie storage, behind two tiny routes."""

    async def sign_in(request: web.Request) -> web.Response:
        session = await get_session(request)
        session["account"] = 7
        return web.Response(text="in")

    async def whoami(request: web.Request) -> web.Response:
        session = await get_session(request)
        return web.Response(text=str(session.get("account")))

    app = web.Application()
    setup_sessions(app, session_storage(settings))
    app.router.add_post("/api/sign-in", sign_in)
    app.router.add_get("/api/whoami", whoami)
    return app


async def test_a_staff_session_cookie_outlives_a_session_secret_rotation(tmp_path: Path) -> None:
    async with TestClient(
        TestServer(_staff_app(_settings(tmp_path, session_secret=OLD_SECRET)))
    ) as old:
        response = await old.post("/api/sign-in")
        sealed = response.cookies[STAFF_COOKIE].value

    rotated = _settings(tmp_path, session_secret=NEW_SECRET, session_secrets_old=(OLD_SECRET,))
    async with TestClient(TestServer(_staff_app(rotated))) as client:
        answer = await client.get("/api/whoami", cookies={STAFF_COOKIE: sealed})
        assert await answer.text() == "7"  # still signed in
        resealed = (await client.post("/api/sign-in")).cookies[STAFF_COOKIE].value

    # Once the old secret is dropped, its cookies no longer open; the new ones do.
    async with TestClient(
        TestServer(_staff_app(_settings(tmp_path, session_secret=NEW_SECRET)))
    ) as new:
        assert await (await new.get("/api/whoami", cookies={STAFF_COOKIE: sealed})).text() == "None"
        assert await (await new.get("/api/whoami", cookies={STAFF_COOKIE: resealed})).text() == "7"
