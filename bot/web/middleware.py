"""Middleware every route runs through: no tracebacks to clients, and safe browser defaults.

Example::

    app = web.Application(middlewares=[security_headers(hsts=True), error_middleware(metrics)])
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable, MutableMapping, Sequence

from aiohttp import web
from aiohttp.typedefs import Middleware

from bot.metrics import Metrics
from bot.web.errors import json_error, unavailable_errors

__all__ = ["error_middleware", "forwarded_by", "security_headers"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = logging.getLogger("citybot.web")

# The chat page loads only its own script and style, and posts only to its own origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
# Only the web chat's "Send my location" needs a device feature, and only on our own pages.
PERMISSIONS_POLICY = "geolocation=(self), camera=(), microphone=(), payment=(), usb=()"
# A year, as the HSTS preload list asks; sent only when the public URL is https, since a browser
# that sees it over plain http ignores it and one that sees it for a test host would pin it.
STRICT_TRANSPORT_SECURITY = "max-age=31536000"


def forwarded_by(proxies: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> Middleware:
    """Behind a reverse proxy (``CITYBOT_TRUSTED_PROXIES``), see each request as the proxy
    received it: the client's address from ``X-Forwarded-For`` (the sign-in throttle and the
    audit log key on it) and the scheme from ``X-Forwarded-Proto`` (the proxy passes ``Host``).

    Only a request whose peer is one of ``proxies`` is believed; anyone else could write the
    headers. ``X-Forwarded-For`` is read from the right, skipping the trusted proxies, so an
    address a client put there itself is never taken. Provider signatures do not depend on it:
    they are checked against ``CITYBOT_PUBLIC_URL``.
    """

    def trusted(address: str | None) -> bool:
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        return any(ip in network for network in proxies)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not proxies or not trusted(request.remote):
            return await handler(request)
        hops = [
            h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",")
        ]
        # The first hop from the right that no trusted proxy added is the client; a hop that is
        # not an address (garbage a client sent) is no one, and nothing left of it is believed.
        nearest = next((h for h in reversed(hops) if not trusted(h)), "")
        client = nearest if _is_address(nearest) else None
        proto = request.headers.get("X-Forwarded-Proto", "").strip().lower()
        scheme = proto if proto in ("http", "https") else request.scheme
        if client is None:
            return await handler(request.clone(scheme=scheme))
        return await handler(request.clone(remote=client, scheme=scheme))

    return middleware


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def error_middleware(metrics: Metrics) -> Middleware:
    """Turn any unexpected exception into a JSON 500 (or 503 for a store that is down)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status >= 400 and exc.content_type != "application/json":
                # aiohttp's own 404/405/413 as JSON, with its short reason (never user data).
                return json_error(exc.status, exc.reason, **_allow(exc))
            raise
        except unavailable_errors() as exc:
            metrics.errors.labels(where="store").inc()
            log.warning(
                "store unavailable", extra={"path": request.path, "error": type(exc).__name__}
            )
            return json_error(503, "the service is briefly unavailable; try again")
        except Exception:
            metrics.errors.labels(where="http").inc()
            log.exception("unhandled error", extra={"path": request.path})
            return json_error(500, "something went wrong on our side; try again shortly")

    return middleware


def _allow(exc: web.HTTPException) -> dict[str, str]:
    allow = exc.headers.get("Allow")
    return {"Allow": allow} if allow else {}


def security_headers(*, hsts: bool) -> Middleware:
    """Safe browser defaults on every response, errors and redirects included (aiohttp raises
    those as exceptions, which would otherwise pass by a middleware that only sees returns)."""

    def harden(headers: MutableMapping[str, str], content_type: str | None) -> None:
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        if hsts:
            headers.setdefault("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY)
        if content_type == "text/html":
            headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            harden(exc.headers, exc.content_type)
            raise
        harden(response.headers, response.content_type)
        return response

    return middleware
