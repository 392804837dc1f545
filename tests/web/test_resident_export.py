"""EXPORT MY DATA through the real app: the web chat's signed link (``GET /my-data/{token}``)
works while signed and fresh, is 403 forged and 410 expired and never a 500; SMS and Telegram
get the summary without a link."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.services import Services
from city.media_links import MediaLinks
from conversations.export_links import ExportLinks
from storage.models import AuditLog, Resident
from storage.types import utc_now
from tests.web import test_webhooks
from tests.web.test_webhooks import PHONE, World
from tests.web.webchat_residents import WebResident

world = test_webhooks.world

NewResident = Callable[..., WebResident]


def _notices(resident: WebResident) -> list[str]:
    return [m["text"] for m in resident.last if m["type"] == "notice"]


def _link_path(resident: WebResident) -> str:
    (link,) = [t for t in _notices(resident) if "/my-data/" in t]
    return urlsplit(link.rsplit(" ", 1)[1]).path


async def _get(client: TestClient[Any, Any], path: str) -> tuple[int, Any, Any]:
    response = await client.get(path)
    return response.status, await response.json(), response.headers


async def _report(resident: WebResident) -> str:
    await resident.choose_service("pothole", "pothole")
    payload = await resident.finish()
    return str(payload["reference"])


async def _resident_ids(services: Services) -> list[int]:
    async with services.session_factory() as session:
        return list((await session.execute(select(Resident.id).order_by(Resident.id))).scalars())


async def test_web_chat_export_link_downloads_the_residents_data_and_is_audited(
    client: TestClient[Any, Any], resident_factory: NewResident, services: Services
) -> None:
    resident = resident_factory()
    reference = await _report(resident)
    await resident.say(text="EXPORT MY DATA")
    summary = _notices(resident)[0]
    assert summary.startswith("What we hold about you:") and reference in summary
    status, record, headers = await _get(client, _link_path(resident))
    assert status == 200
    assert headers["Cache-Control"] == "no-store"
    assert "attachment" in headers["Content-Disposition"]
    assert [r["reference"] for r in record["reports"]] == [reference]
    assert [a["channel"] for a in record["addresses"]] == ["webchat"]
    assert any(m["text"] == "EXPORT MY DATA" for m in record["messages"])
    # Staff-only working records are not in it.
    assert "area_type" not in record["reports"][0] and "filing_attempts" not in record
    async with services.session_factory() as session:
        rows = (await session.execute(select(AuditLog).where(AuditLog.action == "export"))).all()
    assert sorted(row.details["via"] for (row,) in rows) == ["chat", "link"]


async def test_web_chat_export_in_isizulu(
    client: TestClient[Any, Any], resident_factory: NewResident
) -> None:
    resident = resident_factory()
    await resident.say(text="isiZulu")
    await resident.say(text="idatha yami")
    summary, link = _notices(resident)
    assert summary.startswith("Esinakho ngawe:") and "Imibiko: ayikho." in summary
    assert link.startswith("Landa konke esinakho ngawe")
    status, record, _ = await _get(client, _link_path(resident))
    assert status == 200 and record["resident"]["language"] == "zu"


async def test_one_residents_export_holds_nothing_of_another(
    client: TestClient[Any, Any], resident_factory: NewResident
) -> None:
    other, me = resident_factory(seed=1), resident_factory(seed=2)
    theirs = await _report(other)
    mine = await _report(me)
    await me.say(text="export my data")
    status, record, _ = await _get(client, _link_path(me))
    assert status == 200
    assert [r["reference"] for r in record["reports"]] == [mine]
    assert theirs not in repr(record)
    assert len(record["addresses"]) == 1


async def test_after_erasure_the_link_shows_nothing_personal(
    client: TestClient[Any, Any], resident_factory: NewResident
) -> None:
    resident = resident_factory()
    reference = await _report(resident)
    await resident.say(text="export my data")
    path = _link_path(resident)
    await resident.say(text="delete my data")
    await resident.say(text="yes")
    status, record, _ = await _get(client, path)
    assert status == 200
    assert record["resident"]["erased_at"] is not None
    assert record["addresses"] == [] and record["subscriptions"] == []
    assert [r["reference"] for r in record["reports"]] == [reference]
    assert [m["text"] for m in record["messages"] if m["text"]][:1] == ["yes"]


async def test_an_expired_link_is_410_and_an_unknown_resident_404(
    client: TestClient[Any, Any], resident_factory: NewResident, services: Services
) -> None:
    resident = resident_factory()
    await resident.say(text="export my data")
    (resident_id,) = await _resident_ids(services)
    links = services.data_export.links
    assert links is not None
    stale = links.token_for(resident_id, now=utc_now() - timedelta(hours=1, seconds=5))
    status, body, _ = await _get(client, f"/my-data/{stale}")
    assert status == 410 and "expired" in body["error"]
    status, _, _ = await _get(client, f"/my-data/{links.token_for(999_999, now=utc_now())}")
    assert status == 404


def _forgeries(services: Services, resident_id: int) -> list[str]:
    links = services.data_export.links
    assert links is not None
    genuine = links.token_for(resident_id, now=utc_now())
    payload, signature = genuine.split(".")
    other_id = links.token_for(resident_id + 1, now=utc_now()).split(".")[0]
    return [
        f"{payload}.{signature[:-2]}AA",  # signature changed
        f"{other_id}.{signature}",  # another resident under this signature
        ExportLinks("another-secret", "http://x").token_for(resident_id, now=utc_now()),
        # A photo link signed with the same secret is not an export link.
        MediaLinks("test-secret", "http://x").token_for(resident_id, "photo"),
        "x",
        "a.b",
        "....",
        "..x",
        quote("✓.✓"),
        # Long, but within the request line aiohttp accepts (longer is its own 400).
        "A" * 3000 + "." + "B" * 3000,
    ]


@pytest.mark.parametrize("case", range(10))
async def test_a_forged_link_is_403_never_500(
    client: TestClient[Any, Any], resident_factory: NewResident, services: Services, case: int
) -> None:
    resident = resident_factory()
    await resident.say(text="export my data")
    (resident_id,) = await _resident_ids(services)
    status, body, _ = await _get(client, f"/my-data/{_forgeries(services, resident_id)[case]}")
    assert status == 403, body


async def test_sms_export_summary_shows_the_number_it_answers_and_no_link(world: World) -> None:
    assert await world.sms("export my data") == 200
    body = world.twilio_sent()[-1]["Body"]
    assert "What we hold about you:" in body
    assert f"SMS {PHONE} (this chat)" in body
    assert "/my-data/" not in body


async def test_telegram_export_summary_in_isizulu_without_a_link(world: World) -> None:
    await world.tg_text("isiZulu")
    await world.tg_text("idatha yami")
    text = world.tg_sent()[-1]["text"]
    assert "Esinakho ngawe:" in text and "i-Telegram 123456789 (le ngxoxo)" in text
    assert "/my-data/" not in text
