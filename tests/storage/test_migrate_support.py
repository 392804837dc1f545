"""0011_support_tickets on SQLite and PostgreSQL: residents who asked for a person before
takeover existed join the queue in their order, with the address they wrote from; closed
requests and erased residents' stay closed; the revision goes down cleanly."""

from __future__ import annotations

from sqlalchemy import inspect, text

from storage.session import create_engine
from tests.storage.test_migrate_staff import _alembic, empty_url

__all__ = ["empty_url"]


async def test_old_requests_for_a_person_join_the_queue(empty_url: str) -> None:
    await _alembic(empty_url, "upgrade", "0010_incidents")
    engine = create_engine(empty_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO residents (id, locale, created_at, erased_at) VALUES "
                    "(1, 'zu', CURRENT_TIMESTAMP, NULL), (2, 'en', CURRENT_TIMESTAMP, NULL), "
                    "(3, 'en', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
            await connection.execute(
                text(
                    "INSERT INTO resident_addresses (resident_id, channel, address, created_at) "
                    "VALUES (1, 'sms', '+27831110001', CURRENT_TIMESTAMP)"
                )
            )
            await connection.execute(
                text(
                    "INSERT INTO handoff_requests (resident_id, channel, created_at, closed_at) "
                    "VALUES (1, 'sms', CURRENT_TIMESTAMP, NULL), "
                    "(2, 'telegram', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP), "
                    "(3, 'sms', CURRENT_TIMESTAMP, NULL)"
                )
            )
        await _alembic(empty_url, "upgrade", "head")
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    text(
                        "SELECT resident_id, channel, address, locale, state, outcome "
                        "FROM support_tickets ORDER BY id"
                    )
                )
            ).all()
            assert [tuple(r) for r in rows] == [
                (1, "sms", "+27831110001", "zu", "waiting", None),
                (2, "telegram", None, "en", "closed", "before_takeover"),
                (3, "sms", None, "en", "closed", "before_takeover"),
            ]
        await _alembic(empty_url, "downgrade", "0010_incidents")
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
        assert "handoff_requests" in tables and "support_tickets" not in tables
    finally:
        await engine.dispose()
