"""ChannelRequest.header: providers' header names are matched in any case, as HTTP says."""

from __future__ import annotations

from channels.base import ChannelRequest


def _request(headers: dict[str, str]) -> ChannelRequest:
    return ChannelRequest(method="POST", url="/", headers=headers, body=b"", form={})


def test_header_is_found_whatever_its_case() -> None:
    request = _request({"x-twilio-signature": "abc", "Content-Type": "text/plain"})
    assert request.header("X-Twilio-Signature") == "abc"
    assert request.header("content-type") == "text/plain"


def test_a_missing_header_is_none() -> None:
    assert (
        _request({"Content-Type": "text/plain"}).header("X-Telegram-Bot-Api-Secret-Token") is None
    )
