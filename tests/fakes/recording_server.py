"""A small aiohttp server on 127.0.0.1 that records every request and can be told to fail.

The fakes of the Telegram Bot API and the Twilio REST API build on it: the real SDKs send real
HTTP to it, and tests assert on what arrived.

Example::

    async with FakeTwilio() as twilio:
        twilio.fail_next(429, {"code": 20429, "message": "Too Many Requests"}, headers={"Retry-After": "1"})
        ...
        assert twilio.requests[-1].form["Body"] == "Where is the pothole?"
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web

__all__ = ["RecordedRequest", "RecordingServer", "ScriptedAnswer"]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]
    body: bytes
    # The answer the fake gave (status), so a test can tell failed attempts from good ones.
    status: int = 0
    # When it arrived (time.monotonic()), so pacing tests can count arrivals in any one second.
    at: float = 0.0


@dataclass(frozen=True)
class ScriptedAnswer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class RecordingServer:
    """Subclasses add routes in ``routes`` and answer through ``answer``."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._script: deque[ScriptedAnswer] = deque()
        self._runner: web.AppRunner | None = None
        self.port = 0
        # Called with each request as it is answered (a bench waits on it for a resident's reply).
        self.on_request: Callable[[RecordedRequest], None] | None = None
        # Seconds a slow provider takes to answer (``answer_slowly``); a client that hung up
        # meanwhile is not recorded as answered: the provider never accepted its message.
        self.answer_delay = 0.0
        self.arrived = 0

    # -- the test's controls ------------------------------------------------------------------

    def fail_next(
        self, status: int, body: Any, *, headers: dict[str, str] | None = None, times: int = 1
    ) -> None:
        """Answer the next ``times`` API calls with this status and JSON body."""
        for _ in range(times):
            self._script.append(ScriptedAnswer(status, body, dict(headers or {})))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self, port: int = 0) -> Self:
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- helpers for subclasses -----------------------------------------------------------------

    async def record(self, request: web.Request) -> RecordedRequest:
        arrived = time.monotonic()
        body = await request.read()
        form: dict[str, str] = {}
        if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            posted = await request.post()
            form = {k: str(v) for k, v in posted.items()}
        elif request.content_type == "application/json" and body:
            loaded = json.loads(body)
            form = {k: v if isinstance(v, str) else json.dumps(v) for k, v in loaded.items()}
        form.update({k: v for k, v in request.query.items() if k not in form})
        return RecordedRequest(
            request.method, request.path, dict(request.headers), form, body, at=arrived
        )

    async def answer_slowly(self, request: web.Request) -> bool:
        """Wait ``answer_delay``; False if the client hung up meanwhile (answer nothing)."""
        self.arrived += 1
        until = asyncio.get_running_loop().time() + self.answer_delay
        while asyncio.get_running_loop().time() < until:
            transport = request.transport
            if transport is None or transport.is_closing():
                return False
            await asyncio.sleep(0.05)
        transport = request.transport
        return transport is not None and not transport.is_closing()

    def scripted(self) -> ScriptedAnswer | None:
        return self._script.popleft() if self._script else None

    def respond(self, recorded: RecordedRequest, answer: ScriptedAnswer) -> web.Response:
        answered = RecordedRequest(
            recorded.method,
            recorded.path,
            recorded.headers,
            recorded.form,
            recorded.body,
            answer.status,
            recorded.at,
        )
        self.requests.append(answered)
        if self.on_request is not None:
            self.on_request(answered)
        return web.json_response(answer.body, status=answer.status, headers=answer.headers)
