"""The long-lived objects built at start are kept out of the garbage collector's full passes
while the app serves, and handed back when it stops."""

from __future__ import annotations

import gc

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer


async def test_the_app_freezes_what_it_built_while_it_serves(app: web.Application) -> None:
    gc.unfreeze()  # whatever an earlier test left
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        assert gc.get_freeze_count() > 0
        response = await client.get("/healthz")
        assert response.status == 200
    finally:
        await client.close()
    assert gc.get_freeze_count() == 0
