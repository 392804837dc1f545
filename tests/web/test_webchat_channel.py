"""The web chat channel: signed sessions, strict parsing, effects rendered as JSON bubbles."""

from __future__ import annotations

import json

import pytest

from channels.base import BadRequest, ChannelRequest, ForbiddenRequest
from channels.types import InboundKind
from channels.webchat import COOKIE_NAME, MAX_BODY_BYTES, WebChatChannel
from forms_runtime.effects import (
    Ask,
    Effect,
    InputKind,
    Notice,
    OptionView,
    Reject,
    Review,
    ReviewItem,
    Submit,
)

channel = WebChatChannel("test-secret")


def _post(**fields: object) -> bytes:
    return json.dumps({"client_message_id": "m-1", **fields}).encode()


def test_a_session_cookie_verifies_and_a_forged_one_does_not() -> None:
    cookie = channel.new_session()
    session = channel.session_of(cookie)
    assert session and cookie.startswith(session + ".")
    assert channel.session_of(cookie[:-1] + ("A" if cookie[-1] != "A" else "B")) is None
    assert channel.session_of("other-session." + cookie.split(".")[1]) is None
    assert WebChatChannel("another-secret").session_of(cookie) is None
    assert channel.session_of(None) is None and channel.session_of("a.b.c") is None


def test_parse_text_option_and_location() -> None:
    text = channel.parse_post(_post(text="pothole", locale="zu"), "s1")
    assert (text.kind, text.text, text.address, text.language_hint) == (
        InboundKind.TEXT,
        "pothole",
        "s1",
        "zu",
    )
    assert text.message_id == "s1:m-1" and text.channel == "webchat"
    option = channel.parse_post(_post(option_id="medium"), "s1")
    assert (option.kind, option.option_id) == (InboundKind.BUTTON, "medium")
    pin = channel.parse_post(_post(location={"lat": -34.0363, "lon": 18.6776}), "s1")
    assert pin.kind is InboundKind.LOCATION and pin.location and pin.location.lat == -34.0363


def test_unknown_fields_are_ignored() -> None:
    assert channel.parse_post(_post(text="hi", colour="blue"), "s1").text == "hi"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (json.dumps({"text": "hi"}).encode(), "client_message_id"),
        (json.dumps({"client_message_id": "", "text": "hi"}).encode(), "client_message_id"),
        (json.dumps({"client_message_id": "x" * 101, "text": "hi"}).encode(), "client_message_id"),
        (_post(), "exactly one"),
        (_post(text="hi", option_id="a"), "exactly one"),
        (_post(text=5), "text must be a string"),
        (_post(option_id=""), "option_id"),
        (_post(location=[1, 2]), "location must be an object"),
        (_post(location={"lat": 91, "lon": 0}), "location.lat"),
        (_post(location={"lat": 0, "lon": "18"}), "location.lon"),
        (_post(location={"lat": True, "lon": 1}), "location.lat"),
        (b'{"client_message_id": "m", "location": {"lat": NaN, "lon": 1}}', "location.lat"),
        (b" " * (MAX_BODY_BYTES + 1), "over"),
    ],
)
def test_bad_posts_say_what_is_wrong(body: bytes, reason: str) -> None:
    with pytest.raises(BadRequest, match=reason):
        channel.parse_post(body, "s1")


def test_long_text_is_cut_not_refused() -> None:
    assert len(channel.parse_post(_post(text="a" * 10_000), "s1").text or "") == 4000


def test_parse_reads_the_cookie_from_a_channel_request() -> None:
    cookie = channel.new_session()
    request = ChannelRequest(
        method="POST",
        url="http://localhost/webchat/messages",
        headers={"Cookie": f"other=1; {COOKIE_NAME}={cookie}"},
        body=_post(text="hi"),
        form={},
    )
    channel.verify(request)
    [message] = channel.parse(request)
    assert message.address == channel.session_of(cookie)
    forged = ChannelRequest("POST", request.url, {"Cookie": f"{COOKIE_NAME}=x.y"}, b"", {})
    with pytest.raises(ForbiddenRequest):
        channel.verify(forged)


ASK = Ask(
    step_id="size",
    prompt="How big is the pothole?",
    kind=InputKind.CHOICE,
    options=(OptionView("small", "Smaller than a plate"), OptionView("large", "Bigger")),
    hint="Pick one",
    position=2,
    total=5,
)
REVIEW = Review(
    title="Check your answers",
    items=(ReviewItem(1, "size", "Size", "Bigger"),),
    prompt="Reply SEND",
    options=(OptionView("send", "Send"), OptionView("change:1", "Change 1")),
)


def test_effects_become_json_bubbles() -> None:
    effects: list[Effect] = [
        Reject("Choose one of the options"),
        ASK,
        Notice("Form restarted"),
        REVIEW,
        Submit("pothole", 1, "ROADS", "en", {"size": "large"}),
    ]
    error, ask, notice, review = channel.to_json(effects)
    assert error == {"type": "error", "text": "Choose one of the options"}
    assert ask["type"] == "ask" and ask["input"] == "choice" and ask["hint"] == "Pick one"
    assert ask["progress"] == {"position": 2, "total": 5}
    assert ask["options"] == [
        {"id": "small", "label": "Smaller than a plate"},
        {"id": "large", "label": "Bigger"},
    ]
    assert notice == {"type": "notice", "text": "Form restarted"}
    assert review["items"] == [{"number": 1, "step_id": "size", "label": "Size", "value": "Bigger"}]
    assert [o["id"] for o in review["options"]] == ["send", "change:1"]


def test_render_gives_plain_messages_with_buttons() -> None:
    location = Ask(step_id="where", prompt="Where?", kind=InputKind.LOCATION)
    ask, where, review = channel.render([ASK, location, REVIEW], "en", "s1")
    assert ask.text == "How big is the pothole?" and [b.id for b in ask.buttons] == [
        "small",
        "large",
    ]
    assert where.buttons[0].kind == "location"
    assert review.text.splitlines()[1] == "1. Size: Bigger"
