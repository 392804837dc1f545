"""Structured logs carry no personal data: phone numbers, free text and addresses are masked."""

from __future__ import annotations

import io
import json
import logging

from bot.logging import configure_logging, mask, mask_phone_numbers


def _log_line(**extra: object) -> dict[str, object]:
    stream = io.StringIO()
    configure_logging("INFO", stream)
    try:
        logging.getLogger("citybot.test").info("turn for +27 83 123 4567", extra=extra)
    finally:
        configure_logging("WARNING", io.StringIO())
    entry: dict[str, object] = json.loads(stream.getvalue().strip())
    return entry


def test_a_log_line_is_json_with_masked_fields() -> None:
    entry = _log_line(
        channel="sms", address="+27831234567", text="my number is 0831234567", duration_ms=3.5
    )
    assert entry["level"] == "INFO" and entry["logger"] == "citybot.test"
    assert entry["event"] == "turn for +*********67"
    assert entry["channel"] == "sms" and entry["duration_ms"] == 3.5
    assert entry["text"] == "<23 chars>"
    assert str(entry["address"]).startswith("addr:") and "2783" not in str(entry["address"])
    assert "1234567" not in json.dumps(entry)


def test_exceptions_keep_the_type_but_not_the_message() -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream)
    typed = "resident typed " + "0831234567"
    try:
        raise ValueError(typed)
    except ValueError:
        logging.getLogger("citybot.test").exception("failed")
    finally:
        configure_logging("WARNING", io.StringIO())
    entry = json.loads(stream.getvalue().strip())
    assert entry["error"] == "ValueError"
    assert "0831234567" not in stream.getvalue() and "resident typed" not in stream.getvalue()
    assert "test_logging.py" in entry["traceback"]


def test_mask_phone_numbers_leaves_other_numbers() -> None:
    assert mask_phone_numbers("ward 115, CT-7KQ2PX, 3 items") == "ward 115, CT-7KQ2PX, 3 items"
    assert mask_phone_numbers("+27-83-123-4567") == "+*********67"


def test_mask_nested_values() -> None:
    masked = mask("details", {"answers": {"phone": "083"}, "ward": "115", "to": "+2783"})
    assert masked == {"answers": "<1 items>", "ward": "115", "to": masked["to"]}
    assert str(masked["to"]).startswith("addr:")
