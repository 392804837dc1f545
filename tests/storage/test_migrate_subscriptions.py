"""0012_area_subscriptions on SQLite and PostgreSQL: each ward followed before becomes an alert
of its own for everything; the revision goes down to one row per ward."""

from __future__ import annotations

from sqlalchemy import text

from storage.session import create_engine
from tests.storage.test_migrate_staff import _alembic, empty_url

__all__ = ["empty_url"]


async def test_wards_followed_before_become_alerts(empty_url: str) -> None:
    await _alembic(empty_url, "upgrade", "0011_support_tickets")
    engine = create_engine(empty_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO residents (id, locale, created_at) VALUES (1, 'en', CURRENT_TIMESTAMP)"
                )
            )
            await connection.execute(
                text(
                    "INSERT INTO subscriptions (resident_id, ward, created_at) VALUES "
                    "(1, '9', CURRENT_TIMESTAMP), (1, '94', CURRENT_TIMESTAMP)"
                )
            )
        await _alembic(empty_url, "upgrade", "head")
        async with engine.begin() as connection:
            rows = (
                await connection.execute(
                    text("SELECT ward, label, topics FROM subscriptions ORDER BY id")
                )
            ).all()
            assert [tuple(r) for r in rows] == [
                ("9", "ward 9", ",all,"),
                ("94", "ward 94", ",all,"),
            ]
            # Now one ward may be followed under two alerts.
            await connection.execute(
                text(
                    "INSERT INTO subscriptions (resident_id, ward, label, topics, created_at) "
                    "VALUES (1, '94', 'Khayelitsha', ',water,', CURRENT_TIMESTAMP)"
                )
            )
        await _alembic(empty_url, "downgrade", "0011_support_tickets")
        async with engine.connect() as connection:
            wards = (
                (await connection.execute(text("SELECT ward FROM subscriptions ORDER BY ward")))
                .scalars()
                .all()
            )
        assert list(wards) == ["9", "94"]
    finally:
        await engine.dispose()
