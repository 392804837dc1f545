import json

import pytest

from channels.base import BadRequest, ForbiddenRequest
from channels.retrying import PROVIDER_DOWN, send_with_retries
from channels.telegram import (
    TEXT_PREFIX,
    TelegramChannel,
    _de_json,
    _markup,
    _message,
    _plain_text,
)
from channels.types import DeliveryStatus, InboundKind, OutboundMessage
from forms_runtime.effects import Ask, InputKind, OptionView, Reject, Review, ReviewItem
from tests.channels.signed import TELEGRAM_SECRET, telegram_request, telegram_update
from tests.fakes.telegram_api import FakeTelegram

TOKEN = "7000000001:AAFakeTokenForTests"


@pytest.fixture
async def fake():
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def channel(fake):
    ch = TelegramChannel(TOKEN, TELEGRAM_SECRET, api_base_url=fake.url)
    yield ch
    await ch.close()


def offline_channel() -> TelegramChannel:
    return TelegramChannel(TOKEN, TELEGRAM_SECRET, api_base_url="http://127.0.0.1:9")


# -- verify ---------------------------------------------------------------------------------------


def test_the_right_secret_passes():
    offline_channel().verify(telegram_request(telegram_update("update_message_text.json")))


@pytest.mark.parametrize("secret", [None, "", "wrong", TELEGRAM_SECRET + "x", "ü"])
def test_a_wrong_or_missing_secret_is_forbidden(secret):
    request = telegram_request(telegram_update("update_message_text.json"), secret=secret)
    with pytest.raises(ForbiddenRequest):
        offline_channel().verify(request)


def test_without_a_configured_secret_every_update_is_refused():
    channel = TelegramChannel(TOKEN, None, api_base_url="http://127.0.0.1:9")
    with pytest.raises(ForbiddenRequest):
        channel.verify(telegram_request(telegram_update("update_message_text.json")))


# -- parse ----------------------------------------------------------------------------------------


def parse(name: str, **changes):
    return offline_channel().parse(telegram_request(telegram_update(name, **changes)))


def test_text():
    [m] = parse("update_message_text.json")
    assert (m.channel, m.address, m.message_id) == ("telegram", "123456789", "tg:900000001")
    assert m.kind is InboundKind.TEXT
    assert m.text.startswith("Hi, there is a big pothole")
    assert m.language_hint == "en"
    assert m.display_name == "Thandi"
    assert m.received_at is not None


def test_start_command_opens_the_menu():
    [m] = parse("update_message_command_start.json")
    assert m.text == "menu"


def test_location():
    [m] = parse("update_message_location.json")
    assert m.kind is InboundKind.LOCATION
    assert (m.location.lat, m.location.lon) == (-34.0363, 18.6776)


def test_photo_keeps_a_reference_to_the_largest_size():
    [m] = parse("update_message_photo.json")
    assert m.kind is InboundKind.MEDIA
    [ref] = m.media
    assert ref.url == "tg-file://AgACAgQAAxkBAAIFAKEPHOTOFILEID_y"
    assert (ref.content_type, ref.size) == ("image/jpeg", 151206)
    assert m.text == "This is the pothole"


def test_own_contact_gives_the_phone_number():
    [m] = parse("update_message_contact.json")
    assert m.kind is InboundKind.CONTACT
    assert m.contact_phone == "+27831234567"


def test_someone_elses_contact_is_not_taken_as_the_residents_number():
    update = telegram_update("update_message_contact.json")
    update["message"]["contact"]["user_id"] = 555
    [m] = offline_channel().parse(telegram_request(update))
    assert m.kind is InboundKind.UNSUPPORTED
    assert m.contact_phone is None


def test_callback_query_gives_the_option_id():
    [m] = parse("update_callback_query.json")
    assert m.kind is InboundKind.BUTTON
    assert m.option_id == "cat:pothole"
    assert m.address == "123456789"
    assert m.message_id == "tg:900000005"


def test_callback_with_text_prefix_is_typed_text():
    update = telegram_update("update_callback_query.json")
    update["callback_query"]["data"] = TEXT_PREFIX + "Yebo"
    [m] = offline_channel().parse(telegram_request(update))
    assert (m.kind, m.text, m.option_id) == (InboundKind.TEXT, "Yebo", None)


def test_edited_messages_are_acknowledged_but_not_processed():
    assert parse("update_edited_message.json") == []


@pytest.mark.parametrize("name", ["update_message_sticker.json", "update_message_voice.json"])
def test_stickers_and_voice_notes_are_unsupported(name):
    [m] = parse(name)
    assert m.kind is InboundKind.UNSUPPORTED
    assert m.text is None


def test_a_gif_sent_as_a_file_keeps_its_type_for_the_polite_answer():
    update = telegram_update("update_message_text.json")
    message = update["message"]
    del message["text"]
    message["document"] = {
        "file_id": "BQACAgQAAxkBAAFAKEGIF",
        "file_unique_id": "AgADgif",
        "mime_type": "image/gif",
        "file_size": 12000,
    }
    [m] = offline_channel().parse(telegram_request(update))
    assert m.kind is InboundKind.MEDIA
    assert m.media[0].content_type == "image/gif"


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"[]", b'{"message": {}}', b'{"update_id": "x"}', b"\xff\xfe"],
)
def test_malformed_bodies_are_bad_requests(body):
    with pytest.raises(BadRequest):
        offline_channel().parse(telegram_request(body))


def test_a_message_missing_its_chat_is_a_bad_request():
    update = telegram_update("update_message_text.json")
    del update["message"]["chat"]
    with pytest.raises(BadRequest):
        offline_channel().parse(telegram_request(update))


def _changed(fixture: str, path: str, value: object) -> dict:
    """The fixture with the field at ``path`` (dotted) set to ``value``."""
    update = telegram_update(fixture)
    *parents, last = path.split(".")
    node = update
    for name in parents:
        node = node[name]
    node[last] = value
    return update


# Fields the SDK's de_json takes whatever their type: each must be refused with a 400 that names
# it (before, these were 500s, or messages with text=False that the message log could not store).
@pytest.mark.parametrize(
    ("fixture", "path", "value", "reason"),
    [
        ("update_message_text.json", "message.date", 1e18, "date out of range"),
        ("update_message_text.json", "message.date", 10**18, "date out of range"),
        ("update_message_text.json", "message.date", -(10**18), "date out of range"),
        ("update_message_text.json", "message.text", False, "message.text"),
        ("update_message_text.json", "message.text", {}, "message.text"),
        ("update_message_text.json", "message.text", 7, "message.text"),
        ("update_message_text.json", "message.chat.id", "123456789", "message.chat.id"),
        ("update_message_text.json", "message.chat.id", 1.5, "message.chat.id"),
        ("update_message_text.json", "message.chat.id", True, "message.chat.id"),
        ("update_message_text.json", "message.chat.id", 2**63, "message.chat.id"),
        ("update_message_text.json", "message.from.id", "42", "message.from.id"),
        ("update_message_text.json", "message.from.id", 4.2, "message.from.id"),
        ("update_message_text.json", "message.from.first_name", 5, "first_name"),
        ("update_message_text.json", "message.from.language_code", [], "language_code"),
        ("update_message_text.json", "update_id", True, "update_id"),
        ("update_message_text.json", "update_id", 2**64, "update_id"),
        ("update_message_command_start.json", "message.text", {}, "message.text"),
        ("update_message_photo.json", "message.caption", {}, "message.caption"),
        (
            "update_message_photo.json",
            "message.photo",
            [{"file_id": "A", "file_unique_id": "B", "width": "9", "height": 9}],
            "message.photo.width",
        ),
        ("update_message_location.json", "message.location.latitude", "x", "latitude"),
        ("update_message_location.json", "message.location.longitude", 1e308, "longitude"),
        ("update_callback_query.json", "callback_query.data", {}, "callback_query.data"),
        ("update_callback_query.json", "callback_query.from.id", "x", "callback_query.from.id"),
        ("update_callback_query.json", "callback_query.message.chat.id", 0.5, "chat.id"),
    ],
)
def test_a_field_of_the_wrong_type_is_a_bad_request_that_names_it(fixture, path, value, reason):
    with pytest.raises(BadRequest, match=reason.replace(".", r"\.")):
        offline_channel().parse(telegram_request(_changed(fixture, path, value)))


# -- render ---------------------------------------------------------------------------------------

SIZE = Ask(
    step_id="size",
    prompt="How big is the pothole?",
    kind=InputKind.CHOICE,
    options=(OptionView("small", "Smaller than a plate"), OptionView("large", "Bigger")),
)


def test_options_become_inline_buttons_and_a_reject_comes_first():
    [m] = offline_channel().render([Reject("Choose one of the sizes"), SIZE], "en", "42")
    assert m.text == "Choose one of the sizes\n\nHow big is the pothole?"
    assert [(b.id, b.label, b.kind) for b in m.buttons] == [
        ("small", "Smaller than a plate", "reply"),
        ("large", "Bigger", "reply"),
    ]


def test_a_location_step_offers_send_my_location():
    ask = Ask(step_id="where", prompt="Where is it?", kind=InputKind.LOCATION)
    [m] = offline_channel().render([ask], "en", "42")
    [button] = m.buttons
    assert (button.kind, button.label) == ("location", "Send my location")


def test_review_has_numbered_change_buttons_and_send():
    review = Review(
        title="Check your answers",
        items=(ReviewItem(1, "size", "Size", "Small"), ReviewItem(2, "danger", "Danger", "No")),
        prompt="Reply SEND to send your report, or CHANGE and a number to change an answer.",
        options=(
            OptionView("send", "Send"),
            OptionView("change:1", "Change 1"),
            OptionView("change:2", "Change 2"),
        ),
    )
    [m] = offline_channel().render([review], "en", "42")
    assert "1. Size: Small" in m.text
    assert [b.id for b in m.buttons] == ["send", "change:1", "change:2"]


def test_an_option_id_too_long_for_callback_data_falls_back_to_its_number():
    ask = Ask(step_id="x", prompt="?", kind=InputKind.CHOICE, options=(OptionView("a" * 80, "A"),))
    [m] = offline_channel().render([ask], "en", "42")
    assert m.buttons[0].id == TEXT_PREFIX + "1"


def test_long_texts_are_split_under_4096_with_buttons_on_the_last_part():
    long_prompt = ("This sentence is part of a long notice. " * 250).strip()
    ask = Ask(step_id="s", prompt=long_prompt, kind=InputKind.CHOICE, options=SIZE.options)
    parts = offline_channel().render([ask], "en", "42")
    assert len(parts) == 3
    assert all(len(p.text) <= 4096 for p in parts)
    assert [bool(p.buttons) for p in parts] == [False, False, True]
    assert " ".join(p.text for p in parts) == long_prompt


# -- send (against the fake Bot API) --------------------------------------------------------------


async def test_send_builds_an_inline_keyboard(channel, fake):
    [m] = channel.render([SIZE], "en", "123456789")
    delivery = await channel.send(m)
    assert delivery.status is DeliveryStatus.SENT
    assert delivery.provider_message_id == "1001"
    [call] = fake.calls("sendMessage")
    assert call.path == f"/bot{TOKEN}/sendMessage"
    assert call.form["chat_id"] == "123456789"
    markup = json.loads(call.form["reply_markup"])
    assert markup["inline_keyboard"][0][0] == {
        "text": "Smaller than a plate",
        "callback_data": "small",
    }


_REVIEW = Review(
    title="Check your answers",
    items=(ReviewItem(1, "size", "Size", "Small"),),
    prompt="Reply SEND to send your report, or CHANGE and a number to change an answer.",
    options=(OptionView("send", "Send"), OptionView("change:1", "Change 1")),
)


@pytest.mark.parametrize(
    ("effects", "locale"),
    [
        ([Reject("Choose one")], "en"),
        ([SIZE], "en"),
        ([SIZE], "zu"),
        ([_REVIEW], "af"),
        ([Ask(step_id="where", prompt="Where is it?", kind=InputKind.LOCATION)], "en"),
        ([Ask(step_id="phone", prompt="Your number?", kind=InputKind.PHONE)], "xh"),
        ([Ask(step_id="danger", prompt="Is it dangerous? & <b>", kind=InputKind.YES_NO)], "zu"),
        (
            [
                Ask(
                    step_id="kind",
                    prompt="Which one? 🚧\nPick one.",
                    kind=InputKind.CHOICE,
                    options=(
                        OptionView("a" * 80, "An id too long for callback data"),
                        OptionView("b", "Größer 🚧"),
                        OptionView("c", "C"),
                        OptionView(
                            "d", "A label longer than sixty-four characters, which is cut, " * 2
                        ),
                    ),
                )
            ],
            "en",
        ),
        (
            [Ask(step_id="s", prompt="Long. " * 1000, kind=InputKind.CHOICE, options=SIZE.options)],
            "en",
        ),
    ],
)
async def test_every_message_arrives_as_rendered_with_its_keyboard(fake, effects, locale):
    channel = TelegramChannel(TOKEN, TELEGRAM_SECRET, api_base_url=fake.url)
    messages = channel.render(effects, locale, "123456789")
    try:
        for message in messages * 2:  # the second time, the keyboard comes from the cache
            delivery = await channel.send(message)
            assert delivery.status is DeliveryStatus.SENT
    finally:
        await channel.close()
    calls = fake.calls("sendMessage")
    assert len(calls) == 2 * len(messages)
    for call, message in zip(calls, messages * 2, strict=True):
        assert call.form["chat_id"] == "123456789"
        assert call.form["text"] == message.text
        markup = _markup(message.buttons)
        if markup is None:
            assert "reply_markup" not in call.form
        else:
            assert json.loads(call.form["reply_markup"]) == markup.to_dict()


async def test_send_reports_the_message_id_telegram_gave(channel, fake):
    first = await channel.send(OutboundMessage("telegram", "123456789", "Hello"))
    second = await channel.send(OutboundMessage("telegram", "123456789", "Again"))
    assert (first.provider_message_id, second.provider_message_id) == ("1001", "1002")


async def test_send_asks_for_location_with_a_reply_keyboard(channel, fake):
    ask = Ask(step_id="where", prompt="Where is it?", kind=InputKind.LOCATION)
    [m] = channel.render([ask], "en", "123456789")
    await channel.send(m)
    markup = json.loads(fake.calls("sendMessage")[0].form["reply_markup"])
    assert markup["keyboard"][0][0]["request_location"] is True
    assert markup["one_time_keyboard"] is True


async def test_429_is_rate_limited_with_retry_after(channel, fake):
    fake.fail_with_fixture("response_error_429.json")
    delivery = await channel.send(OutboundMessage("telegram", "123456789", "Hello"))
    assert delivery.status is DeliveryStatus.RATE_LIMITED
    assert delivery.retry_after == 5


async def test_429_then_200_is_delivered_after_waiting(channel, fake):
    fake.fail_next(
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 1",
            "parameters": {"retry_after": 1},
        },
    )
    waits = []

    async def sleep(seconds):
        waits.append(seconds)

    delivery = await send_with_retries(
        channel, OutboundMessage("telegram", "123456789", "Hi"), sleep=sleep
    )
    assert delivery.status is DeliveryStatus.SENT
    assert waits == [1.0]
    assert [r.status for r in fake.requests] == [429, 200]


async def test_a_blocked_bot_marks_the_resident_unreachable(channel, fake):
    fake.fail_with_fixture("response_error_403_blocked.json")
    delivery = await send_with_retries(channel, OutboundMessage("telegram", "123456789", "Hello"))
    assert delivery.status is DeliveryStatus.UNREACHABLE
    assert len(fake.requests) == 1  # never retried


async def test_a_provider_answering_500_is_retried_until_it_recovers(channel, fake):
    fake.fail_next(
        500, {"ok": False, "error_code": 500, "description": "Internal Server Error"}, times=2
    )
    delivery = await send_with_retries(
        channel, OutboundMessage("telegram", "123456789", "Hello"), backoff=(0.0,)
    )
    assert delivery.status is DeliveryStatus.SENT
    assert [r.status for r in fake.requests] == [500, 500, 200]


async def test_a_provider_that_is_down_is_reported_as_provider_down():
    channel = offline_channel()
    try:
        delivery = await channel.send(OutboundMessage("telegram", "123456789", "Hello"))
    finally:
        await channel.close()
    assert delivery.status is DeliveryStatus.FAILED
    assert delivery.error_code == PROVIDER_DOWN


async def test_a_callback_tap_is_answered(channel, fake):
    await channel.acknowledge(telegram_request(telegram_update("update_callback_query.json")))
    [call] = fake.calls("answerCallbackQuery")
    assert call.form["callback_query_id"] == "530000000000000001"


async def test_set_webhook_registers_the_url_with_the_secret(channel, fake):
    assert await channel.set_webhook("https://bot.city.example/webhooks/telegram") is True
    [call] = fake.calls("setWebhook")
    assert call.form["url"] == "https://bot.city.example/webhooks/telegram"
    assert call.form["secret_token"] == TELEGRAM_SECRET


# -- the plain text fast path ---------------------------------------------------------------------


def _through_the_sdk(update: dict) -> list:
    parsed = _de_json(update)
    assert parsed.message is not None
    message = _message(parsed.update_id, parsed.message)
    return [] if message is None else [message]


def _text_update(**message_changes) -> dict:
    update = telegram_update("update_message_text.json")
    update["message"].update(message_changes)
    return update


@pytest.mark.parametrize(
    "update",
    [
        telegram_update("update_message_text.json"),
        _text_update(text="Ngiyabonga, Sawubona — “indlela”"),
        _text_update(chat={"id": -1001234567890, "type": "supergroup", "title": "Ward 12"}),
        _text_update(**{"from": {"id": 5, "is_bot": False, "first_name": "Sipho"}}),
        _text_update(
            **{"from": {"id": 5, "is_bot": False, "first_name": "", "language_code": "zu"}}
        ),
    ],
)
def test_a_plain_text_message_read_without_the_sdk_is_what_the_sdk_reads(update):
    fast = _plain_text(update)
    assert fast is not None
    assert [fast] == _through_the_sdk(update)
    assert offline_channel().parse(telegram_request(update)) == [fast]


@pytest.mark.parametrize(
    "update",
    [
        _text_update(text="/start"),
        _text_update(entities=[{"type": "bold", "offset": 0, "length": 2}]),
        _text_update(**{"from": {"id": 5, "is_bot": True, "first_name": "Bot"}}),
        _text_update(**{"from": {"id": "5", "is_bot": False, "first_name": "Sipho"}}),
        _text_update(date="yesterday"),
        _text_update(date=10**30),
        _text_update(message_id=True),
        _text_update(
            reply_to_message={"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}}
        ),
        telegram_update("update_message_photo.json"),
        telegram_update("update_callback_query.json"),
        telegram_update("update_edited_message.json"),
        {**telegram_update("update_message_text.json"), "edited_message": {}},
    ],
)
def test_anything_but_a_plain_text_message_goes_through_the_sdk(update):
    assert _plain_text(update) is None


def test_a_command_still_becomes_its_word():
    [inbound] = offline_channel().parse(telegram_request(_text_update(text="/start")))
    assert inbound.text == "menu"
