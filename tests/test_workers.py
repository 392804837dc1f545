"""The workers: named once, built once per process (metrics registered once), restartable, and
paced by Settings; a worker-only process has every configured channel."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import time
from pathlib import Path

import pytest

from bot.bootstrap import build_services, close_services
from bot.services import Services
from bot.workers import WORKERS, repeat_until_stopped, run_workers
from notifier.delivery import ResidentDelivery
from tests.e2e.city import SmsResident, city_settings, eventually, free_port, running_city
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import FakeTwilio


def test_the_workers_are_named_once() -> None:
    assert list(WORKERS) == [
        "filer",
        "status_poller",
        "status_notices",
        "dispatcher",
        "broadcasts",
        "digests",
        "housekeeping",
        "replies",
        "audit_sealer",
        "held",
        "open_data",
        "support_timeouts",
        "early_warning",
    ]


async def test_a_worker_only_process_has_the_provider_channels(tmp_path: Path) -> None:
    async with FakeTelegram() as telegram, FakeTwilio() as twilio:
        settings = city_settings(tmp_path, free_port(), telegram=telegram, twilio=twilio)
        services = await build_services(settings)
        try:
            assert set(services.channels) == {"webchat", "telegram", "sms", "whatsapp"}
            async with run_workers(services, only={"dispatcher"}) as names:
                assert names == ["dispatcher"]
        finally:
            await close_services(services)


async def test_an_unknown_worker_is_refused(tmp_path: Path) -> None:
    services = await build_services(city_settings(tmp_path, free_port()))
    try:
        with pytest.raises(ValueError, match="no worker named filing"):
            async with run_workers(services, only={"filing"}):
                pass
    finally:
        await close_services(services)


async def test_stopping_lets_a_worker_finish_the_cycle_it_is_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A cycle cancelled inside a SQLite statement could hang the process's exit; a stopping
    # worker finishes its cycle (a filing, a batch of sends) and starts no other.
    cycles: list[str] = []

    async def slow(services: Services, stop: asyncio.Event) -> None:
        async def cycle() -> int:
            cycles.append("started")
            await asyncio.sleep(0.3)
            cycles.append("finished")
            return 1  # busy: it would go straight on to the next

        await repeat_until_stopped(cycle, stop, idle_seconds=60, what="slow")

    monkeypatch.setitem(WORKERS, "slow", slow)
    services = await build_services(city_settings(tmp_path, free_port()))
    try:
        async with run_workers(services, only={"slow"}):
            await asyncio.sleep(0.1)
    finally:
        await close_services(services)
    assert cycles == ["started", "finished"]


async def test_a_restarted_filer_keeps_its_metrics_and_counts_filings(tmp_path: Path) -> None:
    async with FakeTwilio() as twilio, running_city(tmp_path, twilio=twilio) as city:
        # A second filer on the same services, as the supervisor starts after a crash.
        second = asyncio.create_task(WORKERS["filer"](city.services, asyncio.Event()))
        reference = await SmsResident(city).report("pothole", "en")
        await eventually(lambda: city.filed(reference))
        second.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await second
        async with city.http.get(city.url + "/metrics") as response:
            body = await response.text()
        assert "citybot_filed_total 1.0" in body


async def test_the_loop_follows_settings(tmp_path: Path) -> None:
    settings = city_settings(
        tmp_path,
        free_port(),
        env={"CITYBOT_QUIET_HOURS": "22:00-06:00", "CITYBOT_STATUS_POLL_SECONDS": "30"},
    )
    services = await build_services(settings)
    try:
        assert services.status_poller.settings.interval_seconds == 30.0
        quiet = services.status_notices.quiet_hours
        assert quiet is not None
        assert (quiet.start, quiet.end, quiet.zone) == (time(22), time(6), "Africa/Johannesburg")
        assert services.dispatcher.settings.quiet_hours == quiet
        # Support's messages to a resident in a conversation go in the pacer's reply lane.
        delivery = services.dispatcher.send
        assert isinstance(delivery, ResidentDelivery)
        assert delivery.reply_purposes == {"agent_reply"}
    finally:
        await close_services(services)


async def test_the_audit_sealer_chains_rows_residents_left_unsealed(tmp_path: Path) -> None:
    from sqlalchemy import select

    from staff import audit
    from storage.models import AuditLog

    services = await build_services(city_settings(tmp_path, free_port()))
    try:
        async with services.session_factory() as session, session.begin():
            for n in range(3):  # as DELETE MY DATA writes them: no hash, no place in the chain
                session.add(AuditLog(actor=f"resident:{n}", action="erase", subject=None))
        task = asyncio.create_task(WORKERS["audit_sealer"](services, asyncio.Event()))

        async def sealed() -> bool:
            async with services.session_factory() as session:
                rows = (await session.scalars(select(AuditLog))).all()
            return len(rows) == 3 and all(r.seq is not None for r in rows)

        await eventually(sealed)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        report = await audit.verify(services.session_factory)
        assert (report.rows, report.broken) == (3, None)
    finally:
        await close_services(services)
