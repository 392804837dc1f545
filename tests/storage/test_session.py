"""The engines citybot builds keep personal data out of the errors they raise (and so out of
the logs): a failed statement names its SQL, never its parameters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from storage.session import create_engine
from tests.storage.databases import postgres_database, sqlite_database

PHONE = "+27831234567"


@pytest.fixture(params=["sqlite", "postgresql"])
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    database = sqlite_database(tmp_path) if request.param == "sqlite" else postgres_database()
    async with database as url:
        yield url


async def test_a_failed_statement_does_not_carry_its_parameters(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            with pytest.raises(DBAPIError) as raised:
                await connection.execute(
                    text("INSERT INTO no_such_table (phone) VALUES (:phone)"), {"phone": PHONE}
                )
    finally:
        await engine.dispose()
    assert "no_such_table" in str(raised.value)
    assert PHONE not in str(raised.value)
