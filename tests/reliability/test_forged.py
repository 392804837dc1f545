"""Forged: every signature, secret and token variant on every channel is refused, and writes
nothing (issue 15's suite).

One table of forgeries, each sent over real HTTP to the whole app (every channel on, fake
providers), with the status it must get. Every table of the schema is counted before and after
each one: a refused request leaves no row anywhere, except the staff API's audit of an attack
(a refused token is audited by design, ``bot.web.staff_api_table``), which is counted apart.

The web chat has no secret to forge: anyone may open a chat. What a forger can try is to take
someone else's conversation with a forged session cookie, or to post from another site; the
first is answered as a new resident (a new cookie; the victim's conversation gains nothing, and
their history is not shown), the second is refused 403.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.app import app_for
from bot.bootstrap import build_services
from bot.config import Settings
from bot.services import Services
from channels.webchat import COOKIE_NAME, WebChatChannel
from staff import accounts
from staff.accounts import NewAccount
from storage.models import MessageLog
from storage.types import utc_now
from tests.channels.signed import PUBLIC_URL, TELEGRAM_SECRET, telegram_update, twilio_form
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.reliability.figures import count_rows, figure

TOKEN = "7000000001:AAFakeTokenForTests"
OTHER_BOT_SECRET = "tg-secret-of-another-bot"
OTHER_AUTH_TOKEN = "another-accounts-auth-token-0000"


@dataclass(frozen=True)
class Forgery:
    name: str
    method: str
    path: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class Site:
    client: TestClient[Any, Any]
    services: Services
    tokens: dict[str, str]


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async with FakeTelegram() as telegram, FakeTwilio() as twilio:
        settings = Settings.from_env(
            {
                "CITYBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/citybot.sqlite3",
                "CITYBOT_PUBLIC_URL": PUBLIC_URL,
                "CITYBOT_SESSION_SECRET": "test",
                "TELEGRAM_BOT_TOKEN": TOKEN,
                "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET,
                "TELEGRAM_API_BASE_URL": telegram.url,
                "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
                "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                "TWILIO_SMS_FROM": "+27211234567",
                "TWILIO_WHATSAPP_FROM": "whatsapp:+27211234567",
                "TWILIO_API_BASE_URL": twilio.url,
            }
        )
        services = await build_services(settings)
        tokens = await _tokens(services)
        async with TestClient(TestServer(app_for(services, workers=False))) as client:
            yield Site(client, services, tokens)
            await services.replies.sender.drain(5)


async def _tokens(services: Services) -> dict[str, str]:
    """An admin token that is good, one expired, one revoked, one of a disabled account, and an
    agent's (good, but without the admin's permission)."""
    made: dict[str, str] = {}
    async with services.session_factory() as db, db.begin():
        for email, roles in (
            ("admin@city.example", ["admin"]),
            ("gone@city.example", ["admin"]),
            ("agent@city.example", ["agent"]),
        ):
            await accounts.create_account(db, NewAccount.checked(email, roles=roles), actor="test")
        issue = accounts.issue_token
        made["good"] = (
            await issue(db, "admin@city.example", roles=["admin"], days=1, actor="test")
        ).token
        made["expired"] = (
            await issue(
                db,
                "admin@city.example",
                roles=["admin"],
                days=1,
                actor="test",
                now=utc_now() - timedelta(days=2),
            )
        ).token
        revoked = await issue(db, "admin@city.example", roles=["admin"], days=1, actor="test")
        await accounts.revoke_token(db, revoked.record.id, actor="test")
        made["revoked"] = revoked.token
        made["disabled"] = (
            await issue(db, "gone@city.example", roles=["admin"], days=1, actor="test")
        ).token
        await accounts.disable_account(db, "gone@city.example", actor="test")
        made["agent"] = (
            await issue(db, "agent@city.example", roles=["agent"], days=1, actor="test")
        ).token
    return made


def _twilio_forgeries(path: str, form: dict[str, str], other_path: str) -> list[Forgery]:
    from twilio.request_validator import RequestValidator

    def signed(
        fields: dict[str, str], url: str = PUBLIC_URL + path, token: str = AUTH_TOKEN
    ) -> str:
        signature: str = RequestValidator(token).compute_signature(url, fields)
        return signature

    body = urlencode(form).encode()
    plain = {"Content-Type": "application/x-www-form-urlencoded"}
    altered = {**form, "Body": form.get("Body", "") + " and more"}
    variants = {
        "no signature": None,
        "a wrong signature": "c2lnbmF0dXJlLXRoYXQtbWF0Y2hlcy1ub3RoaW5n",
        "signed for another URL": signed(form, PUBLIC_URL + other_path),
        "signed for another host": signed(form, "https://evil.example" + path),
        "signed with another account's auth token": signed(form, token=OTHER_AUTH_TOKEN),
        "a param altered after signing": signed(form),
    }
    forgeries = []
    for name, signature in variants.items():
        headers = dict(plain)
        if signature is not None:
            headers["X-Twilio-Signature"] = signature
        sent = urlencode(altered).encode() if name.startswith("a param") else body
        forgeries.append(Forgery(f"{path}: {name}", "POST", path, 403, headers, sent))
    return forgeries


def forgeries(site: Site) -> list[Forgery]:
    sms = twilio_form("inbound_sms.json", From="+27831110001", Body="pothole")
    whatsapp = twilio_form("inbound_whatsapp_text.json", From="whatsapp:+27831110002")
    receipt = {
        "MessageSid": "SM" + "1" * 32,
        "MessageStatus": "delivered",
        "AccountSid": ACCOUNT_SID,
        "To": "+27831110001",
    }
    table = [
        *_twilio_forgeries("/webhooks/twilio/sms", sms, "/webhooks/twilio/whatsapp"),
        *_twilio_forgeries("/webhooks/twilio/whatsapp", whatsapp, "/webhooks/twilio/sms"),
        *_twilio_forgeries("/webhooks/twilio/status", receipt, "/webhooks/twilio/sms"),
    ]
    update = json.dumps(telegram_update("update_message_text.json")).encode()
    tg_json = {"Content-Type": "application/json"}
    for name, secret in {
        "no secret header": None,
        "a wrong secret": "not-the-secret",
        "the secret in another case": TELEGRAM_SECRET.upper(),
        "another bot's secret": OTHER_BOT_SECRET,
        "the secret and more": TELEGRAM_SECRET + "0",
        "the secret cut short": TELEGRAM_SECRET[:-1],
    }.items():
        headers = dict(tg_json)
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        table.append(
            Forgery(f"telegram: {name}", "POST", "/webhooks/telegram", 403, headers, update)
        )
    report = {
        "service_code": "pothole",
        "lat": "-34.0363",
        "long": "18.6776",
        "description": "forged report",
    }
    form_type = {"Content-Type": "application/x-www-form-urlencoded"}
    for name, key in {
        "no api_key": None,
        "a wrong api_key": "0" * 32,
        "an empty api_key": "",
    }.items():
        fields = dict(report) if key is None else {**report, "api_key": key}
        for fmt in ("json", "xml"):
            table.append(
                Forgery(
                    f"open311 ({fmt}): {name}",
                    "POST",
                    f"/open311/v2/requests.{fmt}",
                    403,
                    form_type,
                    urlencode(fields).encode(),
                )
            )
    new_account = json.dumps({"email": "mallory@city.example", "roles": ["admin"]}).encode()
    api_json = {"Content-Type": "application/json"}
    tokens = site.tokens
    for name, authorization, status in (
        ("no token", None, 401),
        ("a malformed header", "Bearer", 401),
        ("not a bearer", f"Basic {tokens['good']}", 401),
        ("a made-up token", "Bearer cbt_" + "A" * 40, 401),
        ("a good token cut short", f"Bearer {tokens['good'][:-4]}", 401),
        ("an expired token", f"Bearer {tokens['expired']}", 401),
        ("a revoked token", f"Bearer {tokens['revoked']}", 401),
        ("a disabled account's token", f"Bearer {tokens['disabled']}", 401),
        ("a token without the permission", f"Bearer {tokens['agent']}", 403),
    ):
        headers = dict(api_json)
        if authorization is not None:
            headers["Authorization"] = authorization
        table.append(
            Forgery(f"staff API: {name}", "POST", "/api/v1/accounts", status, headers, new_account)
        )
    table.append(
        Forgery(
            "staff API: a forged session cookie",
            "POST",
            "/api/v1/accounts",
            401,
            {**api_json, "Cookie": "citybot_staff_session=gAAAAABforgedforgedforged"},
            new_account,
        )
    )
    table.append(
        Forgery(
            "web chat: a post from another site",
            "POST",
            "/webchat/messages",
            403,
            {**api_json, "Origin": "https://evil.example"},
            json.dumps({"text": "pothole", "client_message_id": "x-1"}).encode(),
        )
    )
    return table


def _without_audit(counts: dict[str, int]) -> dict[str, int]:
    return {name: n for name, n in counts.items() if name != "audit_log"}


async def test_every_forgery_on_every_channel_is_refused_and_writes_nothing(site: Site) -> None:
    table = forgeries(site)
    sessions = site.services.session_factory
    before = await count_rows(sessions)
    wrong: list[str] = []
    for forgery in table:
        async with site.client.request(
            forgery.method, forgery.path, headers=forgery.headers, data=forgery.body
        ) as response:
            if response.status != forgery.status:
                wrong.append(f"{forgery.name}: {response.status}, not {forgery.status}")
        await site.services.turn_loop.flush()
        after = await count_rows(sessions)
        if _without_audit(after) != _without_audit(before):
            changed = {t: (before[t], n) for t, n in after.items() if before[t] != n}
            wrong.append(f"{forgery.name}: rows written {changed}")
        before = after
    assert wrong == []
    # The fake providers were never called on a forger's behalf.
    figure(
        f"forged: {len(table)} forgeries over {len({f.path for f in table})} routes, "
        f"{len(table) - len(wrong)} refused with the right status (100%), 0 rows written"
    )


async def test_a_forged_web_chat_cookie_takes_nobodys_conversation(site: Site) -> None:
    channel = site.services.channels["webchat"]
    assert isinstance(channel, WebChatChannel)
    victim_cookie = channel.new_session()
    victim = channel.session_of(victim_cookie)
    assert victim is not None
    client = site.client
    body = {"text": "pothole", "client_message_id": "v-1"}
    async with client.post(
        "/webchat/messages", json=body, headers={"Cookie": f"{COOKIE_NAME}={victim_cookie}"}
    ) as response:
        assert response.status == 200
    await site.services.turn_loop.flush()

    async def victims_rows() -> int:
        async with site.services.session_factory() as db:
            found = await db.scalar(
                select(func.count()).select_from(MessageLog).where(MessageLog.address == victim)
            )
        return int(found or 0)

    rows = await victims_rows()
    assert rows >= 2  # the victim's message and the bot's answer
    forged = [
        f"{victim}.{'A' * 24}",  # the victim's id, a made-up signature
        victim,  # the id alone
        victim_cookie[:-1] + ("A" if victim_cookie[-1] != "A" else "B"),  # one character off
        f"{victim}.{victim_cookie.split('.')[1]}.x",
    ]
    for cookie in forged:
        headers = {"Cookie": f"{COOKIE_NAME}={cookie}"}
        async with client.get("/webchat/history", headers=headers) as response:
            assert response.status == 200
            assert (await response.json())["messages"] == []
        async with client.post(
            "/webchat/messages",
            json={"text": "menu", "client_message_id": f"f-{cookie[-3:]}"},
            headers=headers,
        ) as response:
            assert response.status == 200
            given = response.cookies.get(COOKIE_NAME)
            assert given is not None and channel.session_of(given.value) not in (None, victim)
        await site.services.turn_loop.flush()
        assert await victims_rows() == rows
    figure(
        f"forged: {len(forged)} forged web chat cookies, each answered as a new resident; "
        "0 rows added to the victim's conversation, 0 of its history shown"
    )
