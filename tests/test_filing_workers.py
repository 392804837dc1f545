"""The filer and status poller as workers: registered, counted in /metrics, channels built in a
worker-only process, restartable, and paced by Settings."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import time
from pathlib import Path

from bot.app import build_services, close_services, registered_workers
from bot.filing_workers import ensure_channels, poller_settings, run_filer
from tests.e2e.city import SmsResident, city_settings, eventually, free_port, running_city
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import FakeTwilio


def test_the_loop_workers_are_registered() -> None:
    assert {"filer", "status_poller", "dispatcher"} <= set(registered_workers())


async def test_a_worker_only_process_builds_the_provider_channels_once(tmp_path: Path) -> None:
    async with FakeTelegram() as telegram, FakeTwilio() as twilio:
        settings = city_settings(tmp_path, free_port(), telegram=telegram, twilio=twilio)
        services = await build_services(settings)
        try:
            assert set(services.channels) == {"webchat"}
            await ensure_channels(services)
            first = dict(services.channels)
            await ensure_channels(services)
            assert set(first) == {"webchat", "telegram", "sms", "whatsapp"}
            assert all(services.channels[name] is first[name] for name in first)
        finally:
            await close_services(services)


async def test_the_filer_restarts_without_clashing_metrics_and_counts_filings(
    tmp_path: Path,
) -> None:
    async with FakeTwilio() as twilio, running_city(tmp_path, twilio=twilio) as city:
        # A second filer on the same services, as the supervisor starts after a crash.
        second = asyncio.create_task(run_filer(city.services))
        reference = await SmsResident(city).report("pothole", "en")
        await eventually(lambda: city.filed(reference))
        second.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await second
        async with city.http.get(city.url + "/metrics") as response:
            body = await response.text()
        assert "citybot_filed_total 1.0" in body


def test_poller_settings_follow_settings(tmp_path: Path) -> None:
    settings = city_settings(
        tmp_path,
        8080,
        env={"CITYBOT_QUIET_HOURS": "22:00-06:00", "CITYBOT_STATUS_POLL_SECONDS": "30"},
    )
    made = poller_settings(settings)
    assert made.interval_seconds == 30.0
    assert made.quiet_hours is not None
    assert (made.quiet_hours.start, made.quiet_hours.end) == (time(22), time(6))
    assert made.quiet_hours.zone == "Africa/Johannesburg"
