"""Issue 18: a service with its own back end (a transport operator's Open311 endpoint) is filed
there and polled there; every other service still goes to the city's. Two built-in GeoReport v2
servers on loopback, each on its own database, stand in for the city and the operator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.bootstrap import service_backends
from bot.config import ConfigError, Settings
from city.filer import Filer
from city.open311.client import Open311Backend, reference_marker
from city.open311.server import PREFIX, add_open311_routes
from city.status_poller import StatusPoller
from forms_runtime.loader import standard_forms
from storage.models import Open311Request, Submission, SubmissionOutbox, TrackedRequest
from storage.session import create_engine, create_sessionmaker
from tests.city.test_filer import FAST, drain
from tests.pothole_report import LAT, LON, pothole_submission
from tests.storage.databases import sqlite_database

TRANSPORT = "TRANSPORT-RELIABILITY"
BUS_ANSWERS: dict[str, Any] = {
    "operator": "myciti",
    "route_myciti": "t01",
    "stop": {"lat": LAT, "lon": LON, "place": "Khayelitsha", "ward": "99", "source": "gps"},
    "problem": "late",
    "late_minutes": 25,
    "day": "2026-03-02",
}


@asynccontextmanager
async def open311_server(
    folder: Path, api_key: str = ""
) -> AsyncIterator[tuple[str, async_sessionmaker[AsyncSession]]]:
    """A built-in GeoReport v2 server on loopback, on a database of its own (with ``api_key``,
    a POST without that key is refused)."""
    folder.mkdir()
    async with sqlite_database(folder) as url:
        engine = create_engine(url)
        sessions = create_sessionmaker(engine)
        app = web.Application()
        add_open311_routes(app, sessions, standard_forms(), api_key=api_key)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            yield str(server.make_url(PREFIX)), sessions
        finally:
            await server.close()
            await engine.dispose()


async def _filed_there(sessions: async_sessionmaker[AsyncSession]) -> list[Open311Request]:
    async with sessions() as session:
        return list((await session.scalars(select(Open311Request))).all())


async def test_a_bus_report_goes_to_the_operator_and_a_pothole_to_the_city(
    tmp_path: Path,
) -> None:
    async with (
        open311_server(tmp_path / "city") as (city_url, city_db),
        # The operator's server takes only its own key: the bus report carries it.
        open311_server(tmp_path / "operator", "operator-key") as (operator_url, operator_db),
    ):
        # citybot's own reports live with the city's server here (the embedded default).
        async with city_db() as session, session.begin():
            for reference, columns in (
                ("CT-T00001", {}),
                (
                    "CT-T00002",
                    {"form_id": "transport_reliability", "service_code": TRANSPORT},
                ),
            ):
                extra = {"answers": BUS_ANSWERS} if columns else {}
                submission = Submission(**pothole_submission(reference, **columns, **extra))
                session.add(submission)
                await session.flush()
                session.add(SubmissionOutbox(submission_id=submission.id))
        settings = Settings(
            database_url="sqlite://",
            open311_service_endpoints={TRANSPORT: operator_url},
            open311_service_api_keys={TRANSPORT: "operator-key"},
        )
        operators = service_backends(settings)
        city = Open311Backend(city_url, timeout=5.0)
        try:
            filer = Filer(
                city_db,
                city,
                standard_forms(),
                settings=FAST,
                registry=CollectorRegistry(),
                service_backends=operators,
            )
            await drain(filer)
            at_city = await _filed_there(city_db)
            at_operator = await _filed_there(operator_db)
            assert [r.service_code for r in at_city] == ["ROADS-POTHOLE"]
            assert [r.service_code for r in at_operator] == [TRANSPORT]
            assert reference_marker("CT-T00002") in at_operator[0].description
            assert reference_marker("CT-T00001") in at_city[0].description

            # The operator closes it: the poller asks the operator, not the city, about it.
            async with operator_db() as session, session.begin():
                row = await session.get(Open311Request, at_operator[0].id)
                assert row is not None
                row.status = "closed"
                row.updated_datetime = datetime.now(UTC)
            poller = StatusPoller(city_db, city, service_backends=operators)
            await poller.poll_once()
            async with city_db() as session:
                statuses = dict(
                    (
                        await session.execute(
                            select(Submission.service_code, TrackedRequest.status).join(
                                TrackedRequest, TrackedRequest.submission_id == Submission.id
                            )
                        )
                    ).all()
                )
            assert statuses == {"ROADS-POTHOLE": "open", TRANSPORT: "closed"}
        finally:
            await city.close()
            for backend in operators.values():
                await backend.close()


def test_the_second_back_end_is_configured_per_service() -> None:
    settings = Settings.from_env(
        {
            "CITYBOT_DATABASE_URL": "sqlite+aiosqlite:///x.sqlite3",
            "CITYBOT_SESSION_SECRET": "s" * 32,
            "OPEN311_SERVICE_ENDPOINTS": f"{TRANSPORT}=https://open311.operator.example/v2/",
            "OPEN311_SERVICE_API_KEYS": f"{TRANSPORT}=k1",
        }
    )
    assert settings.open311_service_endpoints == {TRANSPORT: "https://open311.operator.example/v2"}
    assert settings.open311_service_api_keys == {TRANSPORT: "k1"}
    for bad in (f"{TRANSPORT}", f"{TRANSPORT}=ftp://x", "=https://x.example"):
        with pytest.raises(ConfigError, match="OPEN311_SERVICE_ENDPOINTS"):
            Settings.from_env({"OPEN311_SERVICE_ENDPOINTS": bad, "CITYBOT_SESSION_SECRET": "s"})
