"""The neutral inbound message cleans its text where it enters, whichever channel parsed it."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from channels.types import MAX_TEXT_CHARS, InboundMessage, clean_text


def test_nul_other_controls_and_lone_surrogates_are_dropped_newlines_and_tabs_kept() -> None:
    message = InboundMessage(
        "webchat",
        "s\x00-1",
        "m\x00-1",
        text="pot\x00hole\x1b \ud800on\tMain\r\nRoad",
        option_id="yes\x07",
        display_name="Th\x00andi",
    )
    assert message.text == "pothole on\tMain\r\nRoad"
    assert (message.address, message.message_id) == ("s-1", "m-1")
    assert (message.option_id, message.display_name) == ("yes", "Thandi")


def test_a_giant_text_is_cut() -> None:
    message = InboundMessage("sms", "+27831234567", "SM1", text="x" * 100_000)
    assert message.text == "x" * MAX_TEXT_CHARS


def test_clean_text_is_kept_as_it_is_and_replace_cleans_again() -> None:
    text = "Sawubona, amanzi ayaphuma emgwaqweni 😀"
    message = InboundMessage("sms", "+27831234567", "SM1", text=text)
    assert message.text is text
    assert dataclasses.replace(message, text="a\x00b").text == "ab"


@given(st.text())
def test_what_is_left_encodes_as_utf8_without_nul(value: str) -> None:
    cleaned = clean_text(value)
    assert "\x00" not in cleaned
    cleaned.encode("utf-8")  # no lone surrogate left: neither database could store one
    assert clean_text(cleaned) == cleaned
