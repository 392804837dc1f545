"""The provider webhooks end to end: real signed payloads in, the real turn loop on SQLite, the
real SDKs sending to local fake Telegram and Twilio servers that record what they were sent."""

from __future__ import annotations

import dataclasses
import itertools
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select, update

from bot.app import app_for
from bot.bootstrap import build_services
from bot.config import Settings
from bot.services import Services
from channels.screening import MAX_TEXT_CHARS, TOO_LONG, UNSUPPORTED, notice_text
from conversations.dedupe import SqlDedupe
from conversations.locks import InProcessLocks
from conversations.rate_limit import InProcessRateLimiter
from conversations.state_store import SqlStateStore
from conversations.turn import TurnLoop, TurnResult
from forms_runtime.effects import Ask, GeoPoint, Review
from forms_runtime.gazetteer import default_gazetteer
from forms_runtime.loader import standard_forms
from forms_runtime.sms import segments
from storage.models import MessageLog, Resident, ResidentAddress, Submission, SupportTicket
from tests.channels.signed import (
    PUBLIC_URL,
    TELEGRAM_SECRET,
    telegram_update,
    twilio_form,
    twilio_signature,
)
from tests.e2e.city import choose
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.storage.databases import sqlite_database

FORMS = standard_forms()

TOKEN = "7000000001:AAFakeTokenForTests"
CHAT_ID = 123456789
PHONE = "+27831234567"


class ObservedTurnLoop(TurnLoop):
    """The real turn loop, remembering its results so a scripted resident can answer them."""

    results: list[TurnResult]

    async def handle(self, message: Any, reply: Any = None, *, held: bool = False) -> TurnResult:
        result = await super().handle(message, reply, held=held)
        self.results.append(result)
        return result


@dataclass
class World:
    client: TestClient[Any, Any]
    telegram: FakeTelegram
    twilio: FakeTwilio
    loop: ObservedTurnLoop
    services: Services
    app: web.Application
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def settle(self) -> None:
        assert await self.services.replies.sender.drain(10)

    async def count(self, model: type, *where: Any) -> int:
        async with self.services.session_factory() as db:
            stmt = select(func.count()).select_from(model).where(*where)
            return int((await db.execute(stmt)).scalar_one())

    # -- Telegram --------------------------------------------------------------------------------

    def next_update_id(self) -> int:
        return 910000000 + next(self._ids)

    async def post_telegram(
        self, update: dict[str, Any], secret: str | None = TELEGRAM_SECRET
    ) -> int:
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        response = await self.client.post("/webhooks/telegram", json=update, headers=headers)
        await self.settle()
        return response.status

    async def tg_text(self, text: str, **from_changes: Any) -> int:
        update = telegram_update("update_message_text.json", update_id=self.next_update_id())
        update["message"]["text"] = text
        update["message"]["from"].update(from_changes)
        return await self.post_telegram(update)

    async def tg_location(self, point: GeoPoint) -> int:
        update = telegram_update("update_message_location.json", update_id=self.next_update_id())
        update["message"]["location"] = {"latitude": point.lat, "longitude": point.lon}
        return await self.post_telegram(update)

    async def tg_photo(self) -> int:
        return await self.post_telegram(
            telegram_update("update_message_photo.json", update_id=self.next_update_id())
        )

    async def tg_tap(self, data: str) -> int:
        update = telegram_update("update_callback_query.json", update_id=self.next_update_id())
        update["callback_query"]["data"] = data
        return await self.post_telegram(update)

    def tg_sent(self) -> list[dict[str, str]]:
        return [c.form for c in self.telegram.calls("sendMessage")]

    # -- Twilio ----------------------------------------------------------------------------------

    async def post_twilio(
        self, path: str, form: dict[str, str], *, signature: str | None = None
    ) -> ClientResponse:
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature or twilio_signature(path, form),
        }
        response = await self.client.post(path, data=urlencode(form), headers=headers)
        await self.settle()
        return response

    async def sms(self, body: str = "", **fields: str) -> int:
        sid = f"SM{next(self._ids):032d}"
        form = twilio_form(
            "inbound_sms.json", Body=body, MessageSid=sid, SmsSid=sid, SmsMessageSid=sid
        )
        form.update(fields)
        return (await self.post_twilio("/webhooks/twilio/sms", form)).status

    async def whatsapp(self, fixture: str = "inbound_whatsapp_text.json", **fields: str) -> int:
        sid = f"SM{next(self._ids):032d}"
        form = twilio_form(fixture, MessageSid=sid, SmsSid=sid, SmsMessageSid=sid)
        form.update(fields)
        return (await self.post_twilio("/webhooks/twilio/whatsapp", form)).status

    def twilio_sent(self, channel: str = "sms") -> list[dict[str, str]]:
        prefix = "whatsapp:" if channel == "whatsapp" else "+"
        return [m.form for m in self.twilio.messages() if m.form["To"].startswith(prefix)]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with FakeTelegram() as telegram, FakeTwilio() as twilio, sqlite_database(tmp_path) as url:
        settings = Settings.from_env(
            {
                "CITYBOT_DATABASE_URL": url,
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
        built = await build_services(settings)
        sessions = built.session_factory
        # The app's turn loop on the same database, observed so a scripted resident can answer.
        loop = ObservedTurnLoop(
            sessionmaker=sessions,
            states=SqlStateStore(sessions),
            dedupe=SqlDedupe(sessions),
            locks=InProcessLocks(),
            rate_limiter=InProcessRateLimiter(rate=100.0, burst=100),
            forms=standard_forms(),
            gazetteer=default_gazetteer(),
            data_export=built.data_export,
        )
        loop.results = []
        services = dataclasses.replace(built, turn_loop=loop)
        app = app_for(services, workers=False)
        # Fast back-off and no per-chat pacing wait: the behaviour is the same, the test quicker.
        services.replies.sender.backoff = (0.05,)
        for channel in services.channels.values():
            if hasattr(channel, "pacer"):
                channel.pacer = type(channel.pacer)(10_000, 10_000)  # type: ignore[attr-defined]
        try:
            async with TestClient(TestServer(app)) as client:
                yield World(client, telegram, twilio, loop, services, app)
        finally:
            await built.turn_loop.close()


def last_question(world: World) -> Ask | Review:
    for result in reversed(world.loop.results):
        if result.effects:
            last = result.effects[-1]
            assert isinstance(last, Ask | Review), result.effects
            return last
    raise AssertionError("the bot asked nothing")


async def complete(world: World, channel: str, form_id: str) -> None:
    rng = random.Random(7)
    send = {"telegram": telegram_turn, "sms": sms_turn, "whatsapp": whatsapp_turn}[channel]
    assert await send(world, ("text", "menu", 0)) == 200
    for _ in range(40):
        if any(r.reference for r in world.loop.results):
            return
        if await _handed_back(world):  # an answer called a person (a live wire down)
            assert await send(world, ("text", "thanks", 0)) == 200  # the question again
        move = choose(last_question(world), rng, form_id, photo=("photo", None, 0))
        assert await send(world, move) == 200
    raise AssertionError(f"{form_id} did not finish on {channel}")


async def _handed_back(world: World) -> bool:
    """Close the ticket a form's handoff opened, as an agent handing back would."""
    async with world.services.session_factory() as db, db.begin():
        closed = await db.execute(
            update(SupportTicket)
            .where(SupportTicket.state.in_(("waiting", "held")))
            .values(state="closed", outcome="handed_back")
        )
    return bool(getattr(closed, "rowcount", 0))


async def telegram_turn(world: World, move: Any) -> int:
    kind, value, _ = move
    if kind == "option":
        # The button the resident taps must be on the keyboard the bot sent.
        markup = json.loads(world.tg_sent()[-1].get("reply_markup", "{}"))
        data = [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row]
        assert value in data, (value, data)
        return await world.tg_tap(value)
    if kind == "location":
        return await world.tg_location(value)
    if kind == "photo":
        return await world.tg_photo()
    return await world.tg_text(value)


async def sms_turn(world: World, move: Any) -> int:
    kind, value, number = move
    if kind == "option" and number:
        # SMS residents reply with the number the bot printed.
        # (A long reply arrives as several SMS: look at the last few.)
        assert any(f"Reply {number} for" in m["Body"] for m in world.twilio_sent()[-4:])
        return await world.sms(str(number))
    if kind == "option":
        return await world.sms(value)
    if kind == "location":
        return await world.sms("Site C Khayelitsha")
    if kind == "photo":
        return await world.sms(
            "",
            NumMedia="1",
            MediaUrl0="https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM1/Media/ME1",
            MediaContentType0="image/jpeg",
        )
    return await world.sms(value)


async def whatsapp_turn(world: World, move: Any) -> int:
    kind, value, number = move
    if kind == "option" and number:
        return await world.whatsapp(Body=str(number))
    if kind == "option":
        return await world.whatsapp(Body=value)
    if kind == "location":
        return await world.whatsapp(
            "inbound_whatsapp_location.json", Latitude=str(value.lat), Longitude=str(value.lon)
        )
    if kind == "photo":
        return await world.whatsapp("inbound_whatsapp_media.json")
    return await world.whatsapp(Body=value)


# -- every standard form, end to end, on every channel ----------------------------------------


@pytest.mark.parametrize("channel", ["telegram", "sms", "whatsapp"])
@pytest.mark.parametrize("form_id", sorted(FORMS))
async def test_every_standard_form_end_to_end(world: World, channel: str, form_id: str) -> None:
    await complete(world, channel, form_id)
    async with world.services.session_factory() as db:
        [submission] = (await db.execute(select(Submission))).scalars().all()
    assert (submission.form_id, submission.channel) == (form_id, channel)
    said = (
        [m["text"] for m in world.tg_sent()]
        if channel == "telegram"
        else [m["Body"] for m in world.twilio_sent(channel)]
    )
    if FORMS[form_id].aggregate_steps:
        # The reference first, then the optional questions that follow the report.
        assert any(submission.reference in text for text in said[-3:])
        assert any("Optional" in text for text in said[-2:])
    else:
        assert submission.reference in said[-1]
    if channel == "sms":
        assert all(segments(m["Body"]) <= 3 for m in world.twilio_sent())


async def test_a_telegram_location_and_photo_are_stored_as_answered(world: World) -> None:
    await complete(world, "telegram", "pothole")
    async with world.services.session_factory() as db:
        submission = (await db.execute(select(Submission))).scalars().one()
    assert submission.lat == pytest.approx(-34.0363)
    assert "tg-file://AgACAgQAAxkBAAIFAKEPHOTOFILEID_y" in json.dumps(submission.answers)


async def test_a_location_step_on_telegram_asks_with_a_send_my_location_button(
    world: World,
) -> None:
    await world.tg_text("menu")
    await world.tg_tap("pothole")
    await world.tg_tap("yes")  # the consent question comes first on forms with personal steps
    markup = json.loads(world.tg_sent()[-1]["reply_markup"])
    assert markup["keyboard"][0][0]["request_location"] is True


# -- opt-out in the middle of a form, then back in ----------------------------------------------


@pytest.mark.parametrize("channel", ["telegram", "sms"])
async def test_opt_out_mid_form_then_opt_in(world: World, channel: str) -> None:
    say = world.tg_text if channel == "telegram" else world.sms
    sent = world.tg_sent if channel == "telegram" else world.twilio_sent
    await say("menu")
    await (world.tg_tap("pothole") if channel == "telegram" else say("pothole"))
    await say("STOP")
    after_stop = len(sent())
    await say("hello?")
    await say("Main Road, Khayelitsha")
    assert len(sent()) == after_stop  # nothing at all to an opted-out resident
    await say("START")
    assert len(sent()) > after_stop
    async with world.services.session_factory() as db:
        resident = (await db.execute(select(Resident))).scalars().one()
    assert resident.opted_out_at is None


# -- duplicates, forgeries, malformed bodies ---------------------------------------------------


async def test_a_redelivered_telegram_update_is_processed_once(world: World) -> None:
    update = telegram_update("update_message_text.json")
    assert await world.post_telegram(update) == 200
    assert await world.post_telegram(update) == 200
    assert len(world.tg_sent()) == 1
    assert await world.count(MessageLog, MessageLog.direction == "in") == 1


async def test_a_redelivered_sms_is_processed_once(world: World) -> None:
    form = twilio_form("inbound_sms.json")
    first = await world.post_twilio("/webhooks/twilio/sms", form)
    second = await world.post_twilio("/webhooks/twilio/sms", form)
    assert (first.status, second.status) == (200, 200)
    assert "<Response></Response>" in await second.text()
    assert second.content_type == "text/xml"
    assert await world.count(MessageLog, MessageLog.direction == "in") == 1
    assert len(world.twilio_sent()) >= 1
    sent_after_first = len(world.twilio_sent())
    await world.post_twilio("/webhooks/twilio/sms", form)
    assert len(world.twilio_sent()) == sent_after_first


@pytest.mark.parametrize("secret", [None, "wrong"])
async def test_a_wrong_telegram_secret_is_403_and_nothing_is_stored(
    world: World, secret: str | None
) -> None:
    assert (
        await world.post_telegram(telegram_update("update_message_text.json"), secret=secret) == 403
    )
    assert await world.count(MessageLog) == 0
    assert await world.count(Resident) == 0
    assert world.tg_sent() == []


@pytest.mark.parametrize(
    "path", ["/webhooks/twilio/sms", "/webhooks/twilio/whatsapp", "/webhooks/twilio/status"]
)
async def test_a_forged_twilio_signature_is_403_and_nothing_is_stored(
    world: World, path: str
) -> None:
    form = twilio_form("inbound_sms.json")
    response = await world.post_twilio(path, form, signature="bm90IGEgc2lnbmF0dXJl")
    assert response.status == 403
    unsigned = await world.client.post(path, data=form)
    assert unsigned.status == 403
    assert await world.count(MessageLog) == 0
    assert await world.count(Resident) == 0


async def test_a_malformed_telegram_body_is_400(world: World) -> None:
    response = await world.client.post(
        "/webhooks/telegram",
        data=b"{not json",
        headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET},
    )
    assert response.status == 400
    assert "JSON" in (await response.json())["error"]


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("date", 1e18, "date out of range"),
        ("text", False, "message.text must be a string"),
        ("text", {}, "message.text must be a string"),
        ("chat", {"id": "123456789", "type": "private"}, "message.chat.id must be an integer"),
        ("from", {"id": 1.5, "is_bot": False, "first_name": "T"}, "message.from.id must be"),
    ],
)
async def test_a_telegram_update_with_a_field_of_the_wrong_type_is_400_with_its_reason(
    world: World, field: str, value: Any, reason: str
) -> None:
    update = telegram_update("update_message_text.json", update_id=world.next_update_id())
    update["message"][field] = value
    response = await world.client.post(
        "/webhooks/telegram",
        json=update,
        headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET},
    )
    assert response.status == 400
    assert reason in (await response.json())["error"]
    assert await world.count(MessageLog) == 0


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"From": "+27" + "8" * 253}, "From is longer than 255 characters"),
        (
            {"MessageSid": "SM" + "1" * 127, "SmsSid": "SM" + "1" * 127},
            "MessageSid is longer than 128 characters",
        ),
    ],
)
@pytest.mark.parametrize("path", ["/webhooks/twilio/sms", "/webhooks/twilio/whatsapp"])
async def test_a_signed_twilio_post_with_a_field_too_long_to_keep_is_400(
    world: World, path: str, fields: dict[str, str], reason: str
) -> None:
    fixture = "inbound_sms.json" if path.endswith("sms") else "inbound_whatsapp_text.json"
    response = await world.post_twilio(path, twilio_form(fixture, **fields))
    assert response.status == 400
    assert reason in (await response.json())["error"]
    assert await world.count(MessageLog) == 0


async def test_a_signed_sms_missing_its_sender_is_400(world: World) -> None:
    form = twilio_form("inbound_sms.json", From="")
    assert (await world.post_twilio("/webhooks/twilio/sms", form)).status == 400
    assert await world.count(MessageLog) == 0


# -- odd messages ------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["update_message_sticker.json", "update_message_voice.json"])
async def test_stickers_and_voice_notes_get_a_polite_answer(world: World, fixture: str) -> None:
    await world.post_telegram(telegram_update(fixture))
    [reply] = world.tg_sent()
    assert reply["text"].startswith(notice_text(UNSUPPORTED, "en"))


async def test_a_voice_note_on_whatsapp_gets_the_polite_answer_in_isizulu(world: World) -> None:
    await world.tg_text("menu", language_code="zu")  # unrelated resident; zu exists
    await world.whatsapp(Body="sawubona")
    await world.whatsapp(
        "inbound_whatsapp_media.json", MessageType="audio", MediaContentType0="audio/ogg", Body=""
    )
    locale = world.loop.results[-1].locale
    assert world.twilio_sent("whatsapp")[-1]["Body"].startswith(notice_text(UNSUPPORTED, locale))


async def test_a_photo_of_the_wrong_type_gets_a_clear_answer(world: World) -> None:
    await world.whatsapp(
        "inbound_whatsapp_media.json", MediaContentType0="image/gif", MessageType="image"
    )
    body = world.twilio_sent("whatsapp")[-1]["Body"]
    assert body.startswith("Send the photo as a JPEG, PNG or WebP picture.")


async def test_a_20000_character_sms_is_cut_with_a_notice(world: World) -> None:
    assert await world.sms("pothole " * 2500) == 200
    first = world.twilio_sent()[0]["Body"]
    assert first.startswith(notice_text(TOO_LONG, "en"))
    async with world.services.session_factory() as db:
        logged = (
            await db.execute(select(MessageLog.text).where(MessageLog.direction == "in"))
        ).scalar_one()
    assert logged is not None
    assert len(logged) == MAX_TEXT_CHARS


# -- providers that push back ------------------------------------------------------------------


async def test_telegram_429_then_200_delivers_after_the_wait(world: World) -> None:
    world.telegram.fail_next(
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 1",
            "parameters": {"retry_after": 1},
        },
    )
    await world.tg_text("hello")
    assert [r.status for r in world.telegram.requests if r.path.endswith("sendMessage")] == [
        429,
        200,
    ]


async def test_twilio_429_then_201_delivers_after_the_wait(world: World) -> None:
    world.twilio.rate_limit_next(retry_after=0.2)
    await world.sms("hello")
    assert [r.status for r in world.twilio.requests][:2] == [429, 201]


async def test_a_provider_that_is_down_gets_the_reply_once_it_is_back(world: World) -> None:
    world.twilio.fail_next(
        503, {"code": 20503, "message": "Service Unavailable", "status": 503}, times=3
    )
    await world.sms("hello")
    statuses = [r.status for r in world.twilio.requests]
    assert statuses[:3] == [503, 503, 503]
    assert 201 in statuses


async def test_a_blocked_bot_marks_the_chat_unreachable(world: World) -> None:
    world.telegram.fail_with_fixture("response_error_403_blocked.json")
    await world.tg_text("hello")
    async with world.services.session_factory() as db:
        address = (await db.execute(select(ResidentAddress))).scalars().one()
    assert address.unreachable_at is not None


async def test_twilio_21610_marks_the_resident_opted_out(world: World) -> None:
    world.twilio.fail_with_fixture("rest_error_21610.json")
    await world.sms("hello")
    async with world.services.session_factory() as db:
        resident = (await db.execute(select(Resident))).scalars().one()
    assert resident.opted_out_at is not None


# -- delivery receipts -------------------------------------------------------------------------


async def test_receipts_update_the_message_log_and_never_go_backwards(world: World) -> None:
    await world.sms("hello")
    sid = _sent_sid(world)
    for status in ("delivered", "sent"):
        form = twilio_form(
            "status_delivered.json",
            MessageSid=sid,
            SmsSid=sid,
            MessageStatus=status,
            SmsStatus=status,
        )
        assert (await world.post_twilio("/webhooks/twilio/status", form)).status == 204
    async with world.services.session_factory() as db:
        row = (
            (await db.execute(select(MessageLog).where(MessageLog.provider_message_id == sid)))
            .scalars()
            .one()
        )
    assert row.status == "delivered"


async def test_a_21610_receipt_opts_the_resident_out(world: World) -> None:
    await world.sms("hello")
    sid = _sent_sid(world)
    form = twilio_form("status_failed_21610.json", MessageSid=sid, SmsSid=sid)
    assert (await world.post_twilio("/webhooks/twilio/status", form)).status == 204
    async with world.services.session_factory() as db:
        resident = (await db.execute(select(Resident))).scalars().one()
    assert resident.opted_out_at is not None


async def test_a_whatsapp_read_receipt_is_recorded(world: World) -> None:
    await world.whatsapp(Body="hello")
    sid = _sent_sid(world)
    form = twilio_form("status_whatsapp_read.json", MessageSid=sid, SmsSid=sid)
    assert (await world.post_twilio("/webhooks/twilio/status", form)).status == 204
    async with world.services.session_factory() as db:
        status = (
            await db.execute(select(MessageLog.status).where(MessageLog.provider_message_id == sid))
        ).scalar_one()
    assert status == "read"


def _sent_sid(world: World) -> str:
    sids = [r for r in world.twilio.requests if r.status == 201]
    assert sids
    # The fake numbers its SIDs in order, starting after 4000.
    return f"SM{4000 + len(sids):032d}"


async def test_a_tapped_button_is_acknowledged_and_a_typed_message_is_not(world: World) -> None:
    await world.tg_text("hello")
    assert world.telegram.calls("answerCallbackQuery") == []
    await world.tg_tap("pothole")
    [call] = world.telegram.calls("answerCallbackQuery")
    assert call.form["callback_query_id"]


async def test_replies_sent_side_by_side_are_all_logged_with_their_provider_ids(
    world: World,
) -> None:
    phones = [f"+2783555{i:04d}" for i in range(12)]
    for i, phone in enumerate(phones):
        sid = f"SM{9000 + i:032d}"
        form = twilio_form("inbound_sms.json", Body="hello", From=phone, MessageSid=sid, SmsSid=sid)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": twilio_signature("/webhooks/twilio/sms", form),
        }
        # Not settled in between: the replies are in flight together and share commits.
        response = await world.client.post(
            "/webhooks/twilio/sms", data=urlencode(form), headers=headers
        )
        assert response.status == 200
    await world.settle()
    sent = world.twilio.messages()
    assert len(sent) >= len(phones)
    async with world.services.session_factory() as db:
        logged = (
            await db.execute(
                # The turn loop logs what was said; the sender logs each provider message.
                select(MessageLog.address, MessageLog.provider_message_id).where(
                    MessageLog.direction == "out", MessageLog.provider_message_id.is_not(None)
                )
            )
        ).all()
    assert len(logged) == len(sent)
    assert {address for address, _ in logged} == set(phones)
    # One row per provider message, each with its own SID (for the receipts to find).
    assert len({sid for _, sid in logged}) == len(sent)
    assert all(sid.startswith("SM") for _, sid in logged)


async def test_messages_out_counts_replies_on_every_channel(world: World) -> None:
    """citybot_messages_out counted only the web chat's replies before."""
    await world.tg_text("pothole")
    await world.sms("pothole")
    await world.whatsapp()
    metrics = await (await world.client.get("/metrics")).text()
    counted = {
        channel: _sample(metrics, f'citybot_messages_out_total{{channel="{channel}"}}')
        for channel in ("telegram", "sms", "whatsapp")
    }
    assert counted["telegram"] == len(world.tg_sent())
    assert counted["sms"] + counted["whatsapp"] == len(world.twilio.messages())
    assert all(count >= 1 for count in counted.values()), counted


def _sample(metrics: str, name: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0
