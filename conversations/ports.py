"""The seams through which the turn loop reaches what other floors own, set up by the app.

The turn loop never imports the notifier or the city back end: the composition root
(``bot.bootstrap``) hands it these.

- ``ReplyQueueing``: where a turn commits its reply, in the same Redis script that saves its
  state (``notifier.reply_queue.ReplyQueue`` is the one implementation).
- ``ReplyEncoder``: how a caller that sends replies later turns a turn's answer into a queued
  entry: ``encode(locale, effects)`` -> the entry, or None for nothing to send.
- ``CityStatus``: what the back end a report was filed with says now about it, in the
  resident's language: ``await city_status(reference, service_request_id, service_code, locale)``
  -> a sentence, or None when it cannot be asked (the answer then comes from the submissions
  table). The service code picks the back end: a service with its own (a transport operator's)
  numbers its requests itself, so the city's request of the same number is another report.

Example::

    loop = TurnLoop(..., reply_queue=ReplyQueue(layout), city_status=lookup)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from forms_runtime.effects import Effect

__all__ = ["CityStatus", "ReplyEncoder", "ReplyQueueing"]


class ReplyQueueing(Protocol):
    """The reply queue as the turn's closing script sees it."""

    def keys_for(self, channel: str, address: str) -> tuple[str, str]:
        """The two keys the Lua writes for one resident's reply (a stream, an order hash)."""
        ...

    def commit_lua(self, *, stream: str, order: str, entry: str, ttl: str) -> str:
        """Lua that queues ``entry`` ('' for none); each argument is a Lua expression."""
        ...


ReplyEncoder = Callable[[str, list[Effect]], bytes | None]

CityStatus = Callable[[str, str, str, str], Awaitable[str | None]]
