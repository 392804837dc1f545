"""``forwarded_by``: behind a trusted reverse proxy the client's address and scheme are the
ones the proxy saw; from anyone else the headers are ignored."""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import ip_network
from typing import Any

import pytest
from aiohttp import web

from bot.config import ConfigError, Settings
from bot.web.middleware import forwarded_by


async def _echo(request: web.Request) -> web.Response:
    return web.json_response({"remote": request.remote, "scheme": request.scheme})


async def _client(aiohttp_client: Callable[..., Any], trusted: str) -> Any:
    app = web.Application(
        middlewares=[
            forwarded_by(
                Settings.from_env(
                    {"CITYBOT_TRUSTED_PROXIES": trusted, "CITYBOT_SESSION_SECRET": "x"}
                ).trusted_proxies
            )
        ]
    )
    app.router.add_get("/", _echo)
    return await aiohttp_client(app)


@pytest.mark.parametrize(
    ("forwarded_for", "remote"),
    [
        ("198.51.100.7", "198.51.100.7"),
        # A client's own X-Forwarded-For is kept left of what the proxy appends: never taken.
        ("10.9.9.9, 198.51.100.7", "198.51.100.7"),
        # Hops added by trusted proxies (a load balancer in front of nginx) are skipped.
        ("198.51.100.7, 127.0.0.1", "198.51.100.7"),
        ("not-an-address", "127.0.0.1"),
    ],
)
async def test_a_trusted_proxy_names_the_client(
    aiohttp_client: Callable[..., Any], forwarded_for: str, remote: str
) -> None:
    client = await _client(aiohttp_client, "127.0.0.1, 10.0.0.0/8")
    response = await client.get(
        "/", headers={"X-Forwarded-For": forwarded_for, "X-Forwarded-Proto": "https"}
    )
    assert await response.json() == {"remote": remote, "scheme": "https"}


async def test_an_untrusted_peer_is_the_client(aiohttp_client: Callable[..., Any]) -> None:
    client = await _client(aiohttp_client, "192.0.2.1")
    response = await client.get(
        "/", headers={"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"}
    )
    assert await response.json() == {"remote": "127.0.0.1", "scheme": "http"}


def test_trusted_proxies_setting() -> None:
    settings = Settings.from_env({"CITYBOT_TRUSTED_PROXIES": "127.0.0.1,10.0.0.0/8"})
    assert settings.trusted_proxies == (ip_network("127.0.0.1/32"), ip_network("10.0.0.0/8"))
    assert Settings.from_env({}).trusted_proxies == ()
    with pytest.raises(ConfigError, match="CITYBOT_TRUSTED_PROXIES"):
        Settings.from_env({"CITYBOT_TRUSTED_PROXIES": "nginx"})
