"""Structured logs: one JSON object per line, with no personal data in them.

Residents' words and phone numbers never reach a log file: free-text fields (``text``, ``body``,
``answers``...) are replaced by their length, phone numbers anywhere are masked to their last two
digits, and addresses keep only a short hash so one conversation can still be followed.

Example::

    configure_logging("INFO")
    log = logging.getLogger("citybot.turns")
    log.info("turn", extra={"channel": "sms", "address": "+27831234567", "text": "my phone is..."})
    # {"ts": "...", "level": "INFO", "logger": "citybot.turns", "event": "turn", "channel": "sms",
    #  "address": "addr:6f1c2a9b", "text": "<14 chars>"}
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sys
import traceback
from datetime import UTC, datetime
from typing import IO, Any

__all__ = ["JsonFormatter", "configure_logging", "mask", "mask_phone_numbers"]

# Keys whose values are what a resident typed: only their size is logged.
FREE_TEXT_KEYS = frozenset(
    {"text", "body", "answer", "answers", "message_text", "prompt", "value", "display_name", "name"}
)
# Keys that identify a resident: logged as a short stable hash.
ADDRESS_KEYS = frozenset({"address", "phone", "from", "to", "chat_id", "session", "email"})

# An optional +, then 9 to 15 digits with optional spaces, dots or dashes between them.
_PHONE = re.compile(r"(?<![\w])\+?\d(?:[\s.\-]?\d){8,14}(?![\w])")
# Attributes every LogRecord has; anything else was passed through ``extra``.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}


def mask_phone_numbers(text: str) -> str:
    """'call +27 83 123 4567' -> 'call +*********67'."""

    def _mask(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        return "+" + "*" * (len(digits) - 2) + digits[-2:]

    return _PHONE.sub(_mask, text)


def _address_hash(value: object) -> str:
    return "addr:" + hashlib.sha256(str(value).encode()).hexdigest()[:8]


def mask(key: str, value: Any) -> Any:
    """The loggable form of one field."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if key in FREE_TEXT_KEYS:
        size = len(value) if isinstance(value, str | list | dict | tuple) else 1
        return f"<{size} chars>" if isinstance(value, str) else f"<{size} items>"
    if key in ADDRESS_KEYS:
        return _address_hash(value)
    if isinstance(value, dict):
        return {str(k): mask(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask(key, v) for v in value]
    return mask_phone_numbers(str(value))


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line, masking as described in the module docstring."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": mask_phone_numbers(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                entry[key] = mask(key, value)
        if record.exc_info:
            # Exception messages can quote input (a ValueError with the resident's text), so
            # only the type and the traceback's frames are kept, never the message.
            exc_type = record.exc_info[0]
            entry["error"] = exc_type.__name__ if exc_type else "Exception"
            frames = traceback.format_tb(record.exc_info[2])
            entry["traceback"] = mask_phone_numbers("".join(frames))
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO", stream: IO[str] | None = None) -> None:
    """Send every log record to ``stream`` (stderr by default) as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # aiohttp's access log line quotes the URL, which may hold a phone number: masked above,
    # but it is also noisy at load; keep it at WARNING unless debugging.
    logging.getLogger("aiohttp.access").setLevel("DEBUG" if level == "DEBUG" else "WARNING")
    # The twilio SDK logs each request it sends and each answer at INFO (five lines or more for
    # every message sent): the same rule.
    logging.getLogger("twilio").setLevel("DEBUG" if level == "DEBUG" else "WARNING")
