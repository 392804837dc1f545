import json
from datetime import UTC, datetime, timedelta

import pytest

from channels.base import BadRequest, ForbiddenRequest
from channels.twilio_common import TwilioAccount
from channels.types import DeliveryStatus, InboundKind, OutboundMessage
from channels.whatsapp import WhatsAppChannel
from forms_runtime.effects import Ask, InputKind, OptionView
from tests.channels.signed import PUBLIC_URL, twilio_form, twilio_request
from tests.fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

PATH = "/webhooks/twilio/whatsapp"
NOW = datetime(2025, 3, 15, 12, 0, tzinfo=UTC)


def make_channel(base_url="http://127.0.0.1:9", last_inbound=None):
    account = TwilioAccount(ACCOUNT_SID, AUTH_TOKEN, PUBLIC_URL, api_base_url=base_url)
    return WhatsAppChannel(
        account,
        "whatsapp:+27211234567",
        templates={"status_update": "HX0123456789abcdef0123456789abcdef"},
        last_inbound=last_inbound,
        clock=lambda: NOW,
    )


def parse(name, **changes):
    return make_channel().parse(twilio_request(PATH, twilio_form(name, **changes)))


def test_signed_posts_pass_and_forged_ones_do_not():
    make_channel().verify(twilio_request(PATH, twilio_form("inbound_whatsapp_text.json")))
    with pytest.raises(ForbiddenRequest):
        make_channel().verify(
            twilio_request(PATH, twilio_form("inbound_whatsapp_text.json"), signature="x")
        )


def test_text_drops_the_whatsapp_prefix_from_the_address():
    [m] = parse("inbound_whatsapp_text.json")
    assert (m.channel, m.address, m.kind) == ("whatsapp", "+27831234567", InboundKind.TEXT)
    assert m.text == "Hi, I want to report a burst water pipe"
    assert m.display_name == "Thandi"


def test_location():
    [m] = parse("inbound_whatsapp_location.json")
    assert m.kind is InboundKind.LOCATION
    assert (m.location.lat, m.location.lon) == (-34.0363, 18.6776)


@pytest.mark.parametrize("lat", ["north", "123.0"])
def test_a_broken_location_is_a_bad_request(lat):
    with pytest.raises(BadRequest):
        parse("inbound_whatsapp_location.json", Latitude=lat)


def test_media_is_a_reference_with_its_content_type():
    [m] = parse("inbound_whatsapp_media.json")
    assert m.kind is InboundKind.MEDIA
    assert m.media[0].content_type == "image/jpeg"
    assert m.media[0].url.endswith("/Media/ME00000000000000000000000000002003")
    assert m.text == "Photo of the leak"


def test_a_button_tap_gives_the_option_id():
    [m] = parse("inbound_whatsapp_button_reply.json")
    assert (m.kind, m.option_id) == (InboundKind.BUTTON, "confirm_report_yes")


def test_voice_notes_are_unsupported():
    [m] = parse(
        "inbound_whatsapp_media.json",
        MessageType="audio",
        MediaContentType0="audio/ogg",
    )
    assert m.kind is InboundKind.UNSUPPORTED


def test_options_are_numbered():
    ask = Ask(
        "size",
        "How big?",
        InputKind.CHOICE,
        options=(OptionView("s", "Small"), OptionView("l", "Large")),
    )
    [m] = make_channel().render([ask], "en", "+27831234567")
    assert m.text == "How big?\nReply 1 for Small\nReply 2 for Large"


@pytest.fixture
async def fake():
    async with FakeTwilio() as server:
        yield server


async def test_a_reply_is_free_text_to_the_whatsapp_address(fake):
    channel = make_channel(fake.url)
    try:
        delivery = await channel.send(
            OutboundMessage("whatsapp", "+27831234567", "Where is the leak?")
        )
    finally:
        await channel.close()
    assert delivery.status is DeliveryStatus.SENT
    [call] = fake.messages()
    assert (call.form["To"], call.form["From"]) == (
        "whatsapp:+27831234567",
        "whatsapp:+27211234567",
    )
    assert call.form["Body"] == "Where is the leak?"


async def test_inside_the_window_a_status_update_is_free_text(fake):
    async def last_inbound(address):
        return NOW - timedelta(hours=23)

    channel = make_channel(fake.url, last_inbound)
    try:
        message = OutboundMessage(
            "whatsapp", "+27831234567", "Your report is fixed", purpose="status_update"
        )
        assert (await channel.send(message)).status is DeliveryStatus.SENT
    finally:
        await channel.close()
    assert fake.messages()[0].form["Body"] == "Your report is fixed"
    assert "ContentSid" not in fake.messages()[0].form


async def test_outside_the_window_a_status_update_goes_as_its_template(fake):
    async def last_inbound(address):
        return NOW - timedelta(hours=25)

    channel = make_channel(fake.url, last_inbound)
    try:
        message = OutboundMessage(
            "whatsapp",
            "+27831234567",
            "Your report CT-000123 is fixed",
            purpose="status_update",
            template_variables={"reference": "CT-000123", "status": "fixed"},
        )
        assert (await channel.send(message)).status is DeliveryStatus.SENT
    finally:
        await channel.close()
    [call] = fake.messages()
    assert call.form["ContentSid"] == "HX0123456789abcdef0123456789abcdef"
    assert json.loads(call.form["ContentVariables"]) == {"1": "CT-000123", "2": "fixed"}
    assert "Body" not in call.form


async def test_outside_the_window_without_a_template_nothing_is_sent(fake):
    channel = make_channel(fake.url)  # no last inbound time known: outside the window
    try:
        message = OutboundMessage("whatsapp", "+27831234567", "News", purpose="broadcast")
        delivery = await channel.send(message)
    finally:
        await channel.close()
    assert (delivery.status, delivery.error_code) == (DeliveryStatus.FAILED, "no_template")
    assert fake.requests == []
