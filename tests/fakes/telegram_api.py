"""A fake Telegram Bot API: ``/bot<token>/<method>``, answers as Telegram does, records calls.

Example::

    async with FakeTelegram() as tg:
        channel = TelegramChannel("123:ABC", "secret", api_base_url=tg.url)
        await channel.send(OutboundMessage("telegram", "123456789", "Hello"))
        assert tg.calls("sendMessage")[0].form["text"] == "Hello"
"""

from __future__ import annotations

import json
import time
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

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/bot{token}/{method}", self._api)

    def calls(self, method: str) -> list[RecordedRequest]:
        """Requests for one Bot API method that the fake answered with 200."""
        return [r for r in self.requests if r.path.endswith("/" + method) and r.status == 200]

    def fail_with_fixture(self, name: str, *, times: int = 1) -> None:
        body = fixture(name)
        self.fail_next(body["error_code"], body, times=times)

    async def _api(self, request: web.Request) -> web.Response:
        recorded = await self.record(request)
        method = request.match_info["method"]
        scripted = self.scripted() if method != "getMe" else None
        if scripted is not None:
            return self.respond(recorded, scripted)
        return self.respond(recorded, ScriptedAnswer(200, self._ok(method, recorded.form)))

    def _ok(self, method: str, form: dict[str, str]) -> dict[str, Any]:
        if method == "getMe":
            return fixture("response_getMe.json")
        if method == "setWebhook":
            return fixture("response_setWebhook_ok.json")
        if method in ("answerCallbackQuery", "deleteWebhook"):
            return {"ok": True, "result": True}
        if method == "sendMessage":
            self._next_message_id += 1
            message = fixture("response_sendMessage_ok.json")["result"]
            message["message_id"] = self._next_message_id
            message["chat"]["id"] = int(form.get("chat_id", "0"))
            message["text"] = form.get("text", "")
            message["date"] = int(time.time())
            return {"ok": True, "result": message}
        return {"ok": False, "error_code": 404, "description": "Not Found: method not found"}
