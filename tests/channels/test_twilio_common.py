"""What the Twilio channels share: the signature check and the HTTP client under the SDK.

The signature check computes one HMAC and falls back to the SDK's ``RequestValidator.validate``
only when that does not match; these tests hold it to answering exactly as ``validate`` alone did.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl, urlencode

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from channels.base import ChannelRequest, ForbiddenRequest
from channels.http_session import ProviderSession
from channels.twilio_common import signed_url, verify_twilio_signature
from channels.twilio_http import TwilioHttpClient
from tests.channels.signed import twilio_form
from tests.fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

SMS_PATH = "/webhooks/twilio/sms"


def post(path: str, form: dict[str, str], signature: str | None) -> ChannelRequest:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    return ChannelRequest(
        "POST", "http://10.0.0.7:8080" + path, headers, urlencode(form).encode(), form
    )


def accepted(request: ChannelRequest, public_url: str, token: str = AUTH_TOKEN) -> bool:
    try:
        verify_twilio_signature(request, token, public_url)
    except ForbiddenRequest:
        return False
    return True


def validate_alone(request: ChannelRequest, public_url: str, token: str = AUTH_TOKEN) -> bool:
    """The check as it was: the SDK's ``validate`` and nothing else."""
    signature = request.header("X-Twilio-Signature")
    url = signed_url(public_url, request.url)
    return bool(signature) and RequestValidator(token).validate(url, dict(request.form), signature)


def sign(url: str, form: dict[str, str], token: str = AUTH_TOKEN) -> str:
    signature: str = RequestValidator(token).compute_signature(url, form)
    return signature


# -- port variants --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("public_url", "twilio_signed"),
    [
        # Configured without a port; Twilio signed with the default port, or without it.
        ("https://bot.city.example", "https://bot.city.example:443"),
        ("https://bot.city.example", "https://bot.city.example"),
        ("http://bot.city.example", "http://bot.city.example:80"),
        # Configured with the default port; Twilio signed without it, or with it.
        ("https://bot.city.example:443", "https://bot.city.example"),
        ("https://bot.city.example:443", "https://bot.city.example:443"),
        # A port of its own, under a path prefix.
        ("http://localhost:8080/city/", "http://localhost:8080/city"),
    ],
)
def test_either_port_variant_of_the_public_url_is_accepted(public_url, twilio_signed):
    form = twilio_form("inbound_sms.json")
    request = post(SMS_PATH, form, sign(twilio_signed + SMS_PATH, form))
    assert accepted(request, public_url)
    assert validate_alone(request, public_url)


@pytest.mark.parametrize(
    "twilio_signed",
    [
        "https://bot.city.example:8443",  # another port is another URL
        "http://bot.city.example",  # another scheme
        "https://other.city.example",  # another host
        "https://bot.city.example/other",  # another prefix
    ],
)
def test_a_signature_for_another_url_is_refused(twilio_signed):
    form = twilio_form("inbound_sms.json")
    request = post(SMS_PATH, form, sign(twilio_signed + SMS_PATH, form))
    assert not accepted(request, "https://bot.city.example")
    assert not validate_alone(request, "https://bot.city.example")


# -- forged ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "forged",
        "bm90IGEgc2lnbmF0dXJl",
        "ünïcode",  # not ASCII: compared as bytes, refused rather than raising
        sign("https://bot.city.example" + SMS_PATH, twilio_form("inbound_sms.json"), "other"),
        sign("https://bot.city.example" + SMS_PATH, twilio_form("inbound_sms.json", Body="x")),
    ],
)
def test_forged_signatures_are_refused(signature):
    with pytest.raises(ForbiddenRequest):
        verify_twilio_signature(
            post(SMS_PATH, twilio_form("inbound_sms.json"), signature),
            AUTH_TOKEN,
            "https://bot.city.example",
        )


# -- bodySHA256 (JSON bodies): the query is signed, the form is empty ------------------------------


def test_a_json_post_signed_with_its_body_hash_in_the_url_answers_as_validate_does():
    body = json.dumps({"MessageSid": "SM1", "Body": "hello"}).encode()
    path = f"{SMS_PATH}?bodySHA256={hashlib.sha256(body).hexdigest()}"
    signature = sign("https://bot.city.example" + path, {})
    request = ChannelRequest(
        "POST",
        "http://10.0.0.7:8080" + path,
        {"Content-Type": "application/json", "X-Twilio-Signature": signature},
        body,
        {},
    )
    assert accepted(request, "https://bot.city.example")
    assert validate_alone(request, "https://bot.city.example")
    # The body hash is part of the signed URL: another hash is another URL.
    other = ChannelRequest(
        "POST",
        f"http://10.0.0.7:8080{SMS_PATH}?bodySHA256={'0' * 64}",
        request.headers,
        body,
        {},
    )
    assert not accepted(other, "https://bot.city.example")
    assert not validate_alone(other, "https://bot.city.example")


# -- the same answers as validate alone, whatever is posted ---------------------------------------

_PUBLIC_URLS = (
    "https://bot.city.example",
    "https://bot.city.example:443",
    "http://localhost:8080",
    "https://bot.city.example/city/",
)
_SIGNED_HOSTS = (
    "https://bot.city.example",
    "https://bot.city.example:443",
    "https://bot.city.example:8443",
    "http://bot.city.example",
    "http://localhost:8080",
    "http://localhost",
    "https://bot.city.example/city",
)
_fields = st.dictionaries(
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=12),
    st.text(st.characters(codec="utf-8"), max_size=40),
    max_size=8,
)


@st.composite
def _posts(draw: st.DrawFn) -> tuple[str, ChannelRequest]:
    """A public URL and a post to it, signed right or wrong in one of the ways that happen."""
    public_url = draw(st.sampled_from(_PUBLIC_URLS))
    path = draw(st.sampled_from([SMS_PATH, SMS_PATH + "?tenant=ct", "/webhooks/twilio/status"]))
    form = draw(_fields)
    signed_host = draw(st.sampled_from((public_url.rstrip("/"), *_SIGNED_HOSTS)))
    signed_path, signed_form, token = path, form, AUTH_TOKEN
    tamper = draw(st.sampled_from(["none", "none", "none", "path", "form", "token"]))
    if tamper == "path":
        signed_path = draw(st.sampled_from([SMS_PATH, SMS_PATH + "?tenant=ct", "/"]))
    elif tamper == "form":
        signed_form = draw(_fields)
    elif tamper == "token":
        token = "other-token"
    return public_url, post(path, form, sign(signed_host + signed_path, signed_form, token))


@settings(max_examples=300, deadline=None)
@given(_posts())
def test_the_check_answers_as_the_sdks_validate_alone(post_to: tuple[str, ChannelRequest]):
    public_url, request = post_to
    assert accepted(request, public_url) == validate_alone(request, public_url)


# -- the HTTP client under the SDK ----------------------------------------------------------------


@pytest.fixture
async def fake_twilio() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio() as server:
        yield server


async def test_the_sdk_request_arrives_whole_with_basic_auth(fake_twilio):
    http = TwilioHttpClient(ProviderSession(), fake_twilio.url)
    client = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=http)
    media = ["https://city.example/a.jpg", "https://city.example/b.jpg?x=1&y=2"]
    try:
        for body in ("Ngiyabonga! 🚧 & 100% = done? " * 3, "Hi"):
            message = await client.messages.create_async(
                to="whatsapp:+27831234567",
                from_="whatsapp:+27211234567",
                body=body,
                media_url=media,
            )
            assert message.sid.startswith("SM")
    finally:
        await http.close()
    first, second = fake_twilio.messages()
    expected_auth = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    for call, body in ((first, "Ngiyabonga! 🚧 & 100% = done? " * 3), (second, "Hi")):
        assert call.headers["Authorization"] == expected_auth
        assert call.headers["Content-Type"] == "application/x-www-form-urlencoded"
        assert call.headers["User-Agent"].startswith("twilio-python/")
        fields = parse_qsl(call.body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
        assert [v for k, v in fields if k == "MediaUrl"] == media
        assert {k: v for k, v in fields if k != "MediaUrl"} == {
            "To": "whatsapp:+27831234567",
            "From": "whatsapp:+27211234567",
            "Body": body,
        }


@pytest.fixture
async def slow_server() -> AsyncIterator[TestServer]:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.json_response({}, status=201)

    app = web.Application()
    app.router.add_post("/{tail:.*}", slow)
    async with TestServer(app, host="127.0.0.1") as running:
        yield running


@pytest.mark.parametrize(("default", "given"), [(0.2, None), (10.0, 0.2)])
async def test_a_request_times_out_after_the_default_or_the_given_timeout(
    slow_server, default, given
):
    http = TwilioHttpClient(ProviderSession(), str(slow_server.make_url("")), timeout=default)
    url = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    started = asyncio.get_running_loop().time()
    try:
        with pytest.raises(TimeoutError):
            await http.request("POST", url, data={"Body": "Hi"}, timeout=given)
    finally:
        await http.close()
    assert asyncio.get_running_loop().time() - started < 1.5
