"""``GET /my-data/{token}``: a resident's data export as JSON, from the link EXPORT MY DATA gave.

The work is in ``conversations.data_export``; this route translates its answers:

- 200 with the export as a JSON download, ``Cache-Control: no-store`` (it is personal data);
- 403 forged token; 410 expired (ask for your data again in the chat);
- 404 a genuine link to a resident no longer in the database.

Example::

    add_routes(app, services)        # GET /my-data/{token}
"""

from __future__ import annotations

import logging

from aiohttp import web

from bot.services import Services
from bot.web.errors import json_error
from conversations.data_export import UnknownResident
from conversations.export_links import ExpiredExportLink, ForgedExportLink
from storage.types import utc_now

__all__ = ["add_routes"]

log = logging.getLogger("citybot.resident_export")


def add_routes(app: web.Application, services: Services) -> None:
    """Register ``GET /my-data/{token}``."""

    async def my_data(request: web.Request) -> web.Response:
        try:
            record = await services.data_export.download(
                services.session_factory, request.match_info["token"], now=utc_now()
            )
        except ForgedExportLink as exc:
            log.warning("export link refused: %s", exc)
            return json_error(403, str(exc))
        except ExpiredExportLink as exc:
            return json_error(410, str(exc))
        except UnknownResident:
            return json_error(404, "nothing is held for this link")
        return web.json_response(
            record,
            headers={
                "Cache-Control": "no-store",
                "Content-Disposition": 'attachment; filename="my-data.json"',
                "X-Content-Type-Options": "nosniff",
            },
        )

    app.router.add_get("/my-data/{token}", my_data)
