"""A fake Twilio REST API: ``POST /2010-04-01/Accounts/<sid>/Messages.json`` and the account
fetch ``GET /2010-04-01/Accounts/<sid>.json``, records calls.

It checks HTTP Basic auth against the account it was made for, as Twilio does (401 otherwise).

Example::

    async with FakeTwilio("AC...", "token") as twilio:
        ...
        assert twilio.messages()[0].form["To"] == "+27831234567"

Media: ``twilio.media["ME..."] = ("image/jpeg", b"...")`` serves a resident's photo as Twilio
does: ``GET .../Messages/<MM>/Media/<ME>`` with Basic auth answers 307 to a pre-signed storage
URL (here ``/cdn/<ME>`` on the same fake), which needs no credentials.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.fakes.recording_server import RecordedRequest, RecordingServer, ScriptedAnswer

__all__ = ["ACCOUNT_SID", "AUTH_TOKEN", "FIXTURES", "FakeTwilio", "fixture"]

FIXTURES = Path("/work/shared/fixtures/twilio")
ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
AUTH_TOKEN = "test-auth-token-0123456789abcdef"


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


class FakeTwilio(RecordingServer):
    def __init__(self, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN) -> None:
        super().__init__()
        self.account_sid = account_sid
        self._auth = "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self._next_sid = 4000
        # media SID -> (content type, bytes)
        self.media: dict[str, tuple[str, bytes]] = {}
        # What an account fetch says: "active", "suspended" or "closed".
        self.account_status = "active"

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/2010-04-01/Accounts/{sid}.json", self._account)
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._create_message)
        app.router.add_get(
            "/2010-04-01/Accounts/{sid}/Messages/{message}/Media/{media}", self._media
        )
        app.router.add_get("/cdn/{media}", self._cdn)

    def media_url(self, media_sid: str, message_sid: str = "MM" + "0" * 32) -> str:
        """The MediaUrl Twilio would post in the webhook for this media."""
        return (
            f"https://api.twilio.com/2010-04-01/Accounts/{self.account_sid}"
            f"/Messages/{message_sid}/Media/{media_sid}"
        )

    def _refused_or_scripted(
        self, request: web.Request, recorded: RecordedRequest
    ) -> web.Response | None:
        """401 without the account's Basic auth, as Twilio does; else a scripted failure, if any."""
        if request.headers.get("Authorization") != self._auth:
            body = {"code": 20003, "message": "Authenticate", "status": 401}
            return self.respond(recorded, ScriptedAnswer(401, body))
        scripted = self.scripted()
        return None if scripted is None else self.respond(recorded, scripted)

    async def _media(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        refused = self._refused_or_scripted(request, recorded)
        if refused is not None:
            return refused
        media = request.match_info["media"]
        if media not in self.media:
            body = {"code": 20404, "message": "The requested resource was not found", "status": 404}
            return self.respond(recorded, ScriptedAnswer(404, body))
        self.requests.append(dataclasses.replace(recorded, status=307))
        signed = f"/cdn/{media}?Expires=1742032800&Signature=fake"
        return web.Response(status=307, headers={"Location": signed})

    async def _account(self, request: web.Request) -> web.Response:
        """The account fetch ``citybot check`` makes: only the account's own credentials."""
        recorded = await self.record(request)
        refused = self._refused_or_scripted(request, recorded)
        if refused is not None:
            return refused
        sid = request.match_info["sid"]
        account = {
            "sid": sid,
            "friendly_name": "City of Cape Town (test)",
            "status": self.account_status,
            "type": "Full",
            "uri": f"/2010-04-01/Accounts/{sid}.json",
        }
        return self.respond(recorded, ScriptedAnswer(200, account))

    async def _cdn(self, request: web.Request) -> web.Response:
        recorded = await self.record(request)
        content_type, body = self.media[request.match_info["media"]]
        self.requests.append(dataclasses.replace(recorded, status=200))
        return web.Response(body=body, headers={"Content-Type": content_type})

    def messages(self) -> list[RecordedRequest]:
        """Messages the fake accepted (201)."""
        return [r for r in self.requests if r.status == 201]

    def fail_with_fixture(self, name: str, *, times: int = 1) -> None:
        body = fixture(name)
        self.fail_next(body["status"], body, times=times)

    def rate_limit_next(self, retry_after: float = 1, *, times: int = 1) -> None:
        body = {
            "code": 20429,
            "message": "Too Many Requests",
            "more_info": "https://www.twilio.com/docs/errors/20429",
            "status": 429,
        }
        self.fail_next(429, body, headers={"Retry-After": str(retry_after)}, times=times)

    async def _create_message(self, request: web.Request) -> web.Response:
        recorded = await self.record(request)
        if not await self.answer_slowly(request):
            return web.Response(status=499)  # nobody is listening any more
        refused = self._refused_or_scripted(request, recorded)
        if refused is not None:
            return refused
        self._next_sid += 1
        created = fixture("rest_messages_create_201.json")
        sid = f"SM{self._next_sid:032d}"
        created.update(
            sid=sid,
            to=recorded.form.get("To"),
            body=recorded.form.get("Body", ""),
            account_sid=request.match_info["sid"],
        )
        created["from"] = recorded.form.get("From")
        return self.respond(recorded, ScriptedAnswer(201, created))
