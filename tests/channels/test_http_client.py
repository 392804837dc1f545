"""The keep-alive HTTP/1.1 client the replies go out on, against real servers on loopback: an
aiohttp server, and raw sockets that answer exactly what a test needs (odd, broken or slow)."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from channels.http_client import HttpClient, HttpError


@asynccontextmanager
async def aiohttp_server(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[tuple[str, list[int]]]:
    """An aiohttp server; yields its URL and the client port of every request it answered."""
    ports: list[int] = []

    async def record(request: web.Request) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        ports.append(peer[1] if peer else 0)
        return await handler(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    async with TestServer(app, host="127.0.0.1") as server:
        yield str(server.make_url("")).rstrip("/"), ports


@asynccontextmanager
async def raw_server(
    answer: bytes | Callable[[bytes], bytes] | None, *, close: bool = True, delay: float = 0.0
) -> AsyncIterator[tuple[str, list[bytes]]]:
    """Reads a request head (and its body), writes ``answer`` as it is (or what it makes of the
    request), and closes, or goes on to the next request with ``close=False``."""
    seen: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                seen.append(head + await reader.readexactly(length))
                await asyncio.sleep(delay)
                if answer is not None:
                    writer.write(answer(seen[-1]) if callable(answer) else answer)
                    await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        server.close()


async def hello(request: web.Request) -> web.Response:
    body = await request.read()
    return web.json_response({"path": request.path_qs, "body": body.decode()})


async def test_a_post_is_sent_and_its_answer_read() -> None:
    client = HttpClient(user_agent="citybot-test")
    try:
        async with aiohttp_server(hello) as (url, _):
            answer = await client.request(
                "POST",
                url + "/2010-04-01/Messages.json?x=1",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                body=b"To=%2B27831234567&Body=Hi",
            )
    finally:
        await client.close()
    assert answer.status == 200
    assert answer.header("Content-Type") == "application/json; charset=utf-8"
    assert (
        answer.body
        == b'{"path": "/2010-04-01/Messages.json?x=1", "body": "To=%2B27831234567&Body=Hi"}'
    )


async def test_the_request_head_is_exactly_what_http_1_1_wants() -> None:
    async with raw_server(b"HTTP/1.1 204 No Content\r\n\r\n", close=False) as (url, seen):
        client = HttpClient(user_agent="citybot-test")
        try:
            answer = await client.request(
                "post", url + "/a", headers={"X-Twilio-Signature": "abc="}, body=b"k=v"
            )
        finally:
            await client.close()
    assert answer.status == 204 and answer.body == b""
    host = url.removeprefix("http://")
    assert seen == [
        b"POST /a HTTP/1.1\r\nHost: " + host.encode() + b"\r\nUser-Agent: citybot-test\r\n"
        b"X-Twilio-Signature: abc=\r\nContent-Length: 3\r\n\r\nk=v"
    ]


async def test_connections_are_kept_alive_and_reused() -> None:
    client = HttpClient()
    try:
        async with aiohttp_server(hello) as (url, ports):
            for _ in range(5):
                assert (await client.request("GET", url + "/")).status == 200
    finally:
        await client.close()
    assert len(ports) == 5 and len(set(ports)) == 1


async def test_connection_close_is_honoured() -> None:
    async def closing(request: web.Request) -> web.Response:
        return web.Response(text="bye", headers={"Connection": "close"})

    client = HttpClient()
    try:
        async with aiohttp_server(closing) as (url, ports):
            for _ in range(3):
                assert (await client.request("GET", url + "/")).body == b"bye"
    finally:
        await client.close()
    assert len(set(ports)) == 3


async def test_a_chunked_answer_is_put_together() -> None:
    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for part in (b"one ", b"two ", b"three"):
            await response.write(part)
        await response.write_eof()
        return response

    client = HttpClient()
    try:
        async with aiohttp_server(chunked) as (url, ports):
            assert (await client.request("GET", url + "/")).body == b"one two three"
            assert (await client.request("GET", url + "/")).body == b"one two three"
    finally:
        await client.close()
    assert len(set(ports)) == 1


async def test_an_answer_ended_by_closing_the_connection_is_complete() -> None:
    async with raw_server(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end") as (
        url,
        _,
    ):
        client = HttpClient()
        try:
            answer = await client.request("GET", url + "/")
        finally:
            await client.close()
    assert (answer.status, answer.body) == (200, b"until the end")


async def test_an_interim_100_continue_is_skipped() -> None:
    raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"
    async with raw_server(raw) as (url, _):
        client = HttpClient()
        try:
            answer = await client.request("POST", url + "/", body=b"x")
        finally:
            await client.close()
    assert (answer.status, answer.body) == (201, b"ok")


async def test_a_server_that_closed_an_idle_connection_costs_nothing() -> None:
    # The raw server closes after each answer without saying so (no Connection: close).
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    async with raw_server(raw, close=True) as (url, seen):
        client = HttpClient()
        try:
            assert (await client.request("GET", url + "/")).body == b"ok"
            await asyncio.sleep(0.05)  # the close reaches us while the connection is idle
            assert (await client.request("GET", url + "/")).body == b"ok"
        finally:
            await client.close()
    assert len(seen) == 2


async def test_a_refused_connection_is_an_http_error() -> None:
    client = HttpClient(connect_timeout=1.0)
    try:
        with pytest.raises(HttpError, match="cannot connect"):
            await client.request("POST", "http://127.0.0.1:9/", body=b"x")
    finally:
        await client.close()


async def test_no_answer_in_time_is_a_timeout_and_the_connection_is_dropped() -> None:
    def echo(request: bytes) -> bytes:
        body = request.rsplit(b"\r\n\r\n", 1)[1]
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

    async with raw_server(echo, close=False, delay=0.3) as (url, seen):
        client = HttpClient()
        try:
            with pytest.raises(TimeoutError):
                await client.request("POST", url + "/", body=b"first", timeout=0.1)
            # The late answer to the first request must not be taken for the second one's.
            answer = await client.request("POST", url + "/", body=b"second", timeout=2)
        finally:
            await client.close()
    assert answer.body == b"second"
    assert [s.rsplit(b"\r\n\r\n", 1)[1] for s in seen] == [b"first", b"second"]


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Evil": "a\r\nX-Injected: 1"},
        {"X-Evil": "a\nb"},
        {"X-Evil\r\nX-Injected": "1"},
        {"X-Evil: 1\r\n": "x"},
    ],
)
async def test_a_header_that_would_split_the_request_is_refused(headers: dict[str, str]) -> None:
    async with raw_server(b"HTTP/1.1 204 No Content\r\n\r\n") as (url, seen):
        client = HttpClient()
        try:
            with pytest.raises(HttpError):
                await client.request("POST", url + "/", headers=headers, body=b"x")
        finally:
            await client.close()
    assert seen == []


async def test_not_http_is_an_http_error() -> None:
    async with raw_server(b"SSH-2.0-OpenSSH_9.2\r\n\r\n") as (url, _):
        client = HttpClient()
        try:
            with pytest.raises(HttpError, match="not an HTTP answer"):
                await client.request("GET", url + "/")
        finally:
            await client.close()


async def test_a_giant_answer_is_refused() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000
    async with raw_server(raw) as (url, _):
        client = HttpClient(max_body=1000)
        try:
            with pytest.raises(HttpError, match="larger than 1,000 bytes"):
                await client.request("GET", url + "/")
        finally:
            await client.close()


async def test_an_early_close_is_an_http_error() -> None:
    async with raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf") as (url, _):
        client = HttpClient()
        try:
            with pytest.raises(HttpError, match="closed before the answer ended"):
                await client.request("GET", url + "/")
        finally:
            await client.close()


async def test_no_more_requests_at_once_than_the_limit() -> None:
    busy = 0
    most = 0

    async def slow(request: web.Request) -> web.Response:
        nonlocal busy, most
        busy += 1
        most = max(most, busy)
        await asyncio.sleep(0.05)
        busy -= 1
        return web.Response(text="ok")

    client = HttpClient(limit=2)
    try:
        async with aiohttp_server(slow) as (url, ports):
            # The timeout runs only once a request has its connection: none of these time out.
            answers = await asyncio.gather(
                *(client.request("GET", url + "/", timeout=0.5) for _ in range(12))
            )
    finally:
        await client.close()
    assert [a.body for a in answers] == [b"ok"] * 12
    assert most == 2 and len(set(ports)) == 2


@pytest.mark.parametrize("url", ["ftp://example.org/", "http:///nohost", "http://h/a b"])
async def test_what_is_not_an_http_url_is_refused(url: str) -> None:
    client = HttpClient()
    with pytest.raises(HttpError):
        await client.request("GET", url)


async def test_a_closed_client_refuses_requests() -> None:
    client = HttpClient()
    await client.close()
    with pytest.raises(HttpError, match="closed"):
        await client.request("GET", "http://127.0.0.1:9/")


def test_it_works_on_uvloop() -> None:
    # uvloop's transports are only alike asyncio's; serve and worker run on uvloop.
    uvloop = pytest.importorskip("uvloop")

    async def exchange() -> list[bytes]:
        client = HttpClient()
        try:
            async with aiohttp_server(hello) as (url, ports):
                bodies = [(await client.request("GET", url + f"/{i}")).body for i in range(3)]
            assert len(set(ports)) == 1
            return bodies
        finally:
            await client.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        bodies = runner.run(exchange())
    assert bodies == [b'{"path": "/%d", "body": ""}' % i for i in range(3)]


async def test_a_cancelled_request_gives_its_slot_back() -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.2)
        return web.Response(text="ok")

    client = HttpClient(limit=1)
    try:
        async with aiohttp_server(slow) as (url, _):
            holding = asyncio.create_task(client.request("GET", url + "/"))
            await asyncio.sleep(0.05)
            waiting = asyncio.create_task(client.request("GET", url + "/"))
            await asyncio.sleep(0.01)
            waiting.cancel()  # cancelled while waiting for the one slot
            holding.cancel()  # cancelled in the middle of its exchange
            for task in (holding, waiting):
                with pytest.raises(asyncio.CancelledError):
                    await task
            # Both slots' worth of cancellations left the one slot free.
            answer = await client.request("GET", url + "/", timeout=2)
    finally:
        await client.close()
    assert answer.body == b"ok"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", key, "-out", cert, "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@asynccontextmanager
async def tls_server(certificate: tuple[str, str]) -> AsyncIterator[tuple[str, list[int]]]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    ports: list[int] = []

    async def handler(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        ports.append(peer[1] if peer else 0)
        return web.Response(text=f"secure {request.secure}")

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    try:
        yield f"https://127.0.0.1:{runner.addresses[0][1]}", ports
    finally:
        await runner.cleanup()


async def test_https_is_verified_and_kept_alive(certificate: tuple[str, str]) -> None:
    trusting = ssl.create_default_context(cafile=certificate[0])
    client = HttpClient(ssl_context=trusting)
    try:
        async with tls_server(certificate) as (url, ports):
            bodies = [(await client.request("GET", url + "/")).body for _ in range(3)]
    finally:
        await client.close()
    assert bodies == [b"secure True"] * 3
    assert len(set(ports)) == 1


async def test_an_untrusted_certificate_is_refused(certificate: tuple[str, str]) -> None:
    client = HttpClient()  # the system's trust store, which does not know this certificate
    try:
        async with tls_server(certificate) as (url, ports):
            with pytest.raises(HttpError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.request("GET", url + "/")
    finally:
        await client.close()
    assert ports == []


async def test_credentials_in_a_url_never_reach_the_host_header() -> None:
    async with raw_server(b"HTTP/1.1 204 No Content\r\n\r\n") as (url, seen):
        client = HttpClient()
        try:
            await client.request("GET", url.replace("http://", "http://user:secret@") + "/")
        finally:
            await client.close()
    assert b"secret" not in seen[0]
    assert seen[0].startswith(b"GET / HTTP/1.1\r\nHost: " + url.removeprefix("http://").encode())


async def test_connections_idle_since_a_burst_are_closed_as_they_age() -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.05)
        return web.Response(text="ok")

    client = HttpClient()
    try:
        async with aiohttp_server(slow) as (url, _):
            await asyncio.gather(*(client.request("GET", url + "/") for _ in range(5)))
            [idle] = client._idle.values()
            assert len(idle) == 5 and len(client._open) == 5
            for connection in list(idle)[:4]:
                connection.idle_since = 0.0  # long past IDLE_SECONDS
            # The one request reuses the freshest connection and closes the four aged ones.
            await client.request("GET", url + "/")
            await asyncio.sleep(0.05)
            assert len(client._open) == 1
    finally:
        await client.close()
