"""0006_staff on SQLite and PostgreSQL: an existing audit log is kept and chained afterwards,
the staff tables hold what the models say, and the revision goes down cleanly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from staff import audit
from storage.migrate import alembic_config
from storage.models import StaffAccount
from storage.session import create_engine, create_sessionmaker
from tests.storage.databases import postgres_database, sqlite_database

BEFORE = "0005_wards_precision"


@pytest.fixture(params=["sqlite", "postgres"])
async def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        async with sqlite_database(tmp_path, migrate=False) as url:
            yield url
    else:
        async with postgres_database(migrate=False) as url:
            yield url


def revision_before(revision: str) -> str:
    """The revision ``revision`` follows, wherever the chain puts it when branches are merged."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    down = script.get_revision(revision).down_revision
    assert isinstance(down, str)
    return down


async def _alembic(url: str, action: str, revision: str) -> None:
    def run(connection: Connection) -> None:
        config = alembic_config(url)
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)

    # As storage.migrate runs them: on SQLite with foreign keys off, so batch mode's table
    # rebuilds do not cascade-delete the rows pointing at the rebuilt table.
    engine = create_engine(url, foreign_keys=False)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run)
    finally:
        await engine.dispose()


async def test_audit_rows_from_before_are_kept_and_chained(empty_url: str) -> None:
    await _alembic(empty_url, "upgrade", BEFORE)
    engine = create_engine(empty_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO audit_log (at, actor, action, subject, details) VALUES "
                    "(CURRENT_TIMESTAMP, 'resident:1', 'opt_out', 'resident:1', '{}'), "
                    "(CURRENT_TIMESTAMP, 'resident:1', 'erase', 'resident:1', '{\"reports\": 2}')"
                )
            )
        await _alembic(empty_url, "upgrade", "head")
        sessions = create_sessionmaker(engine)
        async with sessions() as session, session.begin():
            assert await audit.seal(session) == 2
        report = await audit.verify(sessions)
        assert report.broken is None and report.rows == 2
    finally:
        await engine.dispose()


async def test_emails_are_unique_and_the_revision_goes_down(empty_url: str) -> None:
    await _alembic(empty_url, "upgrade", "head")
    engine = create_engine(empty_url)
    sessions = create_sessionmaker(engine)
    try:
        async with sessions() as session, session.begin():
            session.add(StaffAccount(email="a@city.gov", roles=["agent"], password_hash="x"))
        with pytest.raises(IntegrityError):
            async with sessions() as session, session.begin():
                session.add(StaffAccount(email="a@city.gov", roles=["admin"], password_hash="y"))
        await _alembic(empty_url, "downgrade", BEFORE)
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
            columns = await connection.run_sync(
                lambda c: {col["name"] for col in inspect(c).get_columns("audit_log")}
            )
        assert not tables & {"staff_accounts", "staff_tokens", "staff_login_throttle"}
        assert "hash" not in columns and "actor" in columns
    finally:
        await engine.dispose()
