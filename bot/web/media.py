"""``GET /media/{token}``: a resident's photo for the city's back end, fetched when asked for.

The filer sends Open311 ``media_url`` as a signed link (``city.media_links``). When the city
follows it, this route checks the signature (403 if forged), finds the photo's reference in the
submission (404 if the link expired, the submission is gone or its answers were erased), fetches
the bytes from the provider with the provider's credentials (``channels.media_fetch``) and
answers with them. The credentials and the provider's URL never leave this process.

Answers, so a back end can tell what to do:

- 200 with the image (JPEG, PNG or WebP, read from the bytes) and ``Cache-Control: private``:
  the photo is personal data, so shared caches keep none, but the back end may keep its copy;
- 403 forged token; 404 expired, unknown or erased;
- 415 not a JPEG, PNG or WebP image; 413 larger than the limit (neither gets better on retry);
- 502 with ``Retry-After``: the provider is down or limiting; try again.

The bytes are read whole (up to the engine's photo limit, ``MAX_PHOTO_BYTES``) before the first
byte is answered, so a provider failing half way gives a clean 502, never a truncated image with
a 200.

Example::

    add_routes(app, services)        # GET /media/{token}
"""

from __future__ import annotations

import logging
import math
from typing import Any

from aiohttp import web

from bot.services import Services
from bot.web.errors import json_error
from channels.media_fetch import (
    MediaNotFound,
    MediaRefused,
    MediaUnavailable,
)
from city.media_links import ExpiredLink, ForgedLink
from storage.models import Submission

__all__ = ["CACHE_CONTROL", "add_routes"]

log = logging.getLogger("citybot.media")

CACHE_CONTROL = "private, max-age=86400"
# Seconds a back end is asked to wait when the provider is down and named no time.
PROVIDER_RETRY_SECONDS = 30
_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}


async def _photo_reference(services: Services, submission_id: int, step_id: str) -> str | None:
    async with services.session_factory() as db:
        submission = await db.get(Submission, submission_id)
        answers: dict[str, Any] = dict(submission.answers or {}) if submission else {}
    answer = answers.get(step_id)
    if isinstance(answer, dict) and isinstance(answer.get("url"), str):
        return str(answer["url"])
    return None


def add_routes(app: web.Application, services: Services) -> None:
    """Register ``GET /media/{token}``."""
    links = services.media_links
    fetchers = services.media_fetchers

    async def media(request: web.Request) -> web.Response:
        try:
            link = links.read(request.match_info["token"])
        except ForgedLink as exc:
            log.warning("media link refused: %s", exc)
            return json_error(403, str(exc))
        except ExpiredLink as exc:
            return json_error(404, str(exc))
        reference = await _photo_reference(services, link.submission_id, link.step_id)
        if reference is None:
            return json_error(404, "no such photo (the report or its answers are gone)")
        try:
            photo = await fetchers.fetch(reference)
        except MediaNotFound as exc:
            return json_error(404, str(exc))
        except MediaRefused as exc:
            return json_error(413 if exc.too_large else 415, str(exc))
        except MediaUnavailable as exc:
            wait = exc.retry_after if exc.retry_after is not None else PROVIDER_RETRY_SECONDS
            log.warning("media fetch deferred: %s", exc)
            return json_error(502, str(exc), **{"Retry-After": str(math.ceil(wait))})
        filename = f"{link.step_id}-{link.submission_id}.{_EXTENSIONS[photo.content_type]}"
        return web.Response(
            body=photo.body,
            content_type=photo.content_type,
            headers={
                "Cache-Control": CACHE_CONTROL,
                "Content-Disposition": f'inline; filename="{filename}"',
                "X-Content-Type-Options": "nosniff",
            },
        )

    app.router.add_get("/media/{token}", media)
