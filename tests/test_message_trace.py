"""One trace id per inbound message, logged at INFO as arrived, routed and replied, so a message
can be followed from the web process that took it to the worker that sent its reply, with no
personal data in the lines (issue 16)."""

from __future__ import annotations

import asyncio
import io
import logging
import time
import uuid
from collections import defaultdict
from pathlib import Path

import pytest

from bot.bootstrap import build_services, close_services
from bot.logging import JsonFormatter
from bot.workers import run_workers
from tests.channels.signed import twilio_form
from tests.e2e.city import SmsResident, city_settings, free_port
from tests.log_secrets import scan
from tests.test_reply_workers import web_process_without_replies

pytestmark = pytest.mark.redis

BODY = "my phone is 0831234567"


async def test_a_message_is_followed_from_the_web_process_to_the_worker_that_replies(
    tmp_path: Path, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="citybot.trace")
    phone = f"+2783{uuid.uuid4().int % 10**7:07d}"
    async with web_process_without_replies(tmp_path, redis_url) as (city, twilio):
        # The worker: its own services (as ``citybot worker`` builds them), the replies worker.
        env = {"CITYBOT_REDIS_URL": redis_url}
        worker_settings = city_settings(tmp_path, free_port(), twilio=twilio, env=env)
        worker = await build_services(worker_settings)
        try:
            async with run_workers(worker, only=["replies"]):
                resident = SmsResident(city, phone)
                form = twilio_form(
                    "inbound_sms.json", Body=BODY, From=phone, MessageSid=f"SM{uuid.uuid4().hex}"
                )
                headers, data = resident._post_twilio_form("/webhooks/twilio/sms", form)
                async with city.http.post(
                    city.url + "/webhooks/twilio/sms", data=data, headers=headers
                ) as response:
                    assert response.status == 200
                deadline = time.monotonic() + 20
                while not any(r.getMessage() == "replied" for r in caplog.records):
                    assert time.monotonic() < deadline, "no reply was logged"
                    await asyncio.sleep(0.05)
        finally:
            await close_services(worker)

    lines = [r for r in caplog.records if r.name == "citybot.trace"]
    by_trace: dict[str, list[logging.LogRecord]] = defaultdict(list)
    for record in lines:
        by_trace[record.trace].append(record)  # type: ignore[attr-defined]
    [(trace_id, records)] = by_trace.items()
    assert len(trace_id) == 16
    arrived, routed, replied = records
    assert [r.getMessage() for r in records] == ["arrived", "routed", "replied"]
    assert {r.channel for r in records} == {"sms"}  # type: ignore[attr-defined]
    assert arrived.held is False  # type: ignore[attr-defined]  # taken in now, not kept from before
    # The turn queued the reply on the stream; the worker (the web process sends nothing here)
    # took it off and sent it, and says so under the same id.
    assert routed.outcome == "queued" and routed.turn_ms >= 0  # type: ignore[attr-defined]
    assert replied.status == "sent" and replied.messages >= 1  # type: ignore[attr-defined]
    assert replied.total_ms >= replied.send_ms >= 0  # type: ignore[attr-defined]
    # As written to the log: channel and timings, never the number or the words.
    out = io.StringIO()
    formatter = JsonFormatter()
    for record in records:
        out.write(formatter.format(record) + "\n")
    text = out.getvalue()
    assert phone not in text and phone[-9:] not in text and "0831234567" not in text
    assert "phone" not in text and not scan(text)
