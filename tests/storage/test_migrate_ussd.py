"""0023_ussd_sessions on SQLite and PostgreSQL: the table takes a dialogue's row (its screen as
JSON) and the revision goes down cleanly."""

from __future__ import annotations

from sqlalchemy import inspect, text

from storage.session import create_engine
from tests.storage.test_migrate_staff import _alembic, empty_url, revision_before

__all__ = ["empty_url"]

REVISION = "0023_ussd_sessions"


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def test_ussd_sessions_up_and_down(empty_url: str) -> None:
    await _alembic(empty_url, "upgrade", revision_before(REVISION))
    assert "ussd_sessions" not in await _tables(empty_url)
    await _alembic(empty_url, "upgrade", REVISION)
    engine = create_engine(empty_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO ussd_sessions (phone, session_id, consumed, screen, answer, "
                    "updated_at) VALUES ('+27831234567', 'ATUid_1', 2, "
                    '\'{"mode": "menu", "locale": "zu"}\', \'CON Imenyu\', '
                    "'2026-12-04 10:00:00')"
                )
            )
        async with engine.connect() as connection:
            row = (
                await connection.execute(text("SELECT phone, consumed, answer FROM ussd_sessions"))
            ).one()
            columns = await connection.run_sync(
                lambda c: {col["name"] for col in inspect(c).get_columns("ussd_sessions")}
            )
        assert tuple(row) == ("+27831234567", 2, "CON Imenyu")
        assert columns == {"phone", "session_id", "consumed", "screen", "answer", "updated_at"}
    finally:
        await engine.dispose()
    await _alembic(empty_url, "downgrade", revision_before(REVISION))
    assert "ussd_sessions" not in await _tables(empty_url)
