"""A whole citybot on loopback for end-to-end scenarios, and residents who talk to it.

``running_city`` starts the real ``citybot serve`` application (``bot.app.create_app``, workers
included) on a free port over real HTTP, with a temporary SQLite file, the built-in Open311
server (or ``OPEN311_ENDPOINT``), and the real Telegram and Twilio SDKs pointed at local fakes.
Residents post what the providers would post (signed), and read what the fakes were sent.

Example::

    async with FakeTelegram() as tg, FakeTwilio() as twilio:
        async with running_city(tmp_path, telegram=tg, twilio=twilio) as city:
            resident = TelegramResident(city)
            reference = await resident.report_pothole()
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from bot.app import SERVICES_KEY, create_app
from bot.config import Settings
from bot.services import Services
from channels.pacing import Pacer
from channels.types import InboundMessage
from conversations.turn import ReplyEncoder, TurnResult
from forms_runtime.effects import Ask, GeoPoint, InputKind, Review
from forms_runtime.sample_answers import sample_answer
from staff.accounts import NewAccount, create_account, issue_token
from storage.models import Submission
from tests.channels.signed import TELEGRAM_SECRET, telegram_update, twilio_form
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.web.serve_process import free_port
from tests.web.webchat_residents import answer_for

__all__ = [
    "City",
    "SmsResident",
    "TelegramResident",
    "WebChatResident",
    "WhatsAppResident",
    "choose",
    "eventually",
    "free_port",
    "running_city",
]

TELEGRAM_TOKEN = "7000000001:AAFakeTokenForTests"
CITY_NUMBER = "+27211234567"
# A pin the gazetteer places inside the city (Khayelitsha).
PIN = GeoPoint(-34.0363, 18.6776)
# Provider message ids are unique across residents, as the providers' are.
_MESSAGE_IDS = itertools.count(1)


async def eventually(
    check: Callable[[], Awaitable[Any]], *, timeout: float = 15.0, every: float = 0.05
) -> Any:
    """Await ``check()`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {timeout} s for {check}")
        await asyncio.sleep(every)


@dataclass
class City:
    """One running citybot: its URL, its services, and every turn result it produced."""

    url: str
    app: web.Application
    settings: Settings
    http: aiohttp.ClientSession
    telegram: FakeTelegram | None
    twilio: FakeTwilio | None
    results: list[tuple[InboundMessage, TurnResult]] = field(default_factory=list)
    # An agent's API token for the admin API, made at the first staff change.
    staff_token: str | None = None

    @property
    def services(self) -> Services:
        return self.app[SERVICES_KEY]

    async def submission(self, reference: str) -> Submission:
        async with self.services.session_factory() as db:
            found = await db.scalar(select(Submission).where(Submission.reference == reference))
        assert found is not None, reference
        return found

    async def filed(self, reference: str) -> Submission | None:
        found = await self.submission(reference)
        return found if found.service_request_id else None

    async def staff_sets_status(self, service_request_id: str, status: str, notes: str) -> None:
        """What a staff member does: one real PATCH to the admin API, with an agent's token."""
        async with self.services.session_factory() as db:
            reference = await db.scalar(
                select(Submission.reference).where(
                    Submission.service_request_id == service_request_id
                )
            )
        assert reference is not None, service_request_id
        if self.staff_token is None:
            async with self.services.session_factory() as db, db.begin():
                await create_account(
                    db, NewAccount.checked("agent@city.gov", roles=["agent"]), actor="test"
                )
                issued = await issue_token(
                    db, "agent@city.gov", roles=["agent"], days=1, actor="test"
                )
            self.staff_token = issued.token
        async with self.http.patch(
            f"{self.url}/api/v1/requests/{reference}",
            json={"status": status, "status_notes": notes},
            headers={"Authorization": f"Bearer {self.staff_token}"},
        ) as response:
            assert response.status == 200, await response.text()


def _observe(city: City) -> None:
    """Remember every turn's result, so residents can answer what the bot asked them."""
    loop = city.services.turn_loop
    handle = loop.handle

    async def observed(
        message: InboundMessage, reply: ReplyEncoder | None = None, *, held: bool = False
    ) -> TurnResult:
        result = await handle(message, reply, held=held)
        city.results.append((message, result))
        return result

    loop.handle = observed  # type: ignore[method-assign]


def _unpaced(city: City) -> None:
    """No one-message-a-second wait per chat: the scenario is the same, only quicker."""
    for channel in city.services.channels.values():
        pacer = getattr(channel, "pacer", None)
        if isinstance(pacer, Pacer):
            channel.pacer = Pacer(10_000, 10_000)  # type: ignore[attr-defined]


def city_settings(
    tmp_path: Path,
    port: int,
    *,
    telegram: FakeTelegram | None = None,
    twilio: FakeTwilio | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    url = f"http://127.0.0.1:{port}"
    base = {
        "CITYBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/citybot-{port}.sqlite3",
        "CITYBOT_PUBLIC_URL": url,
        "CITYBOT_HOST": "127.0.0.1",
        "CITYBOT_PORT": str(port),
        "CITYBOT_SESSION_SECRET": "e2e-secret",
        # Residents here answer far faster than people type.
        "CITYBOT_RATE_LIMIT_PER_SECOND": "1000",
        "CITYBOT_RATE_LIMIT_BURST": "1000",
        # Short intervals: the loop is the same, the test quicker.
        "CITYBOT_FILER_IDLE_SECONDS": "0.05",
        "CITYBOT_FILER_RETRY_DELAYS": "0.2",
        "CITYBOT_STATUS_POLL_SECONDS": "0.1",
        "CITYBOT_DISPATCH_IDLE_SECONDS": "0.05",
        "CITYBOT_QUIET_HOURS": "off",
    }
    if telegram is not None:
        base |= {
            "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
            "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET,
            "TELEGRAM_API_BASE_URL": telegram.url,
        }
    if twilio is not None:
        base |= {
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_SMS_FROM": CITY_NUMBER,
            "TWILIO_WHATSAPP_FROM": f"whatsapp:{CITY_NUMBER}",
            "TWILIO_API_BASE_URL": twilio.url,
        }
    return Settings.from_env(base | dict(env or {}))


@asynccontextmanager
async def running_city(
    tmp_path: Path,
    *,
    telegram: FakeTelegram | None = None,
    twilio: FakeTwilio | None = None,
    env: Mapping[str, str] | None = None,
    workers: bool = True,
) -> AsyncIterator[City]:
    """``citybot serve``'s app, listening on a free loopback port until the block ends."""
    port = free_port()
    settings = city_settings(tmp_path, port, telegram=telegram, twilio=twilio, env=env)
    app = await create_app(settings, workers=workers)
    runner = web.AppRunner(app, shutdown_timeout=5, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            city = City(f"http://127.0.0.1:{port}", app, settings, http, telegram, twilio)
            _unpaced(city)
            _observe(city)
            yield city
    finally:
        await runner.cleanup()


# -- residents -----------------------------------------------------------------------------------


# A move a resident makes: (kind, value, option number), kind "text", "option", "location", "photo".
Move = tuple[str, Any, int]
SKIP_PHOTO: Move = ("text", "skip", 0)


def choose(
    question: Ask | Review, rng: random.Random, form_id: str, *, photo: Move = SKIP_PHOTO
) -> Move:
    """A valid answer to ``question``; ``photo`` is the move made where a photo is asked for."""
    if isinstance(question, Review):
        return ("option", "send", 0)
    if question.step_id == "consent":
        return ("text", "yes", 0)
    ids = [o.id for o in question.options]
    if form_id in ids:
        return ("option", form_id, ids.index(form_id) + 1)
    if question.kind is InputKind.LOCATION:
        return ("location", PIN, 0)
    if question.kind is InputKind.PHOTO:
        return photo
    answer = sample_answer(question, rng, typos=False)
    if answer.option_id is not None:
        return ("option", answer.option_id, ids.index(answer.option_id) + 1)
    if answer.location is not None:
        return ("location", answer.location, 0)
    return ("text", answer.text or "", 0)


class ProviderResident:
    """A resident on a provider channel: says things through signed webhooks, reads the fake."""

    channel = ""

    def __init__(self, city: City, address: str) -> None:
        self.city = city
        self.address = address
        self.rng = random.Random(5)

    async def say(self, move: tuple[str, Any, int]) -> None:
        raise NotImplementedError

    def received(self) -> list[str]:
        """Every text the provider was asked to deliver to this resident, in order."""
        raise NotImplementedError

    def _my_results(self) -> list[TurnResult]:
        return [
            r
            for m, r in self.city.results
            if m.channel == self.channel and m.address == self.address
        ]

    def last_question(self) -> Ask | Review:
        for result in reversed(self._my_results()):
            if result.effects:
                last = result.effects[-1]
                assert isinstance(last, Ask | Review), result.effects
                return last
        raise AssertionError("the bot asked nothing")

    async def report(self, form_id: str, locale: str) -> str:
        """Choose a language, open the menu, answer until the report is stored; its reference."""
        await self.say(("text", f"language {locale}", 0))
        await self.say(("text", "menu", 0))
        for _ in range(40):
            done = [r.reference for r in self._my_results() if r.reference]
            if done:
                return done[-1]
            await self.say(choose(self.last_question(), self.rng, form_id))
        raise AssertionError(f"{form_id} did not finish on {self.channel}")

    def _post_twilio_form(self, path: str, form: dict[str, str]) -> tuple[dict[str, str], str]:
        url = self.city.settings.public_url + path
        signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
        return {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        }, urlencode(form)

    async def _drain_replies(self) -> None:
        assert await self.city.services.replies.sender.drain(10)


class TelegramResident(ProviderResident):
    channel = "telegram"

    def __init__(self, city: City, chat_id: int = 123456789) -> None:
        super().__init__(city, str(chat_id))

    async def _post(self, update: dict[str, Any]) -> None:
        update["update_id"] = 910000000 + next(_MESSAGE_IDS)
        async with self.city.http.post(
            self.city.url + "/webhooks/telegram",
            json=update,
            headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET},
        ) as response:
            assert response.status == 200, await response.text()
        await self._drain_replies()

    async def say(self, move: tuple[str, Any, int]) -> None:
        kind, value, _ = move
        if kind == "option":
            update = telegram_update("update_callback_query.json")
            update["callback_query"]["data"] = value
        elif kind == "location":
            update = telegram_update("update_message_location.json")
            update["message"]["location"] = {"latitude": value.lat, "longitude": value.lon}
        else:
            update = telegram_update("update_message_text.json")
            update["message"]["text"] = value
        body = update.get("message") or update["callback_query"]
        body["from"]["id"] = int(self.address)
        chat = body["chat"] if "chat" in body else body["message"]["chat"]
        chat["id"] = int(self.address)
        await self._post(update)

    def received(self) -> list[str]:
        assert self.city.telegram is not None
        return [
            c.form["text"]
            for c in self.city.telegram.calls("sendMessage")
            if c.form.get("chat_id") == self.address
        ]


class SmsResident(ProviderResident):
    channel = "sms"

    def __init__(self, city: City, phone: str = "+27831234567") -> None:
        super().__init__(city, phone)

    async def say(self, move: tuple[str, Any, int]) -> None:
        kind, value, number = move
        if kind == "option":
            body = str(number) if number else value
        elif kind == "location":
            body = "Site C Khayelitsha"
        else:
            body = value
        sid = f"SM{next(_MESSAGE_IDS):032d}"
        form = twilio_form(
            "inbound_sms.json",
            Body=body,
            From=self.address,
            MessageSid=sid,
            SmsSid=sid,
            SmsMessageSid=sid,
        )
        headers, data = self._post_twilio_form("/webhooks/twilio/sms", form)
        async with self.city.http.post(
            self.city.url + "/webhooks/twilio/sms", data=data, headers=headers
        ) as response:
            assert response.status == 200, await response.text()
        await self._drain_replies()

    def received(self) -> list[str]:
        assert self.city.twilio is not None
        return [m.form["Body"] for m in self.city.twilio.messages() if m.form["To"] == self.address]


class WhatsAppResident(ProviderResident):
    channel = "whatsapp"

    def __init__(self, city: City, phone: str = "+27821112222") -> None:
        super().__init__(city, phone)

    async def say(self, move: tuple[str, Any, int]) -> None:
        kind, value, number = move
        sid = f"SM{next(_MESSAGE_IDS):032d}"
        common = {"From": f"whatsapp:{self.address}", "MessageSid": sid, "SmsSid": sid}
        if kind == "location":
            form = twilio_form(
                "inbound_whatsapp_location.json",
                Latitude=str(value.lat),
                Longitude=str(value.lon),
                **common,
            )
        else:
            body = str(number) if kind == "option" and number else str(value)
            form = twilio_form("inbound_whatsapp_text.json", Body=body, **common)
        form["SmsMessageSid"] = sid
        headers, data = self._post_twilio_form("/webhooks/twilio/whatsapp", form)
        async with self.city.http.post(
            self.city.url + "/webhooks/twilio/whatsapp", data=data, headers=headers
        ) as response:
            assert response.status == 200, await response.text()
        await self._drain_replies()

    def sent(self) -> list[dict[str, str]]:
        """What Twilio was asked to send to this resident (text or template)."""
        assert self.city.twilio is not None
        to = f"whatsapp:{self.address}"
        return [m.form for m in self.city.twilio.messages() if m.form["To"] == to]

    def received(self) -> list[str]:
        return [m["Body"] for m in self.sent() if "Body" in m]


class WebChatResident:
    """A browser on the web chat: its own cookie jar; reads pushed messages as chat.js does."""

    channel = "webchat"

    def __init__(self, city: City | str) -> None:
        # A running city, or the URL of one (a ``citybot serve`` subprocess).
        self.url = city if isinstance(city, str) else city.url
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.rng = random.Random(3)
        self.ids = itertools.count(1)
        self.last: list[dict[str, Any]] = []
        self.last_pushed = 0
        self.pushed: list[dict[str, Any]] = []

    async def say(self, **answer: Any) -> dict[str, Any]:
        body = {"client_message_id": f"m-{next(self.ids)}", **answer}
        async with self.http.post(self.url + "/webchat/messages", json=body) as response:
            payload: dict[str, Any] = await response.json()
            assert response.status == 200, payload
        if payload["messages"]:
            self.last = payload["messages"]
        return payload

    async def report(self, form_id: str, locale: str) -> str:
        await self.say(text=f"language {locale}")
        await self.say(text="menu")
        await self.say(option_id=form_id)
        for _ in range(40):
            payload = await self.say(**answer_for(self.last, self.rng))
            if payload.get("reference"):
                return str(payload["reference"])
        raise AssertionError(f"no reference; last: {self.last}")

    async def poll(self) -> list[str]:
        """One poll of ``GET /webchat/messages?after=ID``, as chat.js does every few seconds."""
        async with self.http.get(
            self.url + "/webchat/messages", params={"after": str(self.last_pushed)}
        ) as response:
            assert response.status == 200
            payload = await response.json()
        self.pushed += payload["messages"]
        self.last_pushed = payload["last_id"]
        return [m["text"] for m in self.pushed]

    async def close(self) -> None:
        await self.http.close()
