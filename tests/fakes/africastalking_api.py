"""A fake Africa's Talking: the SMS API the real SDK posts to, and a USSD gateway's side.

The SMS side records what ``africastalking.SMSService`` builds (form fields, the ``apiKey``
header) and answers as Africa's Talking documents (``SMSMessageData.Recipients``); the account
side answers ``ApplicationService.fetch_application_data`` (``citybot check``). The SDK always
sends to https://api.africastalking.com, so the fake is reached as that host is from behind an
egress proxy: it serves TLS with a throw-away certificate for the real host name, behind an
HTTPS CONNECT proxy on loopback (``tests.fakes.tls_proxy``); ``environ()`` is what points
``requests`` (and so the unchanged SDK) there.

The USSD side is what the gateway does to citybot: ``UssdPhone`` dials, types, and keeps the
whole ``text`` of its session as the gateway does, posting it to the webhook each time.

Example::

    async with FakeAfricasTalking(tmp_path) as at:
        for name, value in at.environ().items():
            monkeypatch.setenv(name, value)       # HTTPS_PROXY, REQUESTS_CA_BUNDLE
        ...
        assert at.sms()[-1].form["message"].startswith("Your reference")
        assert at.proxy.tunnels == [("api.africastalking.com", 443)]

    phone = UssdPhone(client, "/webhooks/ussd/" + secret, "+27831234567")
    screen = await phone.dial()                   # "CON Language / Taal ..."
    screen = await phone.type("1")                # posts text="1"
"""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path
from typing import Any, Self

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.fakes.recording_server import RecordedRequest, RecordingServer, ScriptedAnswer
from tests.fakes.tls_proxy import ConnectProxy, ThrowawayTls

__all__ = ["API_HOST", "API_KEY", "BALANCE", "USERNAME", "FakeAfricasTalking", "UssdPhone"]

USERNAME = "citybot-test"
API_KEY = "atsk_test_key_0000000000"
# The host the SDK sends to (its production domain), and the sandbox's.
API_HOST = "api.africastalking.com"
_HOSTS = (API_HOST, "api.sandbox.africastalking.com")
BALANCE = "ZAR 125.5000"
_session_numbers = itertools.count(1)


class FakeAfricasTalking(RecordingServer):
    def __init__(self, folder: Path, api_key: str = API_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self._next_id = 1000
        self.tls = ThrowawayTls(folder / "africastalking-tls", _HOSTS)
        self.proxy = ConnectProxy({})

    def environ(self) -> dict[str, str]:
        """What ``requests`` reads on every call: the proxy, and the CA that signed the fake."""
        return {
            "HTTPS_PROXY": self.proxy.url,
            "https_proxy": self.proxy.url,
            "REQUESTS_CA_BUNDLE": str(self.tls.ca_file),
        }

    async def start(self, port: int = 0) -> Self:
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port, ssl_context=self.tls.server_context())
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.proxy.routes = dict.fromkeys(_HOSTS, self.port)
        await self.proxy.__aenter__()
        return self

    async def stop(self) -> None:
        await self.proxy.__aexit__()
        await super().stop()

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/version1/messaging", self._send_sms)
        app.router.add_get("/version1/user", self._user)

    async def _user(self, request: web.Request) -> web.Response:
        recorded = await self.record(request)
        if request.headers.get("apiKey") != self.api_key:
            return self.respond(
                recorded, ScriptedAnswer(401, "The supplied authentication is invalid")
            )
        return self.respond(recorded, ScriptedAnswer(200, {"UserData": {"balance": BALANCE}}))

    def sms(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == "/version1/messaging" and r.status == 201]

    async def _send_sms(self, request: web.Request) -> web.Response:
        recorded = await self.record(request)
        if request.headers.get("apiKey") != self.api_key:
            return self.respond(
                recorded, ScriptedAnswer(401, "The supplied authentication is invalid")
            )
        scripted = self.scripted()
        if scripted is not None:
            return self.respond(recorded, scripted)
        self._next_id += 1
        recipients = [
            {
                "statusCode": 101,
                "number": number,
                "status": "Success",
                "cost": "ZAR 0.3000",
                "messageId": f"ATXid_{self._next_id}",
            }
            for number in recorded.form.get("to", "").split(",")
        ]
        body: dict[str, Any] = {
            "SMSMessageData": {"Message": f"Sent to {len(recipients)}/1", "Recipients": recipients}
        }
        return self.respond(recorded, ScriptedAnswer(201, body))


class UssdPhone:
    """One handset on the gateway: each session has its own id and its whole typed text.
    ``client`` is a test client with ``path`` on its server, or a client session with ``path``
    the whole URL of a running server."""

    def __init__(
        self,
        client: TestClient[Any, Any] | aiohttp.ClientSession,
        path: str,
        phone: str,
        *,
        service_code: str = "*120*311#",
    ) -> None:
        self.client = client
        self.path = path
        self.phone = phone
        self.service_code = service_code
        self.session_id = ""
        self.parts: list[str] = []
        self.last_status = 0

    async def dial(self) -> str:
        """A new session (the old one, if any, was cut off or ended)."""
        # Unique across test runs, as the gateway's are: dedupe markers outlive a run in Redis.
        self.session_id = f"ATUid_{next(_session_numbers)}_{uuid.uuid4().hex}"
        self.parts = []
        return await self.post()

    async def type(self, entry: str) -> str:
        self.parts.append(entry)
        return await self.post()

    async def post(self) -> str:
        response = await self.client.post(
            self.path,
            data={
                "sessionId": self.session_id,
                "serviceCode": self.service_code,
                "phoneNumber": self.phone,
                "networkCode": "65501",
                "text": "*".join(self.parts),
            },
        )
        self.last_status = response.status
        return await response.text()
