"""GET /media/{token}: the real app fetching photos from local fake Telegram and Twilio servers
with the real SDK and real HTTP, and the filer sending the city a link to it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from bot.app import SERVICES_KEY, create_app
from bot.config import Settings
from bot.services import Services
from bot.web.media import CACHE_CONTROL
from channels.media import telegram_file_ref
from city.filer import Filer, FilerSettings
from city.media_links import MediaLinks
from city.open311.client import Open311Backend
from city.open311.mapping import draft_from_answers
from city.open311.server import PREFIX
from forms_runtime.answers import MAX_PHOTO_BYTES
from forms_runtime.loader import standard_forms
from storage.models import Open311Request, Submission, SubmissionOutbox
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.pothole_report import POTHOLE_ANSWERS, pothole_submission

TOKEN = "7000000001:AAFakeTokenForTests"
PUBLIC_URL = "https://bot.city.example"
SECRET = "media-test-secret"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x01" * 500
GIF = b"GIF89a" + b"\x00" * 200
MEDIA_SID = "ME00000000000000000000000000002003"


@dataclass
class World:
    client: TestClient[Any, Any]
    telegram: FakeTelegram
    twilio: FakeTwilio
    services: Services
    links: MediaLinks

    async def submission(self, photo_url: str | None, content_type: str = "image/jpeg") -> int:
        answers = dict(POTHOLE_ANSWERS)
        if photo_url is not None:
            answers["photo"] = {"url": photo_url, "content_type": content_type, "size": None}
        async with self.services.session_factory() as db, db.begin():
            count = len((await db.scalars(select(Submission.id))).all())
            row = Submission(
                **pothole_submission(f"CT-M{count:05d}", channel="telegram", answers=answers)
            )
            db.add(row)
            await db.flush()
            db.add(SubmissionOutbox(submission_id=row.id))
            return row.id

    async def get(self, url_or_token: str) -> Any:
        path = url_or_token.removeprefix(PUBLIC_URL)
        if not path.startswith("/"):
            path = f"/media/{path}"
        return await self.client.get(path)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with FakeTelegram() as telegram, FakeTwilio() as twilio:
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path}/citybot.sqlite3",
            public_url=PUBLIC_URL,
            session_secret=SECRET,
            telegram_bot_token=TOKEN,
            telegram_api_base_url=telegram.url,
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token=AUTH_TOKEN,
            twilio_sms_from="+27211234567",
            twilio_api_base_url=twilio.url,
        )
        app = await create_app(settings, workers=False)
        async with TestClient(TestServer(app)) as client:
            yield World(client, telegram, twilio, app[SERVICES_KEY], MediaLinks(SECRET, PUBLIC_URL))


async def test_a_telegram_photo_is_fetched_with_the_bot_token_and_served(world: World) -> None:
    world.telegram.files["AgACAgQAAxkBPHOTO_y"] = JPEG
    submission = await world.submission(telegram_file_ref("AgACAgQAAxkBPHOTO_y"))
    response = await world.get(world.links.url_for(submission, "photo"))
    assert response.status == 200
    assert await response.read() == JPEG
    assert response.content_type == "image/jpeg"
    assert response.headers["Cache-Control"] == CACHE_CONTROL
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    # getFile, then the download from the file URL the SDK built (it carries the token)...
    assert world.telegram.calls("getFile")[0].form["file_id"] == "AgACAgQAAxkBPHOTO_y"
    downloads = [r for r in world.telegram.requests if r.path.startswith("/file/")]
    assert downloads[0].path == f"/file/bot{TOKEN}/photos/AgACAgQAAxkBPHOTO_y.jpg"
    # ...which never reaches the caller.
    assert TOKEN not in str(response.headers)


async def test_a_twilio_photo_is_fetched_with_basic_auth_and_the_redirect_without_it(
    world: World,
) -> None:
    world.twilio.media[MEDIA_SID] = ("image/png", PNG)
    submission = await world.submission(world.twilio.media_url(MEDIA_SID), "image/png")
    response = await world.get(world.links.url_for(submission, "photo"))
    assert response.status == 200
    assert await response.read() == PNG
    assert response.content_type == "image/png"
    media, cdn = world.twilio.requests[-2:]
    assert media.status == 307 and media.headers["Authorization"].startswith("Basic ")
    # The pre-signed storage URL gets no credentials.
    assert cdn.path == f"/cdn/{MEDIA_SID}" and "Authorization" not in cdn.headers


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        lambda token: MediaLinks("another-secret", PUBLIC_URL).token_for(1, "photo"),
        lambda token: "not-a-token",
        lambda token: token.split(".")[0],
    ],
    ids=["altered signature", "other key", "garbage", "unsigned"],
)
async def test_a_forged_token_is_refused_with_403(world: World, tamper: Any) -> None:
    world.telegram.files["AgACforged"] = JPEG
    submission = await world.submission(telegram_file_ref("AgACforged"))
    response = await world.get(tamper(world.links.token_for(submission, "photo")))
    assert response.status == 403
    assert world.telegram.calls("getFile") == []


async def test_a_token_naming_another_submission_is_forged(world: World) -> None:
    first = await world.submission(telegram_file_ref("AgACfirst"))
    second = await world.submission(telegram_file_ref("AgACsecond"))
    token = world.links.token_for(first, "photo")
    signature = token.split(".")[1]
    other_payload = world.links.token_for(second, "photo").split(".")[0]
    assert (await world.get(f"{other_payload}.{signature}")).status == 403


async def test_an_expired_or_unknown_link_is_404(world: World) -> None:
    world.telegram.files["AgACold"] = JPEG
    submission = await world.submission(telegram_file_ref("AgACold"))
    long_ago = time.time() - 91 * 86400
    assert (await world.get(world.links.token_for(submission, "photo", now=long_ago))).status == 404
    assert (await world.get(world.links.token_for(99999, "photo"))).status == 404
    no_photo = await world.submission(None)
    assert (await world.get(world.links.token_for(no_photo, "photo"))).status == 404
    # A photo Telegram no longer has.
    gone = await world.submission(telegram_file_ref("AgACgone"))
    assert (await world.get(world.links.token_for(gone, "photo"))).status == 404


async def test_a_file_that_is_not_a_jpeg_png_or_webp_is_refused(world: World) -> None:
    world.telegram.files["AgACgif"] = GIF
    submission = await world.submission(telegram_file_ref("AgACgif"), "image/jpeg")
    response = await world.get(world.links.token_for(submission, "photo"))
    assert response.status == 415
    assert (await response.json())["error"] == "the file is not a JPEG, PNG or WebP image"
    # Twilio's word for the type is not taken on trust either.
    world.twilio.media[MEDIA_SID] = ("image/jpeg", b"<html>not an image</html>")
    submission = await world.submission(world.twilio.media_url(MEDIA_SID))
    assert (await world.get(world.links.token_for(submission, "photo"))).status == 415


async def test_a_photo_over_the_limit_is_refused(world: World) -> None:
    huge = b"\xff\xd8\xff\xe0" + b"\x00" * MAX_PHOTO_BYTES
    # Telegram says how big the file is: refused before the download.
    world.telegram.files["AgAChuge"] = huge
    submission = await world.submission(telegram_file_ref("AgAChuge"))
    assert (await world.get(world.links.token_for(submission, "photo"))).status == 413
    assert not [r for r in world.telegram.requests if r.path.startswith("/file/")]
    # Telegram understating the size: caught on the bytes.
    world.telegram.claimed_sizes["AgAChuge"] = 1000
    assert (await world.get(world.links.token_for(submission, "photo"))).status == 413
    # Twilio, streamed: cut off at the limit.
    world.twilio.media[MEDIA_SID] = ("image/jpeg", huge)
    submission = await world.submission(world.twilio.media_url(MEDIA_SID))
    assert (await world.get(world.links.token_for(submission, "photo"))).status == 413


async def test_a_provider_that_is_down_gives_502_with_retry_after(world: World) -> None:
    world.twilio.media[MEDIA_SID] = ("image/png", PNG)
    submission = await world.submission(world.twilio.media_url(MEDIA_SID))
    world.twilio.fail_next(500, {"code": 20500, "message": "Internal Server Error", "status": 500})
    response = await world.get(world.links.token_for(submission, "photo"))
    assert response.status == 502 and int(response.headers["Retry-After"]) > 0
    # Once Twilio is back, the same link works.
    assert (await world.get(world.links.token_for(submission, "photo"))).status == 200

    world.telegram.files["AgACslow"] = JPEG
    submission = await world.submission(telegram_file_ref("AgACslow"))
    limited = {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 7"}
    limited["parameters"] = {"retry_after": 7}
    world.telegram.fail_method("getFile", 429, limited)
    response = await world.get(world.links.token_for(submission, "photo"))
    assert response.status == 502 and response.headers["Retry-After"] == "7"


async def test_credentials_are_never_sent_to_a_url_outside_the_account(world: World) -> None:
    for url in (
        "https://evil.example/2010-04-01/Accounts/" + ACCOUNT_SID + "/Messages/MM1/Media/ME1",
        "https://api.twilio.com/2010-04-01/Accounts/ACother/Messages/MM1/Media/ME1",
        "http://api.twilio.com/2010-04-01/Accounts/" + ACCOUNT_SID + "/Messages/MM1/Media/ME1",
    ):
        submission = await world.submission(url)
        assert (await world.get(world.links.token_for(submission, "photo"))).status == 404
    assert world.twilio.requests == []


async def test_the_filer_sends_the_city_a_link_to_the_proxy(world: World) -> None:
    world.telegram.files["AgACfiled"] = JPEG
    submission = await world.submission(telegram_file_ref("AgACfiled"))
    services = world.services
    filer = Filer(
        services.session_factory,
        Open311Backend(str(world.client.make_url(PREFIX)), api_key=services.settings.open311_key),
        standard_forms(),
        settings=FilerSettings(retry_delays=(0.0,), jitter=0.0),
        registry=CollectorRegistry(),
        media_links=services.media_links,
    )
    try:
        assert await filer.run_once() == 1
    finally:
        await filer.backend.close()
    async with services.session_factory() as db:
        [filed] = (await db.scalars(select(Open311Request))).all()
        row = await db.get(Submission, submission)
    assert row is not None and row.status == "filed"
    media_url = filed.media_url or ""
    assert media_url.startswith(f"{PUBLIC_URL}/media/")
    assert "tg-file" not in media_url and "AgAC" not in media_url
    # The city follows the link and gets the photo.
    response = await world.get(media_url)
    assert response.status == 200 and await response.read() == JPEG


def test_without_links_the_mapping_keeps_the_stored_reference() -> None:
    form = standard_forms()["pothole"]
    answers = {
        **POTHOLE_ANSWERS,
        "photo": {"url": "https://example.org/p.jpg", "content_type": "x"},
    }
    assert draft_from_answers(form, answers).media_url == "https://example.org/p.jpg"
    proxied = draft_from_answers(form, answers, photo_url=lambda step: f"{PUBLIC_URL}/m/{step}")
    assert proxied.media_url == f"{PUBLIC_URL}/m/photo"
