import pytest

from channels.base import BadRequest, ForbiddenRequest
from channels.retrying import PROVIDER_DOWN, send_with_retries
from channels.twilio_common import TwilioAccount, parse_receipt, signed_url
from channels.twilio_sms import SmsChannel
from channels.types import DeliveryStatus, InboundKind, OutboundMessage
from forms_runtime.effects import Ask, InputKind, OptionView, Reject
from forms_runtime.sms import is_gsm7, segments
from tests.channels.signed import PUBLIC_URL, twilio_form, twilio_request, twilio_signature
from tests.fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

SMS_PATH = "/webhooks/twilio/sms"
STATUS_PATH = "/webhooks/twilio/status"


def make_channel(base_url: str = "http://127.0.0.1:9") -> SmsChannel:
    account = TwilioAccount(ACCOUNT_SID, AUTH_TOKEN, PUBLIC_URL, api_base_url=base_url)
    return SmsChannel(account, "+27211234567")


@pytest.fixture
async def fake():
    async with FakeTwilio() as server:
        yield server


@pytest.fixture
async def channel(fake):
    ch = make_channel(fake.url)
    yield ch
    await ch.close()


# -- verify ---------------------------------------------------------------------------------------


def test_a_post_signed_for_the_public_url_passes_behind_a_proxy():
    make_channel().verify(twilio_request(SMS_PATH, twilio_form("inbound_sms.json")))


def test_the_query_string_is_part_of_what_is_signed():
    form = twilio_form("inbound_sms.json")
    request = twilio_request(
        SMS_PATH + "?tenant=ct", form, signature=twilio_signature(SMS_PATH + "?tenant=ct", form)
    )
    make_channel().verify(request)
    assert signed_url(PUBLIC_URL, request.url) == PUBLIC_URL + SMS_PATH + "?tenant=ct"


@pytest.mark.parametrize(
    "request_",
    [
        twilio_request(SMS_PATH, twilio_form("inbound_sms.json"), sign=False),
        twilio_request(SMS_PATH, twilio_form("inbound_sms.json"), signature="forged"),
        # Signed with another account's token.
        twilio_request(
            SMS_PATH,
            twilio_form("inbound_sms.json"),
            signature=twilio_signature(SMS_PATH, twilio_form("inbound_sms.json"), token="other"),
        ),
        # Signed, then the body was changed on the way.
        twilio_request(
            SMS_PATH,
            twilio_form("inbound_sms.json", Body="STOP"),
            signature=twilio_signature(SMS_PATH, twilio_form("inbound_sms.json")),
        ),
        # A signature for another path (replayed at a different endpoint).
        twilio_request(
            SMS_PATH,
            twilio_form("inbound_sms.json"),
            signature=twilio_signature(
                "/webhooks/twilio/whatsapp", twilio_form("inbound_sms.json")
            ),
        ),
    ],
)
def test_forged_or_unsigned_posts_are_forbidden(request_):
    with pytest.raises(ForbiddenRequest):
        make_channel().verify(request_)


# -- parse ----------------------------------------------------------------------------------------


def test_an_sms_becomes_a_text_message():
    [m] = make_channel().parse(twilio_request(SMS_PATH, twilio_form("inbound_sms.json")))
    assert (m.channel, m.address, m.message_id) == (
        "sms",
        "+27831234567",
        "SM00000000000000000000000000001001",
    )
    assert (m.kind, m.text) == (InboundKind.TEXT, "Pothole on Main Road near the station")


def test_an_mms_photo_is_kept_as_a_reference():
    form = twilio_form(
        "inbound_sms.json",
        NumMedia="1",
        MediaUrl0="https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM1/Media/ME1",
        MediaContentType0="image/png",
        Body="",
    )
    [m] = make_channel().parse(twilio_request(SMS_PATH, form))
    assert m.kind is InboundKind.MEDIA
    assert m.media[0].content_type == "image/png"
    assert m.text is None


@pytest.mark.parametrize(
    "changes",
    [
        {"MessageSid": "", "SmsSid": ""},
        {"From": ""},
        {"NumMedia": "lots"},
        # Nothing left once cleaned of control characters: was a 500 (an empty address).
        {"From": "\x00"},
        {"MessageSid": "\x00\x01", "SmsSid": ""},
    ],
)
def test_malformed_posts_are_bad_requests(changes):
    with pytest.raises(BadRequest):
        make_channel().parse(twilio_request(SMS_PATH, twilio_form("inbound_sms.json", **changes)))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"From": "+27" + "8" * 253}, "From is longer than 255"),
        (
            {"MessageSid": "SM" + "0" * 127, "SmsSid": "SM" + "0" * 127},
            "MessageSid is longer than 128",
        ),
    ],
)
def test_a_signed_post_with_a_field_too_long_to_keep_is_a_bad_request(changes, reason):
    with pytest.raises(BadRequest, match=reason):
        make_channel().parse(twilio_request(SMS_PATH, twilio_form("inbound_sms.json", **changes)))


def test_the_longest_fields_the_log_keeps_are_taken():
    sid = "SM" + "0" * 126
    form = twilio_form("inbound_sms.json", From="+" + "7" * 254, MessageSid=sid, SmsSid=sid)
    [m] = make_channel().parse(twilio_request(SMS_PATH, form))
    assert (len(m.address), len(m.message_id)) == (255, 128)


# -- receipts -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("status_sent.json", DeliveryStatus.SENT, None),
        ("status_delivered.json", DeliveryStatus.DELIVERED, None),
        ("status_undelivered_30003.json", DeliveryStatus.FAILED, "30003"),
        ("status_failed_21610.json", DeliveryStatus.UNREACHABLE, "21610"),
        ("status_whatsapp_read.json", DeliveryStatus.READ, None),
    ],
)
def test_status_callbacks_become_receipts(name, status, code):
    receipt = parse_receipt(twilio_request(STATUS_PATH, twilio_form(name)))
    assert receipt.status is status
    assert receipt.error_code == code
    assert receipt.provider_message_id.startswith("SM")
    assert receipt.channel == ("whatsapp" if "whatsapp" in name else "sms")
    assert receipt.address == "+27831234567"


def test_a_receipt_with_a_sid_too_long_to_look_up_is_a_bad_request():
    long = "SM" + "0" * 127
    with pytest.raises(BadRequest, match="MessageSid"):
        parse_receipt(
            twilio_request(
                STATUS_PATH, twilio_form("status_sent.json", MessageSid=long, SmsSid=long)
            )
        )


def test_a_receipt_without_a_status_is_a_bad_request():
    with pytest.raises(BadRequest):
        parse_receipt(
            twilio_request(
                STATUS_PATH, twilio_form("status_sent.json", MessageStatus="", SmsStatus="")
            )
        )


# -- render ---------------------------------------------------------------------------------------


def test_options_are_numbered_and_text_is_gsm7():
    ask = Ask(
        step_id="size",
        prompt="How big is the pothole? It’s “roughly” – you choose",
        kind=InputKind.CHOICE,
        options=(OptionView("small", "Smaller than a plate"), OptionView("large", "Bigger")),
    )
    [m] = make_channel().render([Reject("Choose a size."), ask], "en", "+27831234567")
    assert m.text == (
        'Choose a size.\n\nHow big is the pothole? It\'s "roughly" - you choose\n'
        "Reply 1 for Smaller than a plate\nReply 2 for Bigger"
    )
    assert is_gsm7(m.text)
    assert m.buttons == ()


def test_long_texts_are_split_at_sentences_into_at_most_three_segments():
    sentences = [f"Sentence number {i} tells the resident something useful." for i in range(30)]
    notice = Reject(" ".join(sentences))
    parts = make_channel().render([notice], "en", "+27831234567")
    assert len(parts) > 1
    assert all(segments(p.text) <= 3 for p in parts)
    assert all(p.text.endswith(".") for p in parts)  # cut after sentence ends
    assert " ".join(p.text for p in parts) == notice.message


def test_afrikaans_that_needs_ucs2_keeps_its_letters_and_fits_three_segments():
    text = "Wat sê jy? " * 40
    parts = make_channel().render([Reject(text)], "af", "+27831234567")
    assert all("ê" in p.text for p in parts)
    assert all(segments(p.text) <= 3 for p in parts)


# -- send (against the fake Twilio) ---------------------------------------------------------------


async def test_send_goes_through_the_sdk_to_the_configured_base(channel, fake):
    delivery = await channel.send(OutboundMessage("sms", "+27831234567", "Where is the pothole?"))
    assert delivery.status is DeliveryStatus.SENT
    [call] = fake.messages()
    assert call.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert call.form["To"] == "+27831234567"
    assert call.form["From"] == "+27211234567"
    assert call.form["Body"] == "Where is the pothole?"
    assert call.form["StatusCallback"] == PUBLIC_URL + STATUS_PATH
    assert delivery.provider_message_id == "SM00000000000000000000000000004001"


async def test_429_then_201_waits_the_retry_after(channel, fake):
    fake.rate_limit_next(retry_after=2)
    waits = []

    async def sleep(seconds):
        waits.append(seconds)

    delivery = await send_with_retries(
        channel, OutboundMessage("sms", "+27831234567", "Hi"), sleep=sleep
    )
    assert delivery.status is DeliveryStatus.SENT
    assert waits == [2.0]
    assert [r.status for r in fake.requests] == [429, 201]


async def test_21610_marks_the_resident_unreachable_and_is_not_retried(channel, fake):
    fake.fail_with_fixture("rest_error_21610.json")
    delivery = await send_with_retries(channel, OutboundMessage("sms", "+27831234567", "Hi"))
    assert delivery.status is DeliveryStatus.UNREACHABLE
    assert delivery.error_code == "21610"
    assert len(fake.requests) == 1


async def test_an_invalid_number_fails_for_good(channel, fake):
    fake.fail_with_fixture("rest_error_21211.json")
    delivery = await send_with_retries(channel, OutboundMessage("sms", "+2783123", "Hi"))
    assert (delivery.status, delivery.error_code) == (DeliveryStatus.FAILED, "21211")
    assert len(fake.requests) == 1


async def test_500s_are_retried_until_twilio_recovers(channel, fake):
    fake.fail_next(500, {"code": 20500, "message": "Internal Server Error", "status": 500}, times=2)
    delivery = await send_with_retries(
        channel, OutboundMessage("sms", "+27831234567", "Hi"), backoff=(0.0,)
    )
    assert delivery.status is DeliveryStatus.SENT
    assert [r.status for r in fake.requests] == [500, 500, 201]


async def test_twilio_down_is_provider_down_and_sent_once_it_is_back():
    fake = FakeTwilio()
    channel = make_channel("http://127.0.0.1:1")
    try:
        delivery = await channel.send(OutboundMessage("sms", "+27831234567", "Hi"))
        assert (delivery.status, delivery.error_code) == (DeliveryStatus.FAILED, PROVIDER_DOWN)
        await fake.start()
        channel = make_channel(fake.url)
        assert (
            await channel.send(OutboundMessage("sms", "+27831234567", "Hi"))
        ).status is DeliveryStatus.SENT
    finally:
        await channel.close()
        await fake.stop()
