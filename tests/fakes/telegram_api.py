"""A fake Telegram Bot API: ``/bot<token>/<method>``, answers as Telegram does, records calls.

Example::

    async with FakeTelegram() as tg:
        channel = TelegramChannel("123:ABC", "secret", api_base_url=tg.url)
        await channel.send(OutboundMessage("telegram", "123456789", "Hello"))
        assert tg.calls("sendMessage")[0].form["text"] == "Hello"

Long polling: ``tg.push_update(update)`` queues an update; getUpdates answers with the queued
updates from its ``offset`` on (waiting up to its ``timeout`` for one) and, as Telegram does,
forgets every update below the offset it is given. Files: ``tg.files[file_id] = b"..."`` makes
getFile and the download under ``/file/bot<token>/<file_path>`` serve those bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.fakes.recording_server import RecordedRequest, RecordingServer, ScriptedAnswer

__all__ = ["FIXTURES", "FakeTelegram"]

FIXTURES = Path("/work/shared/fixtures/telegram")


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


class FakeTelegram(RecordingServer):
    def __init__(self) -> None:
        super().__init__()
        self._next_message_id = 1000
        # Updates not yet confirmed by a getUpdates offset, oldest first.
        self.pending_updates: list[dict[str, Any]] = []
        self._update_pushed = asyncio.Event()
        self._closing = asyncio.Event()
        # file_id -> bytes served by getFile and the file download.
        self.files: dict[str, bytes] = {}
        # file_id -> the file_size getFile claims, when a test wants it to differ from the bytes.
        self.claimed_sizes: dict[str, int] = {}
        self._by_method: dict[str, deque[ScriptedAnswer]] = {}

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)

    def push_update(self, update: dict[str, Any]) -> None:
        self.pending_updates.append(update)
        self._update_pushed.set()

    def fail_method(
        self,
        method: str,
        status: int,
        body: Any,
        *,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` calls of one method (only) with this status and body."""
        queue = self._by_method.setdefault(method, deque())
        for _ in range(times):
            queue.append(ScriptedAnswer(status, body, dict(headers or {})))

    async def stop(self) -> None:
        self._closing.set()  # long polls in flight answer at once
        await super().stop()

    def calls(self, method: str) -> list[RecordedRequest]:
        """Requests for one Bot API method that the fake answered with 200."""
        return [r for r in self.requests if r.path.endswith("/" + method) and r.status == 200]

    def fail_with_fixture(self, name: str, *, times: int = 1) -> None:
        body = fixture(name)
        self.fail_next(body["error_code"], body, times=times)

    async def _api(self, request: web.Request) -> web.Response:
        recorded = await self.record(request)
        method = request.match_info["method"]
        queue = self._by_method.get(method)
        scripted = queue.popleft() if queue else None
        if scripted is None and method != "getMe":
            scripted = self.scripted()
        if scripted is not None:
            return self.respond(recorded, scripted)
        if method == "getUpdates":
            return self.respond(recorded, ScriptedAnswer(200, await self._updates(recorded.form)))
        body = self._ok(method, recorded.form)
        # getFile fails with the HTTP status Telegram uses, which the SDK goes by.
        status = body["error_code"] if method == "getFile" and not body["ok"] else 200
        return self.respond(recorded, ScriptedAnswer(status, body))

    async def _updates(self, form: dict[str, str]) -> dict[str, Any]:
        offset = int(form.get("offset") or 0)
        limit = int(form.get("limit") or 100)
        timeout = float(form.get("timeout") or 0)
        if offset:
            # Telegram's rule: an offset confirms every update below it, for good.
            self.pending_updates = [u for u in self.pending_updates if u["update_id"] >= offset]
        if not self.pending_updates and timeout > 0:
            self._update_pushed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    pushed = asyncio.ensure_future(self._update_pushed.wait())
                    closing = asyncio.ensure_future(self._closing.wait())
                    try:
                        await asyncio.wait({pushed, closing}, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        pushed.cancel()
                        closing.cancel()
        return {"ok": True, "result": self.pending_updates[:limit]}

    async def _file(self, request: web.Request) -> web.Response:
        recorded = await self.record(request)
        file_id = request.match_info["path"].rsplit("/", 1)[-1].removesuffix(".jpg")
        body = self.files.get(file_id)
        if body is None:
            answer = {"ok": False, "error_code": 404, "description": "Not Found"}
            return self.respond(recorded, ScriptedAnswer(404, answer))
        self.requests.append(
            RecordedRequest(recorded.method, recorded.path, recorded.headers, {}, b"", 200)
        )
        return web.Response(body=body, content_type="application/octet-stream")

    def _ok(self, method: str, form: dict[str, str]) -> dict[str, Any]:
        if method == "getMe":
            return fixture("response_getMe.json")
        if method == "setWebhook":
            return fixture("response_setWebhook_ok.json")
        if method in ("answerCallbackQuery", "deleteWebhook"):
            return {"ok": True, "result": True}
        if method == "getFile":
            file_id = form.get("file_id", "")
            if file_id not in self.files:
                return {
                    "ok": False,
                    "error_code": 400,
                    "description": "Bad Request: invalid file_id",
                }
            return {
                "ok": True,
                "result": {
                    "file_id": file_id,
                    "file_unique_id": "u" + file_id[-8:],
                    "file_size": self.claimed_sizes.get(file_id, len(self.files[file_id])),
                    "file_path": f"photos/{file_id}.jpg",
                },
            }
        if method == "sendMessage":
            self._next_message_id += 1
            message = fixture("response_sendMessage_ok.json")["result"]
            message["message_id"] = self._next_message_id
            message["chat"]["id"] = int(form.get("chat_id", "0"))
            message["text"] = form.get("text", "")
            message["date"] = int(time.time())
            return {"ok": True, "result": message}
        return {"ok": False, "error_code": 404, "description": "Not Found: method not found"}
