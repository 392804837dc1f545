"""Report -> filed -> staff closes -> resident told, on every channel, against the running app.

Each scenario runs ``citybot serve``'s real application on a loopback port: the filer and the
status poller run as its workers, file over real HTTP to the built-in Open311 server, and the
staff member changes the request on the staff page with a real POST. The resident only sees what
the provider fakes were asked to deliver (or, on the web chat, what the page's poll returns).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from redis.asyncio import Redis

from forms_runtime.i18n import N_, tr
from notifier.status_notices import status_message
from storage.models import Submission
from tests.e2e.city import (
    City,
    ProviderResident,
    SmsResident,
    TelegramResident,
    WebChatResident,
    WhatsAppResident,
    eventually,
    running_city,
)
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import FakeTwilio
from tests.storage.databases import postgres_database

NOTES = "Filled and rolled on Tuesday."


def filed_text(locale: str, submission: Submission) -> str:
    return tr(
        locale,
        N_("Your report {reference} is with the city now. The city's number for it is {number}."),
        reference=submission.reference,
        number=submission.service_request_id,
    )


def closed_text(locale: str, submission: Submission) -> str:
    assert submission.service_request_id is not None
    return status_message(
        locale, submission.reference, submission.service_request_id, "closed", NOTES, None
    )


async def close_the_loop(
    city: City, resident: ProviderResident | WebChatResident, locale: str
) -> dict[str, float]:
    """Run the loop; returns seconds from the report stored to each thing the resident is told."""

    async def told() -> list[str]:
        if isinstance(resident, WebChatResident):
            return await resident.poll()
        return resident.received()

    async def has(text: str) -> bool:
        return any(text in said for said in await told())

    reference = await resident.report("pothole", locale)
    stored = time.perf_counter()
    filed = await eventually(lambda: city.filed(reference))
    assert filed.channel == resident.channel and filed.locale == locale
    await eventually(lambda: has(filed_text(locale, filed)))
    told_filed = time.perf_counter()

    await city.staff_sets_status(filed.service_request_id, "closed", NOTES)
    staff_saved = time.perf_counter()
    update = closed_text(locale, filed)
    if locale != "en":  # told in their language, not in English
        assert update != closed_text("en", filed)
        assert filed_text(locale, filed) != filed_text("en", filed)
    await eventually(lambda: has(update))
    told_closed = time.perf_counter()

    # Once: later polling cycles find nothing new and say nothing more.
    await asyncio.sleep(city.settings.status_poll_seconds * 5 + 0.2)
    assert sum(update in said for said in await told()) == 1
    assert sum(filed_text(locale, filed) in said for said in await told()) == 1
    assert (await city.submission(reference)).status == "closed"
    timings = {
        "stored_to_told_filed": told_filed - stored,
        "staff_to_told_closed": told_closed - staff_saved,
        "stored_to_told_closed": told_closed - stored,
    }
    print(
        f"\nloop on {resident.channel} ({locale}): "
        + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in timings.items())
    )
    return timings


@pytest.mark.parametrize("locale", ["en", "af"])
async def test_web_chat_resident_is_told_filed_and_closed(tmp_path: Path, locale: str) -> None:
    async with running_city(tmp_path) as city:
        resident = WebChatResident(city)
        try:
            await close_the_loop(city, resident, locale)
        finally:
            await resident.close()


async def test_telegram_resident_is_told_filed_and_closed(tmp_path: Path) -> None:
    async with FakeTelegram() as telegram, running_city(tmp_path, telegram=telegram) as city:
        await close_the_loop(city, TelegramResident(city), "zu")


async def test_sms_resident_is_told_filed_and_closed(tmp_path: Path) -> None:
    async with FakeTwilio() as twilio, running_city(tmp_path, twilio=twilio) as city:
        await close_the_loop(city, SmsResident(city), "af")


async def test_whatsapp_resident_is_told_filed_and_closed(tmp_path: Path) -> None:
    async with FakeTwilio() as twilio, running_city(tmp_path, twilio=twilio) as city:
        await close_the_loop(city, WhatsAppResident(city), "xh")


@pytest.mark.postgres
@pytest.mark.redis
async def test_provider_residents_close_the_loop_on_postgres_and_redis(
    tmp_path: Path, redis_url: str
) -> None:
    # The scale-out stores: replies are committed on the Redis reply stream with each turn and
    # sent by the stream's reader; the filer and notifier run on PostgreSQL.
    async with (
        postgres_database() as database_url,
        fresh_redis_keys(redis_url),
        FakeTelegram() as telegram,
        FakeTwilio() as twilio,
        running_city(
            tmp_path,
            telegram=telegram,
            twilio=twilio,
            env={"CITYBOT_DATABASE_URL": database_url, "CITYBOT_REDIS_URL": redis_url},
        ) as city,
    ):
        assert city.services.turn_loop.queues_replies
        await close_the_loop(city, TelegramResident(city), "xh")
        await close_the_loop(city, SmsResident(city), "en")
        await close_the_loop(city, WhatsAppResident(city), "af")
        assert city.services.redis is not None
        for channel, replies in (("telegram", 8), ("sms", 8), ("whatsapp", 8)):
            # Every reply of each report went through its channel's stream.
            [group] = await city.services.redis.xinfo_groups(f"citybot:{{s0}}:replies:{channel}")
            assert group["entries-read"] >= replies
            assert group["pending"] == 0


@asynccontextmanager
async def fresh_redis_keys(redis_url: str) -> AsyncIterator[None]:
    """No state, dedupe marker or queued reply of an earlier run under the default prefix."""
    redis = Redis.from_url(redis_url)

    async def clear() -> None:
        keys = [key async for key in redis.scan_iter("citybot:*", count=1000)]
        if keys:
            await redis.delete(*keys)

    try:
        await clear()
        yield
        await clear()
    finally:
        await redis.aclose()
