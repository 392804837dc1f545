"""An HTTPS CONNECT proxy on loopback, and a throw-away certificate authority for a fake's TLS.

An SDK that posts to a fixed https host (Africa's Talking's sends to https://api.africastalking.com
with module-level ``requests``) is reached the way any client behind an egress proxy is: through
``HTTPS_PROXY`` and ``REQUESTS_CA_BUNDLE``, which ``requests`` honours on every call. The proxy
tunnels each ``CONNECT`` to the fake's TLS port and records which host the client asked for; the
fake presents a certificate for the real host name, signed by an authority made for this test
run, so the SDK verifies TLS as it does in production and only the trust anchor differs.

Example::

    tls = ThrowawayTls(tmp_dir, ["api.africastalking.com"])
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls.server_context())
    async with ConnectProxy({"api.africastalking.com": site_port}) as proxy:
        env = {"HTTPS_PROXY": proxy.url, "REQUESTS_CA_BUNDLE": str(tls.ca_file)}
        proxy.tunnels     # [("api.africastalking.com", 443)]
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ssl
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["ConnectProxy", "ThrowawayTls"]


class ThrowawayTls:
    """A certificate authority and one server certificate for ``hosts``, written to ``folder``."""

    def __init__(self, folder: Path, hosts: Sequence[str]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        now = datetime.datetime.now(datetime.UTC)
        valid = (now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1))
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "citybot test CA")])
        ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(valid[0])
            .not_valid_after(valid[1])
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(ca_ski, critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        # Complete enough for strict verification (OpenSSL's X509_STRICT): SAN, key usages, AKI.
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(valid[0])
            .not_valid_after(valid[1])
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), False
            )
            .sign(ca_key, hashes.SHA256())
        )
        self.ca_file = folder / "ca.pem"
        self.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        self.cert_file = folder / "server.pem"
        self.cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        self.key_file = folder / "server.key"
        self.key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


class ConnectProxy:
    """Tunnels ``CONNECT host:443`` to the loopback port ``routes`` gives for the host; any
    other host or method is refused, so a client aimed elsewhere fails loudly."""

    def __init__(self, routes: Mapping[str, int]) -> None:
        self.routes = dict(routes)
        # (host, port) of every CONNECT the proxy was asked for, refused ones too.
        self.tunnels: list[tuple[str, int]] = []
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._open):
                writer.close()
            await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open.add(writer)
        upstream: asyncio.StreamWriter | None = None
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            host, _, port = target.rpartition(":")
            if method != "CONNECT" or not port.isdigit():
                writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            self.tunnels.append((host, int(port)))
            if host not in self.routes or port != "443":
                writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            up_reader, upstream = await asyncio.open_connection("127.0.0.1", self.routes[host])
            self._open.add(upstream)
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await asyncio.gather(_pipe(reader, upstream), _pipe(up_reader, writer))
        except (
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ConnectionError,
            ValueError,
        ):
            pass  # the client went away or spoke no HTTP: nothing to tunnel
        finally:
            for opened in (writer, upstream):
                if opened is not None:
                    self._open.discard(opened)
                    with contextlib.suppress(Exception):
                        opened.close()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until the source ends, then close the sink (the other side sees the end)."""
    try:
        while chunk := await source.read(65536):
            sink.write(chunk)
            await sink.drain()
    except ConnectionError:
        pass
    finally:
        with contextlib.suppress(Exception):
            sink.close()
