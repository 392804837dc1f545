"""0028_support_extra on SQLite and PostgreSQL: tickets gain the wait their resident was told,
unknown (NULL) for those already waiting; the revision goes down cleanly."""

from __future__ import annotations

from sqlalchemy import inspect, text

from storage.session import create_engine
from tests.storage.test_migrate_staff import _alembic, empty_url, revision_before

__all__ = ["empty_url"]

REVISION = "0028_support_extra"


async def test_waiting_tickets_keep_an_unknown_told_wait(empty_url: str) -> None:
    await _alembic(empty_url, "upgrade", revision_before(REVISION))
    engine = create_engine(empty_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO support_tickets (id, channel, locale, reason, priority, state, "
                    "created_at) VALUES (1, 'sms', 'en', 'asked', 0, 'waiting', "
                    "'2026-03-02 09:00:00')"
                )
            )
        await _alembic(empty_url, "upgrade", REVISION)
        async with engine.connect() as connection:
            told = await connection.scalar(
                text("SELECT told_wait_minutes FROM support_tickets WHERE id = 1")
            )
        assert told is None
        await _alembic(empty_url, "downgrade", revision_before(REVISION))
        async with engine.connect() as connection:
            columns = await connection.run_sync(
                lambda c: {col["name"] for col in inspect(c).get_columns("support_tickets")}
            )
        assert "told_wait_minutes" not in columns and "state" in columns
    finally:
        await engine.dispose()
