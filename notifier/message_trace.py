"""A trace id per inbound message, so "the bot did not answer me" can be followed in the logs.

Three INFO lines carry the same ``trace`` id, from whichever processes did the work:

- ``arrived``: a message was taken in (``bot.inbound.run_turn``, the web chat route);
- ``routed``: its turn ended, with ``outcome`` (``queued`` on the reply stream, ``answered`` here,
  ``silent``, ``duplicate``, ``rate_limited``, ``held``) and ``turn_ms``;
- ``replied``: its reply went to the provider (``notifier.replies``: the process that sent it,
  a ``citybot worker`` perhaps), with ``status``, ``messages``, ``send_ms`` and ``total_ms``
  since it arrived.

The trace rides with the reply through the reply queue (``notifier.reply_queue`` writes it on
the entry). The lines name the channel and times only: never the resident's address, chat id or
words. Arrival is wall-clock time, since the reply may be sent by another machine.

Example::

    trace = MessageTrace.arrived("sms")         # {"event": "arrived", "trace": "5f0c...", ...}
    trace.routed("queued", turn_seconds=0.004)
    trace.replied(status="sent", messages=1, send_seconds=0.2)
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MessageTrace"]

log = logging.getLogger("citybot.trace")


@dataclass(frozen=True, slots=True)
class MessageTrace:
    channel: str
    id: str = field(default_factory=lambda: secrets.token_hex(8))
    # When the message arrived, in seconds since the epoch.
    arrived_at: float = field(default_factory=time.time)

    @classmethod
    def arrived(cls, channel: str, **extra: Any) -> MessageTrace:
        """A new trace for a message just taken in; logs ``arrived``."""
        trace = cls(channel)
        log.info("arrived", extra={"trace": trace.id, "channel": channel, **extra})
        return trace

    def routed(self, outcome: str, *, turn_seconds: float) -> None:
        log.info(
            "routed",
            extra={
                "trace": self.id,
                "channel": self.channel,
                "outcome": outcome,
                "turn_ms": round(turn_seconds * 1000, 1),
            },
        )

    def replied(self, *, status: str, messages: int, send_seconds: float) -> None:
        log.info(
            "replied",
            extra={
                "trace": self.id,
                "channel": self.channel,
                "status": status,
                "messages": messages,
                "send_ms": round(send_seconds * 1000, 1),
                "total_ms": round(max(0.0, time.time() - self.arrived_at) * 1000, 1),
            },
        )

    def to_json(self) -> dict[str, Any]:
        """What the reply queue's entry carries."""
        return {"id": self.id, "arrived": self.arrived_at}

    @classmethod
    def from_json(cls, channel: str, raw: object) -> MessageTrace | None:
        """The trace an entry carried; None for an entry without one (or a damaged one)."""
        if not isinstance(raw, dict):
            return None
        trace_id, arrived = raw.get("id"), raw.get("arrived")
        if not isinstance(trace_id, str) or not isinstance(arrived, int | float):
            return None
        return cls(channel, trace_id[:32], float(arrived))
