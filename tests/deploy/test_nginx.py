"""deploy/nginx/citybot.conf, as shipped, terminating TLS in front of a real ``citybot serve``.

Debian's nginx runs as a child of the test (its own prefix and configuration in a temporary
folder, loopback ports, a self-signed certificate made with openssl). Through the https
address: Twilio and Telegram webhooks signed as the providers sign them are answered, and the
replies reach the fake providers; the web chat works with the https site as its Origin;
/metrics and /readyz are refused there and answered on the internal address; HSTS is on every
answer.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest
from twilio.request_validator import RequestValidator

from tests.channels.signed import telegram_update, twilio_form
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.web.serve_process import ServeProcess, free_port

SITE = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "citybot.conf"
TELEGRAM_SECRET = "tg-hook-secret-0123456789"
SMS_FROM = "+27211234567"


def _tool(name: str, debian_package: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if found is None:
        message = (
            f"{name} is not installed (Debian: apt-get install {debian_package}; .ci/run does)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def _site_for_test(folder: Path, ports: dict[str, int], cert: Path, key: Path) -> str:
    """The shipped site with only its addresses changed: loopback ports instead of 80, 443 and
    9180, the test's certificate, the test's citybot. Each change must apply (the file drifting
    from what the test runs is a failure)."""
    site = SITE.read_text()
    changes = {
        "    listen [::]:80;\n": "",
        "    listen [::]:443 ssl http2;\n": "",
        "listen 80;": f"listen 127.0.0.1:{ports['http']};",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{ports['https']} ssl http2;",
        "listen 127.0.0.1:9180;": f"listen 127.0.0.1:{ports['internal']};",
        "server 127.0.0.1:8080 ": f"server 127.0.0.1:{ports['citybot']} ",
        "/etc/letsencrypt/live/bot.city.example/fullchain.pem": str(cert),
        "/etc/letsencrypt/live/bot.city.example/privkey.pem": str(key),
        "root /var/www/letsencrypt;": f"root {folder};",
    }
    for old, new in changes.items():
        assert old in site, f"{SITE.name} no longer has {old!r}"
        site = site.replace(old, new)
    return site


def _main_conf(folder: Path, site: Path) -> str:
    # One process in the foreground, every path in the folder: no root paths, no daemon.
    temp = "\n".join(
        f"    {kind}_temp_path {folder / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""
daemon off;
master_process off;
pid {folder / "nginx.pid"};
error_log {folder / "error.log"} warn;
events {{ worker_connections 64; }}
http {{
    access_log {folder / "access.log"};
{temp}
    include {site};
}}
"""


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited: {log.read_text() if log.exists() else ''}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError("nginx did not listen")


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    openssl = _tool("openssl", "openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            openssl,
            *("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


class Deployment:
    def __init__(self, ports: dict[str, int], cert: Path, tg: FakeTelegram, twilio: FakeTwilio):
        self.public_url = f"https://127.0.0.1:{ports['https']}"
        self.internal_url = f"http://127.0.0.1:{ports['internal']}"
        self.http_url = f"http://127.0.0.1:{ports['http']}"
        self.tls = ssl.create_default_context(cafile=str(cert))
        self.tg, self.twilio = tg, twilio


@pytest.fixture
async def deployment(tmp_path: Path, certificate: tuple[Path, Path]) -> AsyncIterator[Deployment]:
    nginx = _tool("nginx", "nginx-light")
    ports = {name: free_port() for name in ("http", "https", "internal")}
    async with FakeTelegram() as tg, FakeTwilio() as twilio:
        serve = ServeProcess(
            tmp_path,
            env={
                "CITYBOT_PUBLIC_URL": f"https://127.0.0.1:{ports['https']}",
                "CITYBOT_TRUSTED_PROXIES": "127.0.0.1",
                "CITYBOT_SESSION_SECRET": "nginx-test-" + "s" * 32,
                "TELEGRAM_BOT_TOKEN": "123:ABC",
                "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET,
                "TELEGRAM_API_BASE_URL": tg.url,
                "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
                "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                "TWILIO_SMS_FROM": SMS_FROM,
                "TWILIO_API_BASE_URL": twilio.url,
            },
            log_path=tmp_path / "serve.log",
        )
        ports["citybot"] = serve.port
        await asyncio.to_thread(serve.start)
        try:
            site = tmp_path / "citybot.conf"
            site.write_text(_site_for_test(tmp_path, ports, *certificate))
            conf = tmp_path / "nginx.conf"
            conf.write_text(_main_conf(tmp_path, site))
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
                (tmp_path / kind).mkdir()
            args = [nginx, "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "error.log")]
            tested = subprocess.run([*args, "-t"], capture_output=True, text=True, timeout=30)
            assert tested.returncode == 0, tested.stderr
            process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                await asyncio.to_thread(
                    _wait_for_port, ports["https"], process, tmp_path / "error.log"
                )
                yield Deployment(ports, certificate[0], tg, twilio)
            finally:
                process.terminate()
                process.wait(timeout=10)
        finally:
            serve.stop()


async def _eventually(condition: Callable[[], object], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def test_providers_web_chat_and_operations_through_tls(deployment: Deployment) -> None:
    d = deployment
    async with aiohttp.ClientSession() as http:
        # Twilio signs the URL it calls: the https public address, port included.
        path = "/webhooks/twilio/sms"
        form = twilio_form("inbound_sms.json", Body="pothole", To=SMS_FROM)
        signature = RequestValidator(AUTH_TOKEN).compute_signature(d.public_url + path, form)
        headers = {
            "X-Twilio-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded",
        }
        async with http.post(
            d.public_url + path, data=urlencode(form), headers=headers, ssl=d.tls
        ) as response:
            assert response.status == 200, await response.text()
            assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
        await _eventually(lambda: d.twilio.messages(), "the SMS reply at Twilio")
        assert d.twilio.messages()[0].form["To"] == form["From"]

        # The same post signed for the address citybot listens on is not Twilio's: refused.
        wrong = RequestValidator(AUTH_TOKEN).compute_signature("http://127.0.0.1" + path, form)
        async with http.post(
            d.public_url + path,
            data=urlencode(form),
            headers={**headers, "X-Twilio-Signature": wrong},
            ssl=d.tls,
        ) as response:
            assert response.status == 403
            # The refusal names the URL checked, so a wrong public URL shows as that.
            assert d.public_url + path in (await response.json())["error"]

        # Telegram: the update with the webhook's secret.
        update = telegram_update("update_message_text.json")
        async with http.post(
            d.public_url + "/webhooks/telegram",
            json=update,
            headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET},
            ssl=d.tls,
        ) as response:
            assert response.status == 200
        await _eventually(lambda: d.tg.calls("sendMessage"), "the Telegram reply")
        assert d.tg.calls("sendMessage")[0].form["chat_id"] == str(update["message"]["chat"]["id"])

        # The web chat, posted from the https page itself.
        message = {"client_message_id": "nginx-1", "text": "pothole"}
        async with http.post(
            d.public_url + "/webchat/messages",
            json=message,
            headers={"Origin": d.public_url},
            ssl=d.tls,
        ) as response:
            assert response.status == 200, await response.text()
            assert any(m["type"] == "ask" for m in (await response.json())["messages"])
            cookie = response.cookies["citybot_session"]
            assert cookie["secure"] and cookie["httponly"]
        async with http.post(
            d.public_url + "/webchat/messages",
            json={**message, "client_message_id": "nginx-2"},
            headers={"Origin": "https://elsewhere.example"},
            ssl=d.tls,
        ) as response:
            assert response.status == 403

        # Operations endpoints stay off the public address (one nginx and citybot for both
        # halves: each start costs seconds).
        for path in ("/metrics", "/readyz"):
            async with http.get(d.public_url + path, ssl=d.tls) as response:
                assert response.status == 404, path
                # nginx's own answers carry HSTS too.
                assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
            async with http.get(d.internal_url + path) as response:
                assert response.status == 200, path
        async with http.get(d.internal_url + "/metrics") as response:
            assert "citybot_messages_in" in await response.text()
        async with http.get(d.public_url + "/healthz", ssl=d.tls) as response:
            assert response.status == 200 and "version" in await response.json()
            # One HSTS header, not citybot's and nginx's.
            assert len(response.headers.getall("Strict-Transport-Security")) == 1
        # Plain http only redirects to https.
        async with http.get(d.http_url + "/webchat/", allow_redirects=False) as response:
            assert response.status == 301
            assert response.headers["Location"].startswith("https://")
