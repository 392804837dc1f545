"""``form_urlencode`` against the standard library's ``urlencode``: the same bytes, always."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.form_encoding import form_urlencode

_text = st.text(st.characters(codec="utf-8"), max_size=120) | st.text(
    st.characters(codec="utf-8"), min_size=35, max_size=5000
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_text, _text), max_size=6))
def test_the_bytes_are_urlencodes(fields):
    expected = urlencode(fields).encode("ascii")
    assert form_urlencode(fields) == expected
    # The second time long values come from the cache: still the same bytes.
    assert form_urlencode(fields) == expected


def test_a_twilio_message():
    fields = [
        ("To", "+27831234567"),
        ("From", "whatsapp:+27211234567"),
        ("Body", "Ngiyabonga! Umbiko wakho ufakiwe: 🚧 & 100% = done?"),
        ("StatusCallback", "https://bot.city.example/webhooks/twilio/status"),
    ]
    assert form_urlencode(fields) == urlencode(fields).encode("ascii")
    assert form_urlencode(fields).startswith(b"To=%2B27831234567&From=whatsapp%3A%2B27211234567&")


@pytest.mark.parametrize("text", ["\ud800", "a" * 60 + "\udfff"])
def test_text_that_is_not_unicode_fails_as_urlencode_does(text):
    with pytest.raises(UnicodeEncodeError):
        urlencode([("Body", text)])
    with pytest.raises(UnicodeEncodeError):
        form_urlencode([("Body", text)])
