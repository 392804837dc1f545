"""Errors anyone can cause are 4xx, never 5xx, on every route of the app (issue 10, defect 9).

The property test enumerates the app's own router, so a route added later is fuzzed without a
change here. Each example picks a route and sends it odd input: random bytes, odd charsets,
forms and JSON with odd values, odd path and query values (``²``, numbers beyond 64 bits),
huge or odd headers, with and without the right credentials (the Telegram secret, a Twilio
signature over the odd form itself, the staff token, a web chat session), so the odd values get
past the checks and reach the parsers, the turn loop and the database. It runs on SQLite, and
with fewer examples on PostgreSQL (``postgres`` mark; it refuses more: a NUL in text or in a
query's parameter, a value over a column's length).

The named tests below pin the cases found by hand, one each.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from aiohttp import ClientResponseError, web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from yarl import URL

from bot.app import app_for
from bot.bootstrap import build_services
from bot.config import Settings
from bot.services import Services
from channels.webchat import COOKIE_NAME, WebChatChannel
from staff import accounts
from staff.accounts import NewAccount
from storage.models import MessageLog
from tests.channels.signed import PUBLIC_URL, TELEGRAM_SECRET, telegram_update, twilio_form
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.storage.databases import postgres_database, sqlite_database

TOKEN = "7000000001:AAFakeTokenForTests"
USSD_SECRET = "ussd-fuzz-secret-000001"
USSD_PATH = "/webhooks/ussd/{secret}"


@dataclass
class Site:
    client: TestClient[Any, Any]
    services: Services
    app: web.Application
    webchat_cookie: str
    # An admin and agent API token, so odd input reaches the admin API's handlers too.
    staff_token: str


@asynccontextmanager
async def _site(database: AbstractAsyncContextManager[str]) -> AsyncIterator[Site]:
    async with FakeTelegram() as telegram, FakeTwilio() as twilio, database as url:
        configured = Settings.from_env(
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
                # USSD on: its follow-up SMS go by the Twilio number above.
                "USSD_SERVICE_CODE": "*120*311#",
                "USSD_WEBHOOK_SECRET": USSD_SECRET,
            }
        )
        services = await build_services(configured)
        staff_token = await _staff_token(services)
        app = app_for(services, workers=False)
        channel = services.channels["webchat"]
        assert isinstance(channel, WebChatChannel)
        async with TestClient(TestServer(app)) as client:
            yield Site(client, services, app, channel.new_session(), staff_token)
            await services.replies.sender.drain(5)


async def _staff_token(services: Services) -> str:
    async with services.session_factory() as session, session.begin():
        await accounts.create_account(
            session,
            NewAccount.checked("fuzz@city.example", roles=["admin", "agent"]),
            actor="test",
        )
        issued = await accounts.issue_token(
            session, "fuzz@city.example", roles=["admin", "agent"], days=1, actor="test"
        )
    return issued.token


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    """The whole app on SQLite, every channel on, with fake providers."""
    async with _site(sqlite_database(tmp_path)) as made:
        yield made


@pytest.fixture
async def postgres_site(postgres_url: str) -> AsyncIterator[Site]:
    async with _site(postgres_database(postgres_url)) as made:
        yield made


# --- odd values ----------------------------------------------------------------------------------

# Values found by hand, and the shapes that broke parsers before: digits int() refuses, numbers
# no key holds, floats that overflow, control characters, and the empty string.
_ODD = [
    "²",
    "٣",
    "፩",
    "99999999999999999999",
    "9223372036854775808",
    "-1",
    "0",
    "1e400",
    "nan",
    "-inf",
    "",
    " ",
    "\x00",
    "a\x00b",
    "\x1b[31m",
    "😀",
    "𝟘",
    "%",
    "%00",
    "..",
    "json",
    "xml",
    "x" * 300,
    "9" * 5000,
]
# Text a URL or a header can carry (no lone surrogates: the client itself could not send them).
_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
odd_text = st.one_of(st.sampled_from(_ODD), _TEXT)

_CHARSETS = ["utf-8", "latin-1", "utf-16", "utf-7", "bogus", "rot13", "undefined", "idna", ""]
_MEDIA_TYPES = [
    "application/x-www-form-urlencoded",
    "application/json",
    "multipart/form-data",
    "multipart/form-data; boundary=x",
    "text/plain",
    "text/xml",
]


# Every strategy below is built once (per route or per site at most) and drawn from many
# times: a strategy built inside a draw is validated again at every draw, which was most of the
# fuzz's time and kept the number of cases per route small.
_CONTENT_TYPES = st.builds(
    lambda media, charset: media if charset is None else f"{media}; charset={charset}",
    st.sampled_from(_MEDIA_TYPES),
    st.sampled_from([None, *_CHARSETS]),
)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.just(1e18)
    | odd_text
    | st.text(max_size=20),  # lone surrogates too: JSON carries them as \ud800
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(odd_text, inner, max_size=3),
    max_leaves=8,
)

_FORM_FIELDS = ["Body", "From", "MessageSid", "NumMedia", "MediaUrl0", "Latitude"]
_FORM_FIELDS += ["service_code", "lat", "long", "description", "token", "status", "csrf"]
_FORM_FIELDS += ["expected_date", "status_notes", "api_key", "attribute[x]", "MessageStatus"]


@functools.cache
def _odd_forms(base: tuple[tuple[str, str], ...]) -> st.SearchStrategy[dict[str, str]]:
    names = [*dict(base), *_FORM_FIELDS]
    return st.lists(st.tuples(st.sampled_from(names), odd_text), max_size=5).map(
        lambda odd: {**dict(base), **dict(odd)}
    )


def odd_forms(base: dict[str, str] | None = None) -> st.SearchStrategy[dict[str, str]]:
    """A form with odd values in some of its fields (``base``'s fields first, when given)."""
    return _odd_forms(tuple((base or {}).items()))


_UPDATES = [
    "update_message_text.json",
    "update_callback_query.json",
    "update_message_location.json",
    "update_message_contact.json",
    "update_message_photo.json",
]


@functools.cache
def _odd_update(fixture: str) -> st.SearchStrategy[bytes]:
    """Odd values in some fields of one real update: the update's top level, its message (or
    callback query) and the objects inside that."""
    update = telegram_update(fixture)
    inner_key = next(k for k, v in update.items() if isinstance(v, dict))
    inner = update[inner_key]
    places = [("update_id",)] + [(inner_key, k) for k in inner]
    places += [(inner_key, k, kk) for k, v in inner.items() if isinstance(v, dict) for kk in v]

    def changed(odd: list[tuple[tuple[str, ...], Any]]) -> bytes:
        copy = json.loads(json.dumps(update))
        for place, value in odd:
            holder = copy
            for key in place[:-1]:
                holder = holder.get(key) if isinstance(holder, dict) else None
            if isinstance(holder, dict):  # not when an odd value replaced what held it
                holder[place[-1]] = value
        return json.dumps(copy).encode("utf-8", "surrogatepass")

    return st.lists(st.tuples(st.sampled_from(places), json_values), max_size=3).map(changed)


def odd_updates() -> st.SearchStrategy[bytes]:
    """A Telegram update from a real fixture with odd values in some of its fields."""
    return st.sampled_from(_UPDATES).flatmap(_odd_update)


def _webchat_post(field: str) -> st.SearchStrategy[bytes]:
    value = json_values | st.text(max_size=60)
    parts: dict[str, st.SearchStrategy[Any]] = {"client_message_id": odd_text, field: value}
    if field == "locale":
        parts["text"] = odd_text
    return st.fixed_dictionaries(parts).map(
        lambda post: json.dumps(post).encode("utf-8", "surrogatepass")
    )


_WEBCHAT_POSTS = st.one_of(
    [_webchat_post(field) for field in ("text", "option_id", "location", "locale")]
)


def odd_webchat_posts() -> st.SearchStrategy[bytes]:
    return _WEBCHAT_POSTS


_BODIES = st.one_of(
    st.binary(max_size=300),
    odd_forms().map(lambda form: urlencode(form).encode()),
    odd_forms().map(lambda form: urlencode(form).encode("latin-1", "replace")),
    json_values.map(lambda value: json.dumps(value).encode("utf-8", "surrogatepass")),
    odd_updates(),
    _WEBCHAT_POSTS,
)


def odd_bodies() -> st.SearchStrategy[bytes]:
    return _BODIES


# --- the requests --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    method: str
    # The path with {name} or {name:regex} placeholders, or a static prefix ending in "/".
    template: str


def public_routes(app: web.Application) -> list[Route]:
    """Every route of the app, read from its router (a new route is fuzzed without a change)."""
    routes = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        template = info.get("formatter") or info.get("path") or str(info.get("prefix", "")) + "/"
        routes.add(Route(route.method, str(template)))
    return sorted(routes, key=lambda r: (r.template, r.method))


_PLACEHOLDER = re.compile(r"\{(\w+)(?::[^}]*)?\}")


def _quoted(value: str) -> str:
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


@functools.cache
def paths(route: Route) -> st.SearchStrategy[str]:
    if "{" not in route.template and route.template.endswith("//"):
        static = route.template[:-1]  # a static folder
        return odd_text.map(lambda text: static + _quoted(text))
    names = [match.group(1) for match in _PLACEHOLDER.finditer(route.template)]
    fills = [
        # "fmt" is sometimes json or xml: far enough to reach the handler.
        st.sampled_from(["json", "xml"]) | odd_text.map(_quoted_or_x)
        if name == "fmt"
        else odd_text.map(_quoted_or_x)
        for name in names
    ]

    def filled(values: tuple[str, ...]) -> str:
        given = iter(values)
        return _PLACEHOLDER.sub(lambda _: next(given), route.template)

    return st.tuples(*fills).map(filled)


def _quoted_or_x(text: str) -> str:
    return _quoted(text) or "x"


_QUERY_NAMES = ["after", "service_request_id", "status", "start_date", "end_date", "service_code"]
_QUERIES = st.lists(st.tuples(st.sampled_from(_QUERY_NAMES) | odd_text, odd_text), max_size=4).map(
    lambda fields: urlencode(
        [(k.encode("utf-8", "replace"), v.encode("utf-8", "replace")) for k, v in fields]
    )
)


def queries() -> st.SearchStrategy[str]:
    return _QUERIES


_HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)


@functools.cache
def _headers(staff_token: str, webchat_cookie: str) -> st.SearchStrategy[dict[str, str]]:
    cookie = st.builds(
        lambda value, staff: f"{COOKIE_NAME}={value}; citybot_staff={staff}",
        st.sampled_from([webchat_cookie, "x.y", "=;;"]) | _HEADER_TEXT,
        _HEADER_TEXT,
    )
    odd_header = st.tuples(
        st.sampled_from(["X-Odd", "Accept-Language", "Range"]),
        st.sampled_from(["a" * 7000, "bytes=99999999999999999999-", "²"]) | _HEADER_TEXT,
    )
    chosen = st.fixed_dictionaries(
        {},
        optional={
            "Content-Type": _CONTENT_TYPES,
            "X-Telegram-Bot-Api-Secret-Token": st.sampled_from([TELEGRAM_SECRET]) | _HEADER_TEXT,
            "Authorization": st.sampled_from([f"Bearer {staff_token}", "Bearer", "Basic x"])
            | _HEADER_TEXT,
            "Cookie": cookie,
        },
    )
    return st.tuples(chosen, st.none() | odd_header).map(
        lambda drawn: drawn[0] if drawn[1] is None else {**drawn[0], drawn[1][0]: drawn[1][1]}
    )


def headers(site: Site) -> st.SearchStrategy[dict[str, str]]:
    return _headers(site.staff_token, site.webchat_cookie)


def _ussd_form() -> dict[str, str]:
    """A gateway's post in the middle of a session (language, menu, a service)."""
    return {
        "sessionId": "ATUid_fuzz",
        "serviceCode": "*120*311#",
        "phoneNumber": "+27831234567",
        "networkCode": "65501",
        "text": "1*1*3",
    }


def _twilio_signature(path: str, form: dict[str, str]) -> str:
    from twilio.request_validator import RequestValidator

    signature: str = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_URL + path, form)
    return signature


@dataclass(frozen=True)
class OddRequest:
    route: Route
    url: URL
    headers: dict[str, str]
    body: bytes


def _draw(
    site: Site, data: st.DataObject, routes: list[Route], *, sign_providers: bool = False
) -> OddRequest:
    route = data.draw(st.sampled_from(routes), label="route")
    path = data.draw(paths(route), label="path")
    query = data.draw(queries(), label="query")
    sent_headers = data.draw(headers(site), label="headers")
    body = b""
    if route.method not in ("GET", "HEAD"):
        # Mostly with the right credentials, so the odd values reach the parsers and the turn.
        right = data.draw(st.integers(0, 3), label="credentials") > 0
        if path.startswith("/webhooks/twilio/") and right and sign_providers:
            # Signed over the odd form itself.
            form = data.draw(odd_forms(twilio_form("inbound_sms.json")), label="form")
            body = urlencode(form).encode()
            sent_headers["Content-Type"] = "application/x-www-form-urlencoded"
            sent_headers["X-Twilio-Signature"] = _twilio_signature(path, form)
            query = ""
        elif path == "/webhooks/telegram" and right and sign_providers:
            sent_headers["X-Telegram-Bot-Api-Secret-Token"] = TELEGRAM_SECRET
            body = data.draw(odd_updates(), label="update")
        elif route.template == USSD_PATH and right:
            # The right secret, so the gateway's odd fields reach the parser and the dialogue.
            path = USSD_PATH.format(secret=USSD_SECRET)
            form = data.draw(odd_forms(_ussd_form()), label="form")
            body = urlencode(form).encode()
            sent_headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif path.startswith("/open311/") and right:
            # The built-in server's own key, so the odd fields reach its parser.
            key = site.services.settings.open311_key or ""
            form = data.draw(odd_forms({"api_key": key}), label="form")
            body = urlencode(form).encode()
            sent_headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif path == "/webchat/messages" and right:
            sent_headers["Cookie"] = f"{COOKIE_NAME}={site.webchat_cookie}"
            sent_headers["Content-Type"] = "application/json"
            body = data.draw(odd_webchat_posts(), label="post")
        else:
            if path.startswith("/api/") and right:
                sent_headers["Authorization"] = f"Bearer {site.staff_token}"
            body = data.draw(odd_bodies(), label="body")
    return OddRequest(
        route, URL(path + (f"?{query}" if query else ""), encoded=True), sent_headers, body
    )


async def _request(site: Site, odd: OddRequest) -> tuple[str, str, int]:
    route, url = odd.route, odd.url
    try:
        async with site.client.request(
            route.method, url, data=odd.body, headers=odd.headers, allow_redirects=False
        ) as response:
            # A live feed (server-sent events) never ends by itself: its status is its answer.
            if response.content_type != "text/event-stream":
                await response.read()
            # --hypothesis-show-statistics: how far the examples got, by route.
            event(f"{route.method} {route.template} {response.status}")
            return route.method, str(url)[:200], response.status
    except ClientResponseError as exc:
        # aiohttp's server refused the request line or headers (too long) and closed: the
        # client could not read the answer cleanly, but it has its status.
        return route.method, str(url)[:200], exc.status


def _server_error(url: str, status: int) -> bool:
    """A 5xx, except the readiness probe's 503: "not now" (a check slower than its limit while
    the fuzz keeps the machine busy) is its documented answer, which a load balancer reads."""
    return status >= 500 and not (status == 503 and URL(url).path == "/readyz")


async def _send(
    site: Site, data: st.DataObject, routes: list[Route], *, sign_providers: bool = False
) -> tuple[str, str, int]:
    return await _request(site, _draw(site, data, routes, sign_providers=sign_providers))


# One app for all examples, on purpose: odd input must not break a running app either.
_ONE_APP = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
# No shrinking: an example is a request to every route, and the failure names the request that
# got the 5xx already (shrinking took minutes for no clearer answer).
_NO_SHRINK = [Phase.explicit, Phase.reuse, Phase.generate]


# The routes are shared out over this many tests: one example holding an odd request to every
# one of 100-odd routes is more input than Hypothesis generates for one example.
ROUTE_SHARES = 3
# Cases per route: 2,000 on SQLite in CI (issue 15), fewer on PostgreSQL (each turn commits on a
# real server); `make chaos` (CITYBOT_CHAOS=1) runs 100,000 and 10,000, or CITYBOT_FUZZ_EXAMPLES
# of each.
_CHAOS = os.environ.get("CITYBOT_CHAOS") == "1"
FUZZ_EXAMPLES = int(os.environ.get("CITYBOT_FUZZ_EXAMPLES", 100_000 if _CHAOS else 2_000))
FUZZ_EXAMPLES_POSTGRES = int(os.environ.get("CITYBOT_FUZZ_EXAMPLES", 10_000 if _CHAOS else 50))


async def _every_route(site: Site, data: st.DataObject, share: int) -> None:
    """One odd request to every route of this share (each example covers them all, none left
    to chance)."""
    for route in public_routes(site.app)[share::ROUTE_SHARES]:
        method, url, status = await _send(site, data, [route])
        assert not _server_error(url, status), f"{method} {url} -> {status}"


@pytest.mark.fuzz
@pytest.mark.parametrize("share", range(ROUTE_SHARES))
@settings(
    max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=_ONE_APP, phases=_NO_SHRINK
)
@given(data=st.data())
async def test_no_route_answers_odd_input_with_a_server_error(
    site: Site, share: int, data: st.DataObject
) -> None:
    await _every_route(site, data, share)


@pytest.mark.postgres
@pytest.mark.parametrize("share", range(ROUTE_SHARES))
@settings(
    max_examples=FUZZ_EXAMPLES_POSTGRES,
    deadline=None,
    suppress_health_check=_ONE_APP,
    phases=_NO_SHRINK,
)
@given(data=st.data())
async def test_no_route_answers_odd_input_with_a_server_error_on_postgresql(
    postgres_site: Site, share: int, data: st.DataObject
) -> None:
    """Fewer examples (each turn commits on a real server): PostgreSQL refuses what SQLite
    takes, such as a NUL in a query's parameter."""
    await _every_route(postgres_site, data, share)


@settings(max_examples=120, deadline=None, suppress_health_check=_ONE_APP, phases=_NO_SHRINK)
@given(data=st.data())
async def test_no_signed_provider_payload_gets_a_server_error(
    site: Site, data: st.DataObject
) -> None:
    """The webhooks with the Telegram secret and Twilio signatures right: odd values in real
    payloads reach the channels' parsers and the turn loop."""
    method, url, status = await _send(site, data, _webhooks(site), sign_providers=True)
    assert not _server_error(url, status), f"{method} {url} -> {status}"


@pytest.mark.postgres
@settings(max_examples=40, deadline=None, suppress_health_check=_ONE_APP, phases=_NO_SHRINK)
@given(data=st.data())
async def test_no_signed_provider_payload_gets_a_server_error_on_postgresql(
    postgres_site: Site, data: st.DataObject
) -> None:
    method, url, status = await _send(
        postgres_site, data, _webhooks(postgres_site), sign_providers=True
    )
    assert not _server_error(url, status), f"{method} {url} -> {status}"


def _webhooks(site: Site) -> list[Route]:
    webhooks = [r for r in public_routes(site.app) if r.template.startswith("/webhooks/")]
    # Telegram three times: its updates have the most fields (Twilio has three routes).
    return webhooks + [r for r in webhooks if r.template == "/webhooks/telegram"] * 2


def test_every_route_is_fuzzed(tmp_path: Path) -> None:
    """The routes come from the router: the webhooks, web chat, Open311 and operations alike."""
    app = web.Application()
    app.router.add_get("/a/{id}.{fmt:(json|xml)}", _never)
    app.router.add_post("/b", _never)
    app.router.add_static("/static/", tmp_path)
    assert public_routes(app) == [
        Route("GET", "/a/{id}.{fmt}"),
        Route("HEAD", "/a/{id}.{fmt}"),
        Route("POST", "/b"),
        Route("GET", "/static/"),
        Route("HEAD", "/static/"),
    ]


async def _never(request: web.Request) -> web.Response:
    raise AssertionError("not called")


# --- the cases found by hand ---------------------------------------------------------------------


_UNDECODABLE = [
    ("application/x-www-form-urlencoded", b"Body=\xff\xfe&From=%2B27831234567"),
    ("application/x-www-form-urlencoded; charset=bogus", b"Body=hi"),
    ("application/x-www-form-urlencoded; charset=rot13", b"Body=hi"),
    ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data\r\n\r\nz\r\n--x--"),
]


@pytest.mark.parametrize(
    "path",
    [
        "/webhooks/twilio/sms",
        "/webhooks/twilio/whatsapp",
        "/webhooks/twilio/status",
        "/open311/v2/requests.json",
    ],
)
async def test_a_form_that_cannot_be_decoded_is_a_400_before_any_signature_check(
    site: Site, path: str
) -> None:
    for content_type, body in _UNDECODABLE:
        if path.startswith("/webhooks/") and content_type.startswith("multipart/"):
            continue  # a webhook reads only url-encoded forms: that body is refused unsigned
        headers = {"Content-Type": content_type, "X-Twilio-Signature": "x"}
        response = await site.client.post(path, data=body, headers=headers)
        assert response.status == 400, (content_type, body, await response.text())


async def test_an_id_that_is_no_row_id_is_not_found(site: Site) -> None:
    for ident in ["²", "፩", "99999999999999999999", "9223372036854775808"]:
        quoted = _quoted(ident)
        got = await site.client.get(URL(f"/open311/v2/requests/{quoted}.json", encoded=True))
        assert got.status == 404, ident
        listed = await site.client.get(
            "/open311/v2/requests.json", params={"service_request_id": ident}
        )
        assert listed.status == 200 and await listed.json() == [], ident


async def test_webchat_polling_after_an_odd_id_is_a_400(site: Site) -> None:
    cookies = {COOKIE_NAME: site.webchat_cookie}
    for after in ["²", "٣", "99999999999999999999", "-1", "1.5"]:
        response = await site.client.get(
            "/webchat/messages", params={"after": after}, cookies=cookies
        )
        assert response.status == 400, after
        assert "whole number" in (await response.json())["error"]


async def test_a_nul_or_a_lone_surrogate_in_a_message_is_dropped_and_the_turn_goes_on(
    site: Site,
) -> None:
    """Without Redis the log is written in the turn's transaction: PostgreSQL refused the NUL
    and failed the whole turn; neither database can store a lone surrogate."""
    body = '{"client_message_id": "m-1", "text": "pot\\u0000hole \\ud800on Main Road"}'
    response = await site.client.post(
        "/webchat/messages",
        data=body.encode(),
        headers={"Content-Type": "application/json"},
        cookies={COOKIE_NAME: site.webchat_cookie},
    )
    assert response.status == 200, await response.text()
    async with site.services.session_factory() as db:
        logged = await db.scalar(select(MessageLog.text).where(MessageLog.direction == "in"))
    assert logged == "pothole on Main Road"


async def test_an_odd_form_post_to_open311_is_refused_not_stored_with_a_nul(site: Site) -> None:
    form = {"service_code": "\x00", "description": "a\x00b", "lat": "1e400"}
    response = await site.client.post("/open311/v2/requests.json", data=form)
    assert response.status == 403  # no api_key: refused before anything is read
    form["api_key"] = site.services.settings.open311_key or ""
    response = await site.client.post("/open311/v2/requests.json", data=form)
    assert response.status in (400, 404)


@pytest.mark.postgres
async def test_a_nul_in_a_token_or_a_filter_is_no_server_error_on_postgresql(
    postgres_site: Site,
) -> None:
    """PostgreSQL refuses a NUL even as a query's parameter (SQLite does not)."""
    client = postgres_site.client
    token = await client.get(URL("/open311/v2/tokens/%00.json", encoded=True))
    assert token.status == 404
    listed = await client.get(
        "/open311/v2/requests.json", params={"service_code": "\x00", "status": "op\x00en"}
    )
    assert listed.status == 200 and await listed.json() == []


async def test_the_fuzzed_site_has_ussd_on(site: Site) -> None:
    """The odd gateway posts reach the USSD dialogue, not a 404 of a channel that is off."""
    assert site.services.ussd is not None
    form = {**_ussd_form(), "text": ""}
    response = await site.client.post(USSD_PATH.format(secret=USSD_SECRET), data=form)
    assert response.status == 200 and (await response.text()).startswith("CON ")
