"""CITYBOT_DATABASE_REPLICA_URL with a real streaming replica (pg_basebackup -R of a private
primary): open data is read from the replica, from the primary while the replica lags more than
CITYBOT_DATABASE_REPLICA_MAX_LAG or is stopped; /readyz shows it and /metrics counts it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from bot.app import SERVICES_KEY, create_app
from bot.config import Settings
from bot.preflight import Outcome, check_everything
from bot.services import Services
from storage.migrate import upgrade_database
from tests.reliability.own_servers import OwnPostgres

METADATA = "/api/v1/open-data/metadata.json"
MARK = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _caught_up(primary: asyncpg.Connection, replica: asyncpg.Connection) -> None:
    """Wait until the replica has replayed everything the primary has written so far."""
    target = await primary.fetchval("SELECT pg_current_wal_lsn()")
    for _ in range(200):
        if await replica.fetchval("SELECT pg_last_wal_replay_lsn() >= $1", target):
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("the replica did not catch up")


def _fallbacks(metrics: str, reason: str) -> float:
    found = re.search(
        rf'^citybot_replica_fallback_reads_total{{reason="{reason}"}} (\S+)$', metrics, re.M
    )
    return float(found[1]) if found else 0.0


async def _modified(client: Any) -> str | None:
    response = await client.get(METADATA)
    assert response.status == 200
    modified: str | None = (await response.json())["dataset"][0]["modified"]
    return modified


async def test_open_data_reads_the_replica_and_the_primary_when_it_lags_or_stops(
    aiohttp_client: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    with OwnPostgres() as primary:
        await upgrade_database(primary.url)
        with OwnPostgres(standby_of=primary) as replica:
            settings = Settings(
                database_url=primary.url,
                database_replica_url=replica.url,
                database_replica_max_lag=30.0,
                session_secret="test-secret",
            )
            client = await aiohttp_client(await create_app(settings, workers=False))
            services: Services = client.app[SERVICES_KEY]
            reads = services.analytics_reads
            reads.recheck_seconds = 0.0  # every read asks the replica afresh
            on_primary = await asyncpg.connect(_dsn(primary.url))
            on_replica = await asyncpg.connect(_dsn(replica.url))
            try:
                assert await on_replica.fetchval("SELECT pg_is_in_recovery()")
                # A commit replayed since the replica started: its lag can be told from then.
                await on_primary.execute("CREATE TABLE replayed (n integer)")
                await _caught_up(on_primary, on_replica)
                # Replay paused: what the primary writes now is not on the replica.
                await on_replica.execute("SELECT pg_wal_replay_pause()")
                await on_primary.execute(
                    "INSERT INTO open_data_refresh (id, last_submission_id, last_change_id, "
                    "refreshed_at) VALUES (1, 0, 0, $1)",
                    MARK,
                )
                assert await _modified(client) is None  # read on the replica
                ready = await (await client.get("/readyz")).json()
                assert ready["checks"]["replica"]["serving"] == "replica"
                found = [f for f in await check_everything(settings, {}) if f.what == "replica"]
                assert [f.outcome for f in found] == [Outcome.OK]

                # Lagging past the limit: the same read goes to the primary.
                reads.max_lag = 0.2
                await asyncio.sleep(0.5)
                assert await _modified(client) == MARK.isoformat()
                metrics = await (await client.get("/metrics")).text()
                assert _fallbacks(metrics, "lagging") >= 1
                ready = await (await client.get("/readyz")).json()
                assert ready["status"] == "ready"
                assert ready["checks"]["replica"]["ok"] is False
                assert "behind" in ready["checks"]["replica"]["reason"]

                # Caught up again: back on the replica, which now has the row too.
                reads.max_lag = 30.0
                await on_replica.execute("SELECT pg_wal_replay_resume()")
                await _caught_up(on_primary, on_replica)
                assert await _modified(client) == MARK.isoformat()
                ready = await (await client.get("/readyz")).json()
                assert ready["checks"]["replica"]["serving"] == "replica"
            finally:
                await on_replica.close()
                await on_primary.close()

            # The replica stopped between two asks: its pooled connection is found dead at
            # checkout and the read still answers, from the primary.
            reads.recheck_seconds = 3600.0
            await asyncio.to_thread(replica.stop)
            assert await _modified(client) == MARK.isoformat()
            metrics = await (await client.get("/metrics")).text()
            assert _fallbacks(metrics, "down") >= 1
            ready = await (await client.get("/readyz")).json()
            assert ready["status"] == "ready"
            assert ready["checks"]["replica"]["serving"] == "primary"
            assert "unreachable" in ready["checks"]["replica"]["reason"]
            # Logged once per change, not once per read: lagging, back, then stopped.
            changes = [r.getMessage() for r in caplog.records if r.name == "citybot.replica"]
            assert changes == [
                "analytics reads on the primary",
                "analytics reads back on the replica",
                "analytics reads on the primary",
            ]
            found = [f for f in await check_everything(settings, {}) if f.what == "replica"]
            assert [f.outcome for f in found] == [Outcome.WARN]
