"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Connection

from storage.base import Base
from storage.migrate import (
    alembic_config,
    import_model_modules,
    include_name,
    pending_migrations,
    upgrade_database,
)
from storage.models import Resident, Submission, SubmissionOutbox
from storage.session import create_engine, create_sessionmaker
from tests.storage.databases import postgres_database, sqlite_database

import_model_modules()


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_name": include_name}
    )
    return list(compare_metadata(context, Base.metadata))


@pytest.fixture(params=["sqlite", "postgres"])
async def migrated_url(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        async with sqlite_database(tmp_path) as url:
            yield url
    else:
        async with postgres_database() as url:
            yield url


async def test_upgrade_matches_models_and_is_repeatable(migrated_url: str) -> None:
    await upgrade_database(migrated_url)  # a second run is a no-op, not an error
    engine = create_engine(migrated_url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(_differences) == []
            tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert {"residents", "submissions", "submission_outbox", "alembic_version"} <= tables
    finally:
        await engine.dispose()


async def test_datetimes_come_back_aware_utc_and_json_round_trips(migrated_url: str) -> None:
    engine = create_engine(migrated_url)
    sessionmaker = create_sessionmaker(engine)
    try:
        async with sessionmaker() as session, session.begin():
            resident = Resident(locale="zu")
            session.add(resident)
            await session.flush()
            submission = Submission(
                reference="CT-ACDEFG",
                resident_id=resident.id,
                form_id="pothole",
                form_version=3,
                service_code="ROADS-POTHOLE",
                locale="zu",
                answers={"size": "large", "location": {"lat": -33.9, "ward": "115"}},
            )
            session.add(submission)
            await session.flush()
            session.add(SubmissionOutbox(submission_id=submission.id))
        async with sessionmaker() as session:
            stored = (await session.execute(select(Submission))).scalar_one()
            assert stored.answers["location"]["ward"] == "115"
            assert stored.status == "pending"
            assert stored.created_at.tzinfo is not None
            assert stored.created_at.utcoffset() is not None
            assert abs((datetime.now(UTC) - stored.created_at).total_seconds()) < 60
    finally:
        await engine.dispose()


async def test_empty_sqlite_file_is_upgraded_from_another_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    (tmp_path / "empty.sqlite3").touch()
    await upgrade_database(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    engine = create_engine(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    try:
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert "conversation_states" in tables
    finally:
        await engine.dispose()


def test_db_upgrade_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.cli import main

    monkeypatch.setenv("CITYBOT_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    assert main(["db", "upgrade"]) == 0
    assert (tmp_path / "cli.sqlite3").stat().st_size > 0
    # Nothing listens on port 1: the command says so and exits 2 (a setting or a server to
    # fix, as at the start of serve and worker), no traceback.
    monkeypatch.setenv("CITYBOT_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/citybot")
    assert main(["db", "upgrade"]) == 2


def test_naive_datetimes_are_refused() -> None:
    from storage.types import UtcDateTime

    with pytest.raises(ValueError, match="naive"):
        UtcDateTime().process_bind_param(datetime(2026, 1, 1), create_engine("sqlite://").dialect)


def _upgrade_to(connection: Connection, url: str, revision: str) -> None:
    config = alembic_config(url)
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


@pytest.fixture(params=["sqlite", "postgres"])
async def unmigrated_url(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        async with sqlite_database(tmp_path, migrate=False) as url:
            yield url
    else:
        async with postgres_database(migrate=False) as url:
            yield url


async def test_wards_and_precision_are_added_beside_reports_stored_before(
    unmigrated_url: str,
) -> None:
    engine = create_engine(unmigrated_url)
    sessionmaker = create_sessionmaker(engine)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade_to, unmigrated_url, "0004_personal_removed")
            await connection.execute(
                text(
                    "INSERT INTO submissions (reference, form_id, form_version, service_code,"
                    " locale, answers, ward, area_type, status, created_at, updated_at)"
                    " VALUES ('CT-OLD234', 'pothole', 1, 'ROADS', 'en', '{}', '94', 'formal',"
                    " 'pending', '2026-11-01 10:00:00', '2026-11-01 10:00:00')"
                )
            )
        await upgrade_database(unmigrated_url)
        async with sessionmaker() as session, session.begin():
            session.add(
                Submission(
                    reference="CT-NEW234",
                    form_id="pothole",
                    form_version=1,
                    service_code="ROADS",
                    locale="en",
                    answers={},
                    ward="91",
                    wards=["91", "18", "87"],
                    area_type="mixed",
                    precision="street",
                )
            )
        async with sessionmaker() as session:
            rows = (await session.execute(select(Submission).order_by(Submission.id))).scalars()
            stored = [(r.reference, r.ward, r.wards, r.area_type, r.precision) for r in rows]
        assert stored == [
            ("CT-OLD234", "94", None, "formal", None),
            ("CT-NEW234", "91", ["91", "18", "87"], "mixed", "street"),
        ]
    finally:
        await engine.dispose()


async def test_concurrent_upgrades_take_turns_on_postgresql() -> None:
    # Several processes start at once on a new database (serve, worker, db upgrade): without
    # the advisory lock they create the same tables together and deadlock or fail half-way.
    async with postgres_database(migrate=False) as url:
        await asyncio.wait_for(asyncio.gather(*(upgrade_database(url) for _ in range(3))), 60)
        assert await pending_migrations(url) == 0
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                assert await connection.run_sync(_differences) == []
        finally:
            await engine.dispose()
